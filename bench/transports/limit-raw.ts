import { limitTransport } from './limit.js';
export default limitTransport('limit-raw', false);
