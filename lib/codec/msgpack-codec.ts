import { Packr } from 'msgpackr';
import type { Codec } from './codec.js';

/**
 * The default codec: plain standard MessagePack, readable by any peer (the
 * Rust crate's rmp-serde, Python, Go). No msgpackr record extension, no
 * structure sharing; `undefined` goes out as nil; Buffers/Uint8Arrays as bin;
 * 64-bit integers decode to numbers when safe, to BigInt otherwise, and
 * BigInts encode as int64/uint64.
 */
export class MsgpackCodec implements Codec {
  readonly name = 'msgpack';
  private readonly packr: Packr;

  constructor() {
    this.packr = new Packr({
      useRecords: false,
      encodeUndefinedAsNil: true,
      // 'auto' (number when safe, BigInt beyond 2^53) exists at run time but
      // is missing from msgpackr's typings.
      int64AsType: 'auto' as 'bigint',
      mapsAsObjects: true,
      moreTypes: false,
      bundleStrings: false,
      structuredClone: false,
    });
  }

  encode(value: unknown): Uint8Array {
    return this.packr.pack(value);
  }

  decode(bytes: Uint8Array): unknown {
    if (bytes.length === 0) return undefined;
    return this.packr.unpack(bytes);
  }
}

/** Shared default instance (the codec holds no per-call state across calls). */
export const msgpackCodec: Codec = new MsgpackCodec();
