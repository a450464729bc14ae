import { MAX_U53 } from './constants.js';

const TWO_32 = 0x1_0000_0000;

/**
 * Reads a u64 as a double. Values above 2^53 - 1 cannot be carried exactly;
 * the caller gets -1 and treats it as a protocol error (a seq from 1 at a
 * million requests per second takes 285 years to get there).
 */
export function readU53(buf: Uint8Array, off: number): number {
  const hi = readU32(buf, off + 4);
  if (hi > 0x1f_ffff) return -1;
  return hi * TWO_32 + readU32(buf, off);
}

/** Reads a u64 that is only informative (client id): lossy above 2^53. */
export function readU64Lossy(buf: Uint8Array, off: number): number {
  return readU32(buf, off + 4) * TWO_32 + readU32(buf, off);
}

/**
 * Little-endian u32 without Buffer's bounds and argument checks, for frame
 * headers the decoder already holds whole: Buffer's `readUInt32LE` is not
 * inlined into its callers, and was about 1,000 of a small call's 52,500
 * user-space instructions (bench/instructions-per-call.mjs).
 */
export function readU32(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16)) + buf[off + 3]! * 0x100_0000;
}

/** Little-endian i32, as readU32. */
export function readI32(buf: Uint8Array, off: number): number {
  return buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24);
}

/** Little-endian u16, as readU32. */
export function readU16(buf: Uint8Array, off: number): number {
  return buf[off]! | (buf[off + 1]! << 8);
}

export function writeU53(buf: Uint8Array, off: number, value: number): void {
  // every seq and client id in practice: one u32 and a zero, small enough to inline
  if (value >= 0 && value <= 0xffff_ffff) {
    writeU32(buf, off, value);
    writeU32(buf, off + 4, 0);
  } else writeWideU53(buf, off, value);
}

function writeWideU53(buf: Uint8Array, off: number, value: number): void {
  if (!(value >= 0 && value <= MAX_U53)) throw new RangeError(`u64 value out of range: ${value}`);
  const lo = value % TWO_32;
  writeU32(buf, off, lo);
  writeU32(buf, off + 4, (value - lo) / TWO_32);
}

/** Little-endian u32 without Buffer's argument checks (callers pass valid values). */
export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v;
  buf[off + 1] = v >>> 8;
  buf[off + 2] = v >>> 16;
  buf[off + 3] = v >>> 24;
}
