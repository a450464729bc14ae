import { occamsBefore } from './before.js';
export default occamsBefore;
