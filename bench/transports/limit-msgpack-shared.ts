import { limitTransport } from './limit.js';
/** The bare reference reading every socket into one buffer, as our library does on Node (issue 29). */
export default limitTransport('limit-msgpack-shared', true, 'ring', 'shared');
