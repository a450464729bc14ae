import { streamBefore } from './before.js';
export default streamBefore;
