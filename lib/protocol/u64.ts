import { MAX_U53 } from './constants.js';

const TWO_32 = 0x1_0000_0000;

/**
 * Reads a u64 as a double. Values above 2^53 - 1 cannot be carried exactly;
 * the caller gets -1 and treats it as a protocol error (a seq from 1 at a
 * million requests per second takes 285 years to get there).
 */
export function readU53(buf: Uint8Array, off: number): number {
  const lo = buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16);
  const lo32 = lo + buf[off + 3]! * 0x100_0000;
  const hi = buf[off + 4]! | (buf[off + 5]! << 8) | (buf[off + 6]! << 16) | (buf[off + 7]! << 24);
  if (hi >>> 21 !== 0) return -1;
  return hi * TWO_32 + lo32;
}

/** Reads a u64 that is only informative (client id): lossy above 2^53. */
export function readU64Lossy(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off + 4) * TWO_32 + buf.readUInt32LE(off);
}

export function writeU53(buf: Buffer, off: number, value: number): void {
  let hi = 0;
  let lo = value;
  if (value > 0xffff_ffff) {
    if (value > MAX_U53) throw new RangeError(`u64 value out of range: ${value}`);
    lo = value % TWO_32;
    hi = (value - lo) / TWO_32;
  } else if (!(value >= 0)) {
    throw new RangeError(`u64 value out of range: ${value}`);
  }
  writeU32(buf, off, lo);
  writeU32(buf, off + 4, hi);
}

/** Little-endian u32 without Buffer's argument checks (callers pass valid values). */
export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v;
  buf[off + 1] = v >>> 8;
  buf[off + 2] = v >>> 16;
  buf[off + 3] = v >>> 24;
}
