import { limitBeforeTransport } from './limit-before.js';
export default limitBeforeTransport('limit-msgpack-before', true);
