export type { Codec } from './codec.js';
export { MsgpackCodec, msgpackCodec } from './msgpack-codec.js';
