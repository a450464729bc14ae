export type { Codec } from './codec.js';
export { MsgpackCodec, type MsgpackCodecOptions, msgpackCodec } from './msgpack-codec.js';
