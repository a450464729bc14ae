import type { FrameWriter } from './frame-writer.js';

/** The least room asked of `begin` for a msg encoded in place. */
export const IN_PLACE_ROOM = 8 * 1024;
/** Msgs are encoded in place while the room the recent ones need fits in this; larger ones are encoded apart. */
const MAX_IN_PLACE_ROOM = 64 * 1024;
/**
 * The room a msg of `size` bytes is given: msgpackr makes room for 3 bytes
 * per character of a string before writing it (UTF-8's worst case), and
 * moves to a fresh buffer of at least the target's size when that room is
 * not there (a 256 KiB arena: one per 16 KiB msg, measured in
 * bench/results/large-values.md); 3x what the msg took, plus msgpackr's
 * own margin, keeps that rare.
 */
const roomFor = (size: number): number => size * 3 + 64;
/** The scratch for large msgs grows in steps of this, with a quarter to spare. */
const SCRATCH_STEP = 64 * 1024;

/**
 * How much room to ask `begin` for, for a msg a codec encodes in place:
 * the room the largest of the last few msgs needed (`roomFor`), at least
 * IN_PLACE_ROOM. An arena with less left is retired first; a value that
 * outgrows the room is handed back by the codec in a buffer of its own,
 * which this keeps rare.
 *
 * Msgs whose room passes MAX_IN_PLACE_ROOM are encoded apart, into a
 * scratch buffer kept here and grown to their room (never into a buffer
 * msgpackr grows by 4x per value, dropped after each), and copied into
 * their frame at once: one copy, small next to their encoding, and the
 * frame holds only its own bytes while the socket writes it. The scratch
 * goes when the msgs get small again (or on `release`).
 */
export class InPlaceRoom {
  next = IN_PLACE_ROOM;
  /** where large msgs are encoded before their frame takes a copy; undefined while msgs are small */
  private scratch: Buffer | undefined;

  /** A msg of `size` bytes was written (in place or not); returns `size`. */
  used(size: number): number {
    const want = roomFor(size);
    if (want >= this.next) this.next = want;
    else if (this.next > IN_PLACE_ROOM) {
      this.next = Math.max(IN_PLACE_ROOM, want, this.next - (this.next >> 4)); // shrinks slowly back, never below what this msg needed
      if (this.scratch !== undefined && this.next <= this.scratch.length >> 2) this.scratch = undefined;
    }
    return size;
  }

  /** A msg outgrew the room (the codec returned its bytes); returns them. */
  outgrown(bytes: Uint8Array): Uint8Array {
    this.next = Math.max(this.next, roomFor(bytes.length));
    return bytes;
  }

  /** Drops the scratch buffer (the connection is idle). */
  release(): void {
    this.scratch = undefined;
  }

  /** Bytes held for large msgs (tests). */
  get heldBytes(): number {
    return this.scratch?.length ?? 0;
  }

  /**
   * Has `codec` encode `value` into the next frame of `writer`, after the
   * frame's `head` bytes: returns the msg's length, the frame begun (commit
   * it with `endRequest` / `endResponse`), or the msg's bytes when it was
   * encoded apart (large) or outgrew the room, nothing begun: valid until
   * the next encode here, so the caller copies them into its frame at once.
   * A throw leaves nothing begun. Callers check `codec.encodeInto` first.
   */
  encode(writer: FrameWriter, codec: { encodeInto?: EncodeInto }, value: unknown, head: number): number | Uint8Array {
    if (this.next > MAX_IN_PLACE_ROOM) return this.encodeApart(codec, value);
    const buf = writer.begin(head + this.next);
    const body = writer.at + head;
    let out: number | Uint8Array | undefined;
    try {
      out = codec.encodeInto!(value, buf, body);
    } finally {
      if (typeof out !== 'number') writer.discard();
    }
    return typeof out === 'number' ? this.used(out - body) : this.outgrown(out);
  }

  private encodeApart(codec: { encodeInto?: EncodeInto }, value: unknown): Uint8Array {
    let scratch = this.scratch;
    if (scratch === undefined || scratch.length < this.next) scratch = this.scratch = Buffer.allocUnsafeSlow(SCRATCH_STEP * Math.ceil((this.next * 1.25) / SCRATCH_STEP)); // headroom: values that grow a little reuse it
    const out = codec.encodeInto!(value, scratch, 0);
    if (typeof out !== 'number') return this.outgrown(out);
    this.used(out);
    return scratch.subarray(0, out);
  }
}

/** A codec's `encodeInto` (codec/codec.ts): the end of the msg in `target`, or its bytes elsewhere when it did not fit. */
type EncodeInto = (value: unknown, target: Uint8Array, offset: number) => number | Uint8Array;
