import { MAX_SHAPE_KEY_CHARS, MAX_SHAPE_KEYS, SHAPE_SLOTS } from './record-shapes.js';

/** MessagePack extension types the wire format uses (docs/PROTOCOL.md, "What a peer may not send"). */
const EXT_UNDEFINED = 0x00; // notepack's undefined (fixext 1); msgpackr reads it as undefined
const EXT_RECORD = 0x72; // msgpackr's record definition: only in a record session, only as fixext 1 (d4 72 id)
const EXT_TIMESTAMP = 0xff; // the standard timestamp (-1): 4, 8 or 12 bytes

/**
 * UTF-8 bytes of a shape's keys the check lets through before decoding
 * (4 bytes a character at most); ShapeTable.check counts the characters
 * exactly once msgpackr has read them.
 */
const MAX_SHAPE_KEY_BYTES = 4 * MAX_SHAPE_KEY_CHARS;

/** Extension types (0-255) an application registered with msgpackr and lets through: 1 at each. */
export type ExtensionTypes = Uint8Array;

/** The table of `types` for checkMessage; refuses the types msgpackr or the wire format reserve. */
export function extensionTypes(types: readonly number[]): ExtensionTypes {
  const table = new Uint8Array(256);
  for (const type of types) {
    if (!Number.isInteger(type) || type < 1 || type > 0xfe || type === EXT_RECORD || type === 0x62) {
      throw new RangeError(`extension type ${type} cannot be allowed (1-254, not 0x62 or 0x72)`);
    }
    table[type] = 1;
  }
  return table;
}

/** Why a message was refused before msgpackr read it. */
export class MessageRefusedError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'MessageRefusedError';
  }
}

/** A well-formed message refused for its weight alone (`maxWeight`): a session can still learn the shapes it defines. */
export class MessageTooHeavyError extends MessageRefusedError {
  constructor(message: string) {
    super(message);
    this.name = 'MessageTooHeavyError';
  }
}

/**
 * Shapes defined by the message being checked, by slot (-1: not defined
 * here); `touched` lists the slots to reset. Checking is synchronous and
 * never re-entered, so one set serves every codec.
 */
const definedHere = new Int32Array(SHAPE_SLOTS).fill(-1);
const utf8 = new TextDecoder();
const touched: number[] = [];

/**
 * Walks one MessagePack message before msgpackr decodes it, in one pass
 * with no recursion and no allocation: a count of values still to read,
 * each container adding its entries (a map twice its size, a record the
 * keys of its shape). The message must be exactly one value ending at
 * `end`, with nothing missing and nothing after it; and it may use only
 * what the wire format uses:
 *
 * | byte | allowed |
 * |---|---|
 * | 0xc1 (never used) | no: msgpackr reads it as a bundled-string reference |
 * | ext -1 (timestamp), ext 0 (undefined) | yes |
 * | ext 0x72 (record definition) | in a record session, as `d4 72 id` with an array of at most MAX_SHAPE_KEYS string keys |
 * | an ext type the application allowed (MsgpackCodecOptions.extensions) | yes |
 * | any other ext (0x62 bundled strings, 0x42 BigInt, 0x65 Error, 0x69/0x70 structured clone, 0x73 Set, 0x74 typed array, 0x78 RegExp, ...) | no |
 *
 * Why: msgpackr implements its own extensions for its own peers, and some
 * read wherever the message says (0x62 reads strings at an offset of the
 * message's choosing, past its end) or cost far more than their bytes
 * (0x42 builds a BigInt of megabytes, a record definition compiles a
 * reader). Refused here, a peer's message can only make msgpackr read its
 * own bytes, at a cost that grows with them.
 *
 * `shapes`: a record session's slots (msgpackr's `structures`): a byte in
 * 0x40-0x7f is a record of that slot's shape when one is defined, as
 * msgpackr reads it. Throws MessageRefusedError.
 */
export function checkMessage(
  src: Uint8Array,
  start: number,
  end: number,
  shapes: readonly unknown[] | undefined,
  allowed: ExtensionTypes | undefined,
  maxWeight = Infinity,
  /** when given, the keys of each shape the message defines, by slot (a refused message's shapes, for its session) */
  learned?: (string[] | undefined)[],
): void {
  if (touched.length !== 0) resetDefined();
  let pos = start;
  let need = 1; // values still to read
  let values = 0;
  let weight = 0; // besides one per value (see WEIGHT_*)
  while (need > 0) {
    // (a length read past the end of `src` makes `pos` NaN: every comparison is written to fail on it)
    if (!(pos < end)) throw truncated(pos - start);
    const t = src[pos++]!;
    need--;
    values++;
    if (t < 0x80) {
      // positive fixint; in a session, a record when its slot has a shape
      if (t >= 0x40 && shapes !== undefined) {
        const keys = shapeKeys(shapes, t & 0x3f);
        if (keys >= 0) {
          need += keys;
          weight += WEIGHT_MAP;
        }
      }
    } else if (t < 0x90) {
      need += 2 * (t & 0x0f); // fixmap
      if ((weight += WEIGHT_MAP + WEIGHT_ENTRY * (t & 0x0f)) > maxWeight) throw tooHeavy(weight, maxWeight);
    } else if (t < 0xa0) {
      need += t & 0x0f; // fixarray
      weight += WEIGHT_ARRAY;
    } else if (t < 0xc0) {
      pos += t & 0x1f; // fixstr
      weight += WEIGHT_STRING;
    } else if (t >= 0xe0) {
      // negative fixint
    } else {
      switch (t) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break;
        case 0xd9: // str 8
          weight += WEIGHT_STRING;
        // falls through
        case 0xc4: // bin 8
          pos += 1 + src[pos]!;
          break;
        case 0xda: // str 16
          weight += WEIGHT_STRING;
        // falls through
        case 0xc5: // bin 16
          pos += 2 + u16(src, pos);
          break;
        case 0xdb: // str 32
          weight += WEIGHT_STRING;
        // falls through
        case 0xc6: // bin 32
          pos += 4 + u32(src, pos);
          break;
        case 0xc7: // ext 8
          checkExt(src[pos + 1]!, src[pos]!, pos - 1 - start, allowed);
          pos += 2 + src[pos]!;
          break;
        case 0xc8: // ext 16
          checkExt(src[pos + 2]!, u16(src, pos), pos - 1 - start, allowed);
          pos += 3 + u16(src, pos);
          break;
        case 0xc9: // ext 32
          checkExt(src[pos + 4]!, u32(src, pos), pos - 1 - start, allowed);
          pos += 5 + u32(src, pos);
          break;
        case 0xcc: // uint 8
        case 0xd0: // int 8
          pos += 1;
          break;
        case 0xcd: // uint 16
        case 0xd1: // int 16
          pos += 2;
          break;
        case 0xca: // float 32
        case 0xce: // uint 32
        case 0xd2: // int 32
          pos += 4;
          break;
        case 0xcb: // float 64
        case 0xcf: // uint 64
        case 0xd3: // int 64
          pos += 8;
          break;
        case 0xd4: {
          // fixext 1
          const type = src[pos]!;
          if (type === EXT_RECORD && shapes !== undefined) {
            if (pos + 2 > end) throw truncated(end - start);
            const slot = src[pos + 1]! & 0x3f; // as msgpackr reads the id
            pos = defineShape(src, pos + 2, end, slot, start, learned);
            need += definedHere[slot]!; // the record's values follow its definition
            break;
          }
          checkExt(type, 1, pos - 1 - start, allowed);
          pos += 2;
          break;
        }
        case 0xd5: // fixext 2
          checkExt(src[pos]!, 2, pos - 1 - start, allowed);
          pos += 3;
          break;
        case 0xd6: // fixext 4
          checkExt(src[pos]!, 4, pos - 1 - start, allowed);
          pos += 5;
          break;
        case 0xd7: // fixext 8
          checkExt(src[pos]!, 8, pos - 1 - start, allowed);
          pos += 9;
          break;
        case 0xd8: // fixext 16
          checkExt(src[pos]!, 16, pos - 1 - start, allowed);
          pos += 17;
          break;
        case 0xdc: // array 16
          need += u16(src, pos);
          weight += WEIGHT_ARRAY;
          pos += 2;
          break;
        case 0xdd: // array 32
          need += u32(src, pos);
          weight += WEIGHT_ARRAY;
          pos += 4;
          break;
        case 0xde: // map 16
          need += 2 * u16(src, pos);
          if ((weight += WEIGHT_MAP + WEIGHT_ENTRY * u16(src, pos)) > maxWeight) throw tooHeavy(weight, maxWeight);
          pos += 2;
          break;
        case 0xdf: // map 32
          need += 2 * u32(src, pos);
          if ((weight += WEIGHT_MAP + WEIGHT_ENTRY * u32(src, pos)) > maxWeight) throw tooHeavy(weight, maxWeight);
          pos += 4;
          break;
        default: // 0xc1
          throw new MessageRefusedError(`byte 0xc1 (never used in MessagePack) at offset ${pos - 1 - start}`);
      }
    }
  }
  if (!(pos <= end) || !(need === 0)) throw truncated(pos - start);
  if (pos < end) throw new MessageRefusedError(`${end - pos} bytes after the end of the MessagePack value`);
  if (weight + values > maxWeight) throw tooHeavy(weight + values, maxWeight);
}

/**
 * The weight of a message, what decoding it costs in time, about 0.1 µs a
 * unit on a 2-core AMD EPYC VM (msgpackr 2.1.3, Node 20): 1 for each value,
 * and beyond that, per string WEIGHT_STRING, per array WEIGHT_ARRAY, per map
 * or record WEIGHT_MAP, per map entry (and key of a record shape defined)
 * WEIGHT_ENTRY. What costs is what is allocated and outlives the decode,
 * and a map's keys set one by one: `npm run bench:weights` decodes
 * messages of each kind at the bound (bench/results/weights.md). A map
 * weighs 6: one-key maps of distinct keys (each an object with a hidden
 * class of its own) decoded at 2 in three times the time of the other
 * kinds at the bound.
 * A decode given a
 * `maxWeight` refuses a message past it before msgpackr reads it; headers
 * count as they are met, so a map header of 4 billion entries is refused at once.
 */
export const WEIGHT_STRING = 1;
export const WEIGHT_ARRAY = 2;
export const WEIGHT_MAP = 6;
export const WEIGHT_ENTRY = 5;

function tooHeavy(weight: number, maxWeight: number): MessageTooHeavyError {
  return new MessageTooHeavyError(`the MessagePack value weighs over ${maxWeight} (at least ${weight}: maps, map entries, arrays and values; see maxRequestWeight)`);
}

/** Past the message's end: what its headers claim runs beyond its bytes. */
function truncated(at: number): MessageRefusedError {
  return new MessageRefusedError(`the MessagePack value runs past the end of its message (offset ${at})`);
}

/** The big-endian unsigned 16-bit integer at `pos`. */
export function u16(src: Uint8Array, pos: number): number {
  return (src[pos]! << 8) | src[pos + 1]!;
}

/** The big-endian unsigned 32-bit integer at `pos` (a double past 2^31). */
export function u32(src: Uint8Array, pos: number): number {
  return src[pos]! * 0x1000000 + ((src[pos + 1]! << 16) | (src[pos + 2]! << 8) | src[pos + 3]!);
}

/** An extension of `length` bytes of this type: the timestamp, undefined, and those the application allowed (see checkMessage). */
function checkExt(type: number | undefined, length: number, at: number, allowed: ExtensionTypes | undefined): void {
  if (type === undefined) throw truncated(at); // the header itself runs past the buffer
  if (type === EXT_TIMESTAMP && (length === 4 || length === 8 || length === 12)) return;
  if (type === EXT_UNDEFINED && length === 1) return;
  if (allowed !== undefined && allowed[type] === 1) return;
  const what =
    type === EXT_RECORD
      ? 'a record definition outside a record session'
      : `MessagePack extension type ${type === EXT_TIMESTAMP ? -1 : `0x${type.toString(16)}`} of ${length} bytes`;
  throw new MessageRefusedError(`${what} at offset ${at}: not part of the wire format`);
}

/** Keys of the shape in `slot`: defined by this message, or before; -1 when none. */
function shapeKeys(shapes: readonly unknown[], slot: number): number {
  const here = definedHere[slot]!;
  if (here >= 0) return here;
  const shape = shapes[slot] as readonly unknown[] | undefined;
  return shape === undefined ? -1 : shape.length;
}

/**
 * A record definition's keys (`d4 72 id` was read): an array of at most
 * MAX_SHAPE_KEYS strings, at most MAX_SHAPE_KEY_BYTES in all. Returns the
 * offset after the keys; the shape counts from here on in this message.
 */
function defineShape(src: Uint8Array, pos: number, end: number, slot: number, start: number, learned: (string[] | undefined)[] | undefined): number {
  if (!(pos < end)) throw truncated(pos - start);
  const t = src[pos]!;
  let keys: number;
  if (t >= 0x90 && t < 0xa0) {
    keys = t & 0x0f;
    pos += 1;
  } else if (t === 0xdc) {
    keys = u16(src, pos + 1);
    pos += 3;
  } else if (t === 0xdd) {
    keys = u32(src, pos + 1);
    pos += 5;
  } else {
    throw new MessageRefusedError(`a record definition at offset ${pos - start} without an array of keys`);
  }
  if (keys > MAX_SHAPE_KEYS) throw new MessageRefusedError(`a record shape of ${keys} keys (at most ${MAX_SHAPE_KEYS})`);
  let bytes = 0;
  const names: string[] | undefined = learned === undefined ? undefined : [];
  for (let i = 0; i < keys; i++) {
    if (!(pos < end)) throw truncated(pos - start);
    const k = src[pos++]!;
    let length: number;
    if (k >= 0xa0 && k < 0xc0) length = k & 0x1f;
    else if (k === 0xd9) length = src[pos++]!;
    else if (k === 0xda) {
      length = u16(src, pos);
      pos += 2;
    } else if (k === 0xdb) {
      length = u32(src, pos);
      pos += 4;
    } else throw new MessageRefusedError(`a record shape's key at offset ${pos - 1 - start} is not a string`);
    if (names !== undefined && pos + length <= end) names.push(utf8.decode(src.subarray(pos, pos + length)));
    pos += length;
    if ((bytes += length) > MAX_SHAPE_KEY_BYTES) throw new MessageRefusedError(`a record shape of over ${MAX_SHAPE_KEY_BYTES} bytes of keys`);
  }
  if (!(pos <= end)) throw truncated(pos - start);
  if (definedHere[slot]! < 0) touched.push(slot);
  definedHere[slot] = keys;
  if (learned !== undefined) learned[slot] = names;
  return pos;
}

/** True when the message checkMessage walked last described a record shape. */
export function definedShapes(): boolean {
  return touched.length !== 0;
}

function resetDefined(): void {
  for (const slot of touched) definedHere[slot] = -1;
  touched.length = 0;
}
