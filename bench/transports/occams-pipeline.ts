/** occams with the server's fast path off: every request through Nest's full per-request pipeline (to measure what the fast path buys). */
import { occamsTransport } from './occams.js';
export default occamsTransport('occams-pipeline', false);
