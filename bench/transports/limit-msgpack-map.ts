import { limitTransport } from './limit.js';
/** The bare reference with its client's calls in a Map, as before: the A/B of bench/results/reference-gc.md. */
export default limitTransport('limit-msgpack-map', true, 'map');
