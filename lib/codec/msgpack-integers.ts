/**
 * The two byte walks behind MsgpackCodec's integers (see msgpack-codec.ts).
 *
 * - Encoding: `float64sToIntegers` rewrites, in place, every float64 (`cb`)
 *   that holds a safe integer as the 64-bit integer rmp-serde writes for it:
 *   uint64 (`cf`) when non-negative, int64 (`d3`) when negative. All three
 *   take 9 bytes, so nothing moves. Only whole numbers outside
 *   [-2^31, 2^32) are ever written as floats by msgpackr (it writes the ones
 *   inside as the smallest integer type), and outside that range the smallest
 *   type that holds one is the 64-bit one: in place is exactly rmp's
 *   `write_uint` / `write_sint` choice.
 * - Decoding: `hasUnsafeInt64s` tells whether any uint64/int64 lies beyond
 *   ±2^53, i.e. needs a BigInt.
 *
 * Both are one flat loop over items: a map or array is only its header (its
 * items follow in line), so no stack is needed; str, bin and ext bodies are
 * skipped by their length (an ext's body is opaque). Both stop as soon as
 * they have seen the number of items msgpackr reported.
 */

import { u32 } from './msgpack-check.js';

/** Bytes taken by the item that starts with each marker, header included; 0 = read the length (str8-32, bin8-32, ext8-32). */
const ITEM_SIZE = new Uint8Array(256);
for (let m = 0x00; m <= 0x7f; m++) ITEM_SIZE[m] = 1; // positive fixint
for (let m = 0x80; m <= 0x9f; m++) ITEM_SIZE[m] = 1; // fixmap, fixarray: header only
for (let m = 0xa0; m <= 0xbf; m++) ITEM_SIZE[m] = 1 + (m & 0x1f); // fixstr
for (let m = 0xe0; m <= 0xff; m++) ITEM_SIZE[m] = 1; // negative fixint
ITEM_SIZE[0xc0] = ITEM_SIZE[0xc1] = ITEM_SIZE[0xc2] = ITEM_SIZE[0xc3] = 1; // nil, (never used), false, true
ITEM_SIZE[0xca] = 5; // float32
ITEM_SIZE[0xcb] = 9; // float64
ITEM_SIZE[0xcc] = ITEM_SIZE[0xd0] = 2; // uint8, int8
ITEM_SIZE[0xcd] = ITEM_SIZE[0xd1] = 3; // uint16, int16
ITEM_SIZE[0xce] = ITEM_SIZE[0xd2] = 5; // uint32, int32
ITEM_SIZE[0xcf] = ITEM_SIZE[0xd3] = 9; // uint64, int64
ITEM_SIZE[0xd4] = 3; // fixext 1
ITEM_SIZE[0xd5] = 4; // fixext 2
ITEM_SIZE[0xd6] = 6; // fixext 4
ITEM_SIZE[0xd7] = 10; // fixext 8
ITEM_SIZE[0xd8] = 18; // fixext 16
ITEM_SIZE[0xdc] = ITEM_SIZE[0xde] = 3; // array16, map16: header only
ITEM_SIZE[0xdd] = ITEM_SIZE[0xdf] = 5; // array32, map32: header only

const FLOAT64 = 0xcb;
const UINT64 = 0xcf;
const INT64 = 0xd3;
/** High word of 2^53: a 64-bit integer is a number (not a BigInt) within [-2^53, 2^53], as msgpackr's int64AsType 'auto' decides. */
const HI_2_53 = 0x200000;

/**
 * Encoding: rewrites whole-number float64s of `bytes` (whole encoded values,
 * or the one value in [start, stop)) as integers; stops once `float64s`
 * were seen (Infinity: walk everything).
 */
export function float64sToIntegers(bytes: Uint8Array, float64s: number, start = 0, stop = bytes.length): void {
  const end = stop - 8;
  let view: DataView | undefined; // made at the first candidate: fractions never need one
  let p = start;
  while (p < end && float64s > 0) {
    const marker = bytes[p]!;
    if (marker === FLOAT64) {
      const exponent = ((bytes[p + 1]! & 0x7f) << 4) | (bytes[p + 2]! >>> 4);
      if (exponent >= MIN_EXPONENT && exponent <= MAX_EXPONENT) {
        view ??= new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        rewriteIfInteger(view, p, exponent);
      }
      float64s--;
      p += 9;
    } else {
      const size = ITEM_SIZE[marker]!;
      p += size !== 0 ? size : sizeFromLength(bytes, p, marker);
    }
  }
}

/**
 * Decoding: true when `bytes` hold a uint64/int64 beyond ±2^53, or when
 * fewer than `int64s` of them were found in line (some sat inside an ext's
 * body, where this walk does not look: the caller must then assume the worst).
 */
export function hasUnsafeInt64s(bytes: Uint8Array, int64s: number): boolean {
  const end = bytes.length - 8;
  let p = 0;
  while (p < end) {
    const marker = bytes[p]!;
    if (marker === UINT64 || marker === INT64) {
      const hi = u32(bytes, p + 1);
      const lo = u32(bytes, p + 5);
      if (marker === UINT64 ? beyond2p53(hi, lo) : hi < 0x80000000 ? beyond2p53(hi, lo) : hi < 0x100000000 - HI_2_53) return true;
      if (--int64s === 0) return false;
      p += 9;
    } else {
      const size = ITEM_SIZE[marker]!;
      p += size !== 0 ? size : sizeFromLength(bytes, p, marker);
    }
  }
  return true;
}

/** hi:lo (unsigned words) > 2^53 */
function beyond2p53(hi: number, lo: number): boolean {
  return hi > HI_2_53 || (hi === HI_2_53 && lo !== 0);
}

/** Size of a str, bin or ext item with an 8/16/32-bit length, header included. */
function sizeFromLength(bytes: Uint8Array, p: number, marker: number): number {
  switch (marker) {
    case 0xc4: // bin8
    case 0xd9: // str8
      return 2 + bytes[p + 1]!;
    case 0xc5: // bin16
    case 0xda: // str16
      return 3 + ((bytes[p + 1]! << 8) | bytes[p + 2]!);
    case 0xc6: // bin32
    case 0xdb: // str32
      return 5 + u32(bytes, p + 1);
    case 0xc7: // ext8: length, type, data
      return 3 + bytes[p + 1]!;
    case 0xc8: // ext16
      return 4 + ((bytes[p + 1]! << 8) | bytes[p + 2]!);
    default: // 0xc9 ext32
      return 6 + u32(bytes, p + 1);
  }
}

/**
 * Biased float64 exponents of the whole numbers msgpackr writes as floats
 * that are safe integers: 2^31 <= |v| < 2^53. Anything else (fractions below
 * 2^31, NaN, ±Infinity, beyond 2^53) is left alone at the cost of two bytes read.
 */
const MIN_EXPONENT = 1023 + 31;
const MAX_EXPONENT = 1023 + 52;

/**
 * The float64 at `p` (exponent given) as an integer when it is one, from its
 * bits alone (no float arithmetic): value = mantissa with its leading 1,
 * shifted right by 1075 - exponent (0..21); a whole number when no 1 bit is
 * shifted out. A negative one is written as the 64-bit two's complement.
 */
function rewriteIfInteger(view: DataView, p: number, exponent: number): void {
  const high = view.getUint32(p + 1); // sign, exponent, top 20 bits of the mantissa
  const low = view.getUint32(p + 5); // low 32 bits of the mantissa
  const shift = 1075 - exponent;
  if (shift !== 0 && (low & ((1 << shift) - 1)) !== 0) return; // a fraction: float64 stays
  const mantissa = (high & 0xfffff) | 0x100000; // top 21 bits, leading 1 included
  let hi = mantissa >>> shift;
  let lo = shift === 0 ? low : ((mantissa << (32 - shift)) | (low >>> shift)) >>> 0;
  if (high >>> 31 === 0) {
    view.setUint8(p, UINT64);
  } else {
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    view.setUint8(p, INT64);
  }
  view.setUint32(p + 1, hi);
  view.setUint32(p + 5, lo);
}
