export type { Codec } from './codec.js';
export { MsgpackCodec, msgpackCodec, type MsgpackCodecOptions } from './msgpack-codec.js';
