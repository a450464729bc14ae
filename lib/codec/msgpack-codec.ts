import { Packr, RESERVE_START_SPACE, REUSE_BUFFER_MODE, Unpackr } from 'msgpackr';

import type { Codec } from './codec.js';
import { KeyCensus } from './key-census.js';
import { checkMessage, definedShapes, type ExtensionTypes, extensionTypes, MessageTooHeavyError } from './msgpack-check.js';
import { float64sToIntegers, hasUnsafeInt64s } from './msgpack-integers.js';
import { isReadBuffer } from './read-buffer.js';
import { keepLoopReader } from './record-readers.js';
import { ShapeTable, withinShapeBounds } from './record-shapes.js';

/** Messages up to this many bytes are decoded from a copy in a reused buffer (see MsgpackCodec). */
export const SCRATCH_SIZE = 4096;

/**
 * encodeInto writes in place only with this much room: msgpackr starts a
 * message in a fresh buffer of the target's size when it is within 2 KiB
 * of the end.
 */
const MIN_ROOM_IN_PLACE = 4096;

/** Options of `new MsgpackCodec()`. */
export interface MsgpackCodecOptions {
  /** offer peers that speak it msgpackr's record extension, per connection (default true) */
  records?: boolean;
  /**
   * MessagePack extension types (1-254) this application registered with
   * msgpackr's `addExtension` and accepts from peers (default none: only
   * the timestamp; every other extension is refused before msgpackr reads
   * it, see msgpack-check.ts)
   */
  extensions?: readonly number[];
}

/** msgpackr options of both directions, as on the wire to any peer. */
const OPTIONS = {
  useRecords: false,
  encodeUndefinedAsNil: true,
  mapsAsObjects: true,
  moreTypes: false,
  bundleStrings: false,
  structuredClone: false,
} as const;

/**
 * A session's (nestjs-occams peers only): msgpackr's records, shapes
 * described in the stream as first used (at most 64 kept, then reused;
 * bounded in size by record-shapes.ts).
 * msgpackr makes a sequential decoder "trusted": the shapes a message
 * describes outlive it, which is what a session needs.
 */
const SESSION_OPTIONS = { ...OPTIONS, useRecords: true, sequential: true } as const;

/**
 * The default codec: plain standard MessagePack, readable by any peer (the
 * Rust crate's rmp-serde, Python, Go). No msgpackr record extension, no
 * structure sharing; `undefined` goes out as nil; Buffers/Uint8Arrays as bin.
 * Between two nestjs-occams peers, a connection may agree to msgpackr's
 * record extension instead (`session()`, FEATURE_RECORDS).
 *
 * Numbers go out as rmp-serde writes them, because rmp-serde refuses a float
 * for a Rust integer field:
 *
 * | JS value | MessagePack |
 * |---|---|
 * | safe integer >= 0 (and -0) | smallest uint: fixint, uint8, uint16, uint32, uint64 |
 * | safe integer < 0 | smallest int: fixint, int8, int16, int32, int64 |
 * | any other number (fractions, NaN, ±Infinity, beyond ±(2^53 - 1)) | float64 |
 * | BigInt | int64 in [-2^63, 2^63), uint64 in [2^63, 2^64), else rpc_encode |
 *
 * e.g. -1 `ff`, -200 `d1 ff 38`, 2^32 `cf 00 00 00 01 00 00 00 00`,
 * -5e9 `d3 ff ff ff fe d5 fa 0e 00`. -0 goes out as `00`: it is what
 * `Math.trunc(-0.5)` gives in code that computes counts, and a Rust integer
 * field must accept it (an f64 field accepts an integer too).
 *
 * Decoding: 64-bit integers decode to numbers within ±2^53, to BigInt beyond.
 *
 * How, keeping msgpackr's fast path: msgpackr already writes every whole
 * number in [-2^31, 2^32) as the smallest integer type and everything else
 * as float64. It reads its `useFloat32` option once per number it is about
 * to write as a float, and nowhere else while encoding; CountingPackr makes
 * that option a getter that counts and answers 0 (never float32). An encode
 * that wrote no float (small ints, strings, objects: the usual) returns
 * msgpackr's bytes untouched; one that did has its output walked and each
 * float64 holding a safe integer rewritten in place (msgpack-integers.ts).
 *
 * Decoding the same way: msgpackr reads `int64AsType` once per uint64/int64
 * it meets. Its 'auto' mode (number when safe, BigInt beyond) makes BigInts
 * for every one of them, several times slower than 'number'; so the getter
 * answers 'number' and counts, and only a message that had some is walked
 * for one beyond ±2^53; such a message is decoded again in 'auto' mode.
 *
 * Small messages (up to SCRATCH_SIZE bytes, the usual request or response)
 * are copied into one reused buffer and decoded from there:
 * msgpackr attaches a DataView to every buffer it is given, and making one
 * for each fresh slice of a socket read cost more than the copy (a third of
 * a small message's decode, measured). That decoder copies bin values out
 * (`copyBuffers`), so nothing decoded refers to the reused buffer; larger
 * messages are decoded in place, their bins views of the bytes received
 * (in a session too: `inPlace`), except bytes in the process's read buffer
 * (read-buffer.ts), good only during the call: their bins are copied.
 * The reused buffer is zeroed after each message, so it never holds
 * another message's bytes while msgpackr reads one.
 *
 * Before msgpackr reads anything, checkMessage walks the message: one value
 * ending exactly at its end, no extension the wire format does not use
 * (msgpackr's own extensions can read past a message or cost far more than
 * their bytes), record definitions only in a session and within bounds.
 *
 * `encodeInto` has msgpackr write into the caller's buffer (its `useBuffer`,
 * its position set, the bytes before the message reserved): no slice of
 * msgpackr's own buffer per message and no copy. msgpackr starts messages
 * at multiples of 8 and reserves the 0-7 bytes up to `offset`. A value that
 * outgrows the room makes msgpackr move to a larger buffer of its own; its
 * bytes are returned from there.
 *
 * Should a msgpackr release stop reading either option there, the probes in
 * the constructor see it, and every output is walked / every input decoded
 * in 'auto' mode: still exact, only slower. The golden tests would see it too.
 */
export class MsgpackCodec implements Codec {
  readonly name = 'msgpack';
  private readonly packr: CountingPackr;
  /** Decodes small messages copied into `scratch`; copies bins out of it. */
  private readonly scratchUnpackr: CountingPackr;
  /** A session's decoder: knows the shapes its peer described; 64-bit integers beyond ±2^53 as BigInt (msgpackr's 'auto'). */
  private readonly sessionUnpackr: Unpackr | undefined;
  /** A session's shapes (the decoder's), within bounds (record-shapes.ts). */
  private readonly shapes: ShapeTable | undefined;
  /** Decodes messages with a 64-bit integer beyond ±2^53 (BigInt), and everything when the int64 probe failed. */
  private readonly bigIntUnpackr: Unpackr;
  /** 0 when msgpackr reports the floats it writes; Infinity: walk every output; -Infinity (a session): walk none. */
  private readonly floatFloor: number;
  /** true when msgpackr reports the 64-bit integers it reads. */
  private readonly countsInt64s: boolean;
  /** offers sessions with msgpackr's record extension (`session()`) */
  private readonly records: boolean;
  /** extension types let through besides the timestamp (options.extensions) */
  private readonly extensions: ExtensionTypes | undefined;
  private readonly extensionList: readonly number[] | undefined;

  /**
   * `records` (default true): offer peers that speak it a session in
   * msgpackr's record extension (FEATURE_RECORDS, see `session`); false
   * keeps every connection in plain MessagePack.
   */
  constructor(options: MsgpackCodecOptions = {}, /** (internal: a per-connection session) */ session = false) {
    this.records = options.records ?? true;
    this.extensionList = options.extensions;
    this.extensions = options.extensions === undefined || options.extensions.length === 0 ? undefined : extensionTypes(options.extensions);
    if (session) {
      // a fresh options object each: msgpackr keeps a session's shapes in an array it adds to the object it is given
      this.packr = new CountingPackr({ ...SESSION_OPTIONS, useRecords: withinShapeBounds });
      // every shape read by msgpackr's loop reader, never its generated object literal (record-readers.ts)
      const shapes = new ShapeTable((slot, keys) => keepLoopReader(unpackr, slot, keys));
      const unpackr: Unpackr = new Unpackr({ ...SESSION_OPTIONS, structures: shapes.slots as object[], copyBuffers: true, int64AsType: 'auto' as 'bigint' });
      this.sessionUnpackr = unpackr;
      this.shapes = shapes;
      // a session decodes everything with `sessionUnpackr` and walks no output (floats stay as msgpackr writes them:
      // only a nestjs-occams peer reads them): the plain decoders and probes are not needed
      this.scratchUnpackr = this.packr;
      this.bigIntUnpackr = unpackr;
      this.floatFloor = -Infinity;
      this.countsInt64s = true;
      return;
    }
    this.packr = new CountingPackr(OPTIONS);
    this.scratchUnpackr = new CountingPackr({ ...OPTIONS, copyBuffers: true });
    this.sessionUnpackr = undefined;
    this.shapes = undefined;
    // (bins copied: it may be reading the read buffer, and is seldom used)
    this.bigIntUnpackr = new Unpackr({ ...OPTIONS, copyBuffers: true, int64AsType: 'auto' as 'bigint' }); // 'auto' is missing from the typings
    const packr = this.packr;
    packr.pack(2 ** 32);
    this.floatFloor = packr.floats === 1 ? 0 : Infinity;
    packr.int64s = 0;
    const int64 = Buffer.from([0xcf, 0, 0, 0, 1, 0, 0, 0, 0]);
    this.countsInt64s = packr.unpack(int64) === 2 ** 32 && packr.int64s === 1;
    this.scratchUnpackr.int64s = 0;
    this.countsInt64s &&= this.scratchUnpackr.unpack(int64) === 2 ** 32 && this.scratchUnpackr.int64s === 1;
  }

  /**
   * A codec for one connection whose peer agreed to msgpackr's record
   * extension: an object's keys go out once per shape and connection, then
   * as a one-byte reference; decoding reads such objects through code
   * msgpackr generates per shape. The values decoded are the same as plain
   * MessagePack's; only nestjs-occams peers read it (negotiated in HELLO).
   */
  session(): Codec | undefined {
    return this.records && this.sessionUnpackr === undefined ? new MsgpackCodec({ extensions: this.extensionList }, true) : undefined;
  }

  /** A count, for one connection, of the keys new to it in the plain maps of its messages (sampled; KeyCensus). */
  keyCensus(): KeyCensus {
    return new KeyCensus(this.shapes?.slots);
  }

  /** A session's: keys of the shapes its peer described that were new to it, so far (ShapeTable). */
  get newKeys(): number | undefined {
    return this.shapes?.newKeys;
  }

  encode(value: unknown): Uint8Array {
    if (this.sessionUnpackr !== undefined && packing !== 0) throw reentrant();
    const packr = this.packr;
    packr.floats = this.floatFloor;
    packing++;
    let bytes: Uint8Array;
    try {
      bytes = packr.pack(value);
    } finally {
      packing--;
    }
    if (packr.floats > 0) float64sToIntegers(bytes, packr.floats);
    // where msgpackr is in its own buffer, to carry on from there after the next encodeInto
    if (bytes.buffer !== own.buffer.buffer) own.buffer = Buffer.from(bytes.buffer); // it moved to a new one
    own.position = packr.position;
    if (own.buffer.length > MAX_OWN_BUFFER) {
      // grown for a large value: msgpackr would start every later buffer at that size; the bytes returned stay where they are
      own.buffer = Buffer.allocUnsafeSlow(INITIAL_OWN_BUFFER);
      own.position = 0;
      packr.useBuffer(own.buffer);
    }
    return bytes;
  }

  encodeInto(value: unknown, target: Uint8Array, offset: number): number | Uint8Array {
    if (this.sessionUnpackr !== undefined && packing !== 0) throw reentrant();
    // inside another encode, msgpackr's buffer (one for every Packr) is the outer message's: not the caller's
    if (target.length - offset < MIN_ROOM_IN_PLACE || packing !== 0) return this.encode(value);
    const packr = this.packr;
    const aligned = offset & ~7;
    const reserve = offset - aligned;
    packr.floats = this.floatFloor;
    packr.useBuffer(target);
    packr.position = aligned;
    packing++;
    let out: Uint8Array & { start: number; end: number };
    try {
      out = packr.pack(value, REUSE_BUFFER_MODE | RESERVE_START_SPACE | reserve) as unknown as Uint8Array & { start: number; end: number };
    } finally {
      packing--;
      // msgpackr holds no caller's buffer between calls
      packr.useBuffer(own.buffer);
      packr.position = own.position;
    }
    const floats = packr.floats;
    if (out !== target) {
      // outgrew the room: msgpackr copied what it had into a buffer of its own (dropped now)
      const bytes = out.subarray(out.start + reserve, out.end);
      if (floats > 0) float64sToIntegers(bytes, floats);
      return bytes;
    }
    if (floats > 0) float64sToIntegers(target, floats, offset, out.end);
    return out.end;
  }

  decode(bytes: Uint8Array, maxWeight?: number): unknown {
    const length = bytes.length;
    if (length === 0) return undefined;
    const sessionUnpackr = this.sessionUnpackr;
    if (sessionUnpackr !== undefined) {
      try {
        checkMessage(bytes, 0, length, this.shapes!.slots, this.extensions, maxWeight);
      } catch (err) {
        // refused for its weight alone: the shapes it defines are the session's all the same (later messages use them)
        if (err instanceof MessageTooHeavyError) this.learnShapes(bytes);
        throw err;
      }
      const defined = definedShapes();
      // (bytes in the read buffer are written over after this call: their bins are copied, as from scratch)
      const value =
        length <= SCRATCH_SIZE && !scratch.busy ? fromScratch(sessionUnpackr, bytes) : isReadBuffer(bytes) ? sessionUnpackr.unpack(bytes) : inPlace(sessionUnpackr, bytes);
      if (defined) this.shapes!.check();
      return value;
    }
    checkMessage(bytes, 0, length, undefined, this.extensions, maxWeight);
    if (!this.countsInt64s) return this.bigIntUnpackr.unpack(bytes);
    let value: unknown;
    let int64s: number;
    if (length <= SCRATCH_SIZE && !scratch.busy) {
      const unpackr = this.scratchUnpackr;
      unpackr.int64s = 0;
      value = fromScratch(unpackr, bytes);
      int64s = unpackr.int64s;
    } else {
      // in place, bins as views of the bytes; but bytes in the read buffer are written over after this call: bins copied out
      const unpackr = isReadBuffer(bytes) ? this.scratchUnpackr : this.packr;
      unpackr.int64s = 0;
      value = unpackr.unpack(bytes);
      int64s = unpackr.int64s;
    }
    if (int64s === 0 || !hasUnsafeInt64s(bytes, int64s)) return value;
    return this.bigIntUnpackr.unpack(bytes);
  }

  /**
   * A session message that is not decoded (too heavy): the shapes it
   * defines take their slots as if it had been (msgpackr builds a slot's
   * reader from its keys when a later message first uses it).
   */
  private learnShapes(bytes: Uint8Array): void {
    const learned: (string[] | undefined)[] = [];
    checkMessage(bytes, 0, bytes.length, this.shapes!.slots, this.extensions, Infinity, learned);
    const slots = this.shapes!.slots;
    learned.forEach((keys, slot) => {
      if (keys !== undefined) slots[slot] = keys;
    });
    this.shapes!.check();
  }
}

/**
 * Encodes running now, in every codec: msgpackr's output buffer is one for
 * every Packr, so an encode that starts inside another (a value's toJSON or
 * getter making a call) takes `encode`, never `encodeInto`; and a session
 * refuses it outright, as msgpackr would number the shapes of the inner
 * message over those of the outer one (the caller then goes plain).
 */
let packing = 0;

function reentrant(): Error {
  return new Error('a value cannot be encoded in a record session while another value is being encoded');
}

/**
 * The buffer small messages are decoded from, one for every codec (decoding
 * is synchronous); busy while a decode reads it, so a msgpackr extension
 * decoding through a codec again takes the other way.
 */
const scratchBuffer = Buffer.allocUnsafe(SCRATCH_SIZE);
const scratch = {
  buffer: scratchBuffer,
  view: new Uint8Array(scratchBuffer.buffer, scratchBuffer.byteOffset, SCRATCH_SIZE),
  busy: false,
};

function fromScratch(unpackr: Unpackr, bytes: Uint8Array): unknown {
  const buffer = scratch.buffer;
  buffer.set(bytes);
  scratch.busy = true;
  try {
    return unpackr.unpack(buffer, bytes.length);
  } finally {
    scratch.busy = false;
    // nothing of this message stays for the next one to reach (checkMessage already keeps msgpackr within a message)
    scratch.view.fill(0, 0, bytes.length); // Uint8Array's fill: half the cost of Buffer's argument checks
  }
}

/**
 * A session's larger message, decoded where it is (as the plain codec's):
 * its bins views of the bytes received, not copies (msgpackr reads
 * `copyBuffers` as it meets each bin). `scratch` is marked busy meanwhile,
 * so a decode nested in it (an application's msgpackr extension) never
 * reads from the scratch buffer with copies off.
 */
function inPlace(unpackr: Unpackr, bytes: Uint8Array): unknown {
  const busy = scratch.busy;
  scratch.busy = true;
  (unpackr as { copyBuffers?: boolean }).copyBuffers = false;
  try {
    return unpackr.unpack(bytes);
  } finally {
    (unpackr as { copyBuffers?: boolean }).copyBuffers = true;
    scratch.busy = busy;
  }
}

/**
 * msgpackr's own buffer for `encode` and where it got to, given back at
 * the end of each encodeInto: it carries on after the last bytes `encode`
 * returned, and moves to a new buffer near the end, so bytes it returned
 * are never written over (as with msgpackr alone). One for every codec, as
 * msgpackr's buffer is one for every Packr.
 */
const own: { buffer: Buffer; position: number } = { buffer: Buffer.allocUnsafeSlow(8192), position: 0 };
const INITIAL_OWN_BUFFER = 8192;

/** @internal Bytes of msgpackr's own encode buffer now (tests of what an idle process holds). */
export function ownBufferSize(): number {
  return own.buffer.length;
}
/**
 * msgpackr's own buffer grows to the largest value encoded and, left alone,
 * stays that size for good (each new one it starts is as large): past this,
 * it goes back to INITIAL_OWN_BUFFER after the encode that grew it.
 */
const MAX_OWN_BUFFER = 1024 * 1024;

/**
 * A Packr that counts the numbers it writes as floats and the 64-bit
 * integers it reads, through the two options msgpackr reads at exactly those
 * points. Getters on the prototype keep the instance's shape, so msgpackr's
 * own property reads stay fast. (msgpackr also reads `useFloat32` to decode
 * a float32; that only bumps a count the next encode resets.)
 */
class CountingPackr extends Packr {
  /** Numbers written as floats since `encode` reset it. */
  floats = 0;
  /** uint64/int64 read since `decode` reset it. */
  int64s = 0;

  /** msgpackr's option: 0 = never float32 (every float goes out as float64). */
  get useFloat32(): number {
    this.floats++;
    return 0;
  }

  /** msgpackr's option: 64-bit integers as numbers (exact within ±2^53; beyond, `decode` decodes again). */
  get int64AsType(): 'number' {
    this.int64s++;
    return 'number';
  }
}

/** Shared default instance (the codec holds no per-call state across calls). */
export const msgpackCodec: Codec = new MsgpackCodec();
