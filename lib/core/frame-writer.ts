import type { Writable } from 'node:stream';

import { IllegalStateError } from '../errors.js';
import { REQUEST_HEADER_SIZE, RESPONSE_HEADER_SIZE } from '../protocol/constants.js';
import { writeDeadlineHeader } from '../protocol/extensions.js';
import { writeRequestHeader } from '../protocol/request-frame.js';
import { writeResponseHeader } from '../protocol/response-frame.js';
import { writeU32 } from '../protocol/u64.js';

/** Size of a fresh write arena. */
export const ARENA_SIZE = 256 * 1024;
/** Pending bytes that trigger a flush before the end of the tick. */
export const DEFAULT_FLUSH_THRESHOLD = 64 * 1024;
/**
 * The first bytes of a tick go out once this many are pending, without
 * waiting for the end of the tick; the rest at the threshold or the tick's
 * end. The peer starts on them while the rest is produced: with 64 small
 * calls in flight, 1.2-1.7x the throughput and about half the p50
 * (bench/results/ab-first-flush.json, levers.md); with 1024, about even.
 * Only small frames (under FIRST_FLUSH each) go out early this way: a tick
 * of a few 16 KiB frames made a write for its first frame alone, 0.56
 * writes per call at 16 KiB x 64 against the bare reference's 0.31; without
 * it, 0.39 and 1.03-1.10x the req/s (bench/results/ab-flush-large.md).
 */
export const FIRST_FLUSH = 4 * 1024;

/**
 * Spare arenas kept per writer: as many as were ever waiting on the socket
 * at once (what the traffic in flight needed), at least 2, at most 32
 * (8 MiB). Fewer, and heavy traffic (16 KiB x 1024 in flight) allocates a
 * fresh 256 KiB arena for most flushes, each a GC triggered by external
 * memory.
 */
const MIN_SPARE_ARENAS = 2;
const MAX_SPARE_ARENAS = 32;
/**
 * Arenas grown for a frame past ARENA_SIZE (a 1 MiB value) kept for the
 * next such frames once written, at most this many: a fresh one per frame
 * is fresh pages the kernel zeroes as the frame is copied in, and external
 * memory that sets off GCs. Given back when the connection idles (`trim`).
 */
const MAX_LARGE_SPARES = 2;
/** Larger arenas (8 MiB values) are not kept: at most 2 x 4 MiB held this way, for a connection that never idles. */
const MAX_LARGE_SPARE_SIZE = 4 * 1024 * 1024;
/** A large arena that may be kept is sized with this much headroom, in steps of 64 KiB, so values that grow a little reuse it; larger ones get exactly their size. */
const largeArenaSize = (size: number): number => Math.ceil((size + (size >> 3)) / 65536) * 65536;

/** A write buffer and the socket writes still reading from it. */
class Arena {
  writes = 0;
  retired = false;
  /** counted in the writer's `retiredBusy` */
  counted = false;
  readonly written: () => void;
  constructor(
    readonly buf: Buffer,
    owner: FrameWriter,
  ) {
    this.written = () => {
      if (--this.writes === 0 && this.retired) owner.recycle(this);
    };
  }
}

/**
 * Coalesces frames into one socket write per tick.
 *
 *   arena: [ flushed ... | start .. pending .. pos | free ...... ]
 *                          └─ one socket.write at flush ─┘
 *
 * Frames are written at fixed offsets straight into the arena; the pending
 * region goes out in one `write` on `process.nextTick` (after every promise
 * continuation of the current turn has queued its frame), or at once past
 * the byte threshold (FIRST_FLUSH for the tick's first such write, so the
 * peer can start early). Flushed bytes are never touched again while the
 * socket may still read them: a full arena is retired and only reused once
 * every write from it has completed, so steady traffic allocates nothing.
 */
export class FrameWriter {
  private readonly socket: Writable;
  private readonly threshold: number;
  private readonly firstThreshold: number;
  /** pending bytes that flush at once, in this tick: FIRST_FLUSH until the tick's first such flush, then `threshold` */
  private tickThreshold: number;
  private current: Arena;
  private arena: Buffer;
  private readonly spare: Arena[] = [];
  /** written arenas larger than ARENA_SIZE, for frames that need one (MAX_LARGE_SPARES) */
  private readonly largeSpare: Arena[] = [];
  /** arenas retired and still read by socket writes */
  private retiredBusy = 0;
  /** spares kept: the most arenas ever busy at once, bounded */
  private keep = MIN_SPARE_ARENAS;
  /** first byte not yet handed to the socket */
  private start = 0;
  /** first free byte; start <= pos <= arena.length */
  private pos = 0;
  private scheduled = false;
  /** between `begin` and its end or `discard`: the frame at `pos` is being encoded, nothing else may be written */
  private building = false;
  /**
   * Id of the batch frames are written into now; every flush that hands
   * bytes to the socket closes the batch. A frame of batch b reached the
   * socket iff b < batch. A frame's batch is what `request` / `endRequest`
   * return: read before the flush that frame may itself set off (reading
   * `batch` after the call would name the next batch, never closed if
   * nothing else is written).
   */
  batch = 1;
  /** bytes handed to the socket so far (minus `socket.writableLength`: bytes it has taken) */
  flushed = 0;
  private readonly flushOnTick = (): void => {
    this.scheduled = false;
    this.tickThreshold = this.firstThreshold;
    this.flush();
  };

  /**
   * @param onBackpressure called when `socket.write` returns false (the
   *   socket's buffer passed its high-water mark); wait for 'drain'.
   */
  constructor(
    socket: Writable,
    threshold = DEFAULT_FLUSH_THRESHOLD,
    private readonly onBackpressure?: () => void,
    /** bytes written after the socket ended or was destroyed, dropped: told, never silent */
    private readonly onDropped?: (bytes: number) => void,
  ) {
    this.socket = socket;
    this.threshold = threshold;
    this.firstThreshold = Math.min(threshold, FIRST_FLUSH);
    this.tickThreshold = this.firstThreshold;
    this.current = new Arena(Buffer.allocUnsafe(ARENA_SIZE), this);
    this.arena = this.current.buf;
  }

  /** Bytes waiting for the next flush. */
  get pending(): number {
    return this.pos - this.start;
  }

  /** Writes a request frame; `ext` (if any) is prefixed to msg as u32 len + bytes. Returns the batch it went into. */
  request(
    format: number,
    action: number,
    actionBytes: Uint8Array | undefined,
    seq: number,
    clientId: number,
    msg: Uint8Array,
    blob: Uint8Array | undefined,
    ext: Uint8Array | undefined,
  ): number {
    const actionLen = actionBytes === undefined ? 0 : actionBytes.length;
    const blobLen = blob === undefined ? 0 : blob.length;
    const msgLen = ext === undefined ? msg.length : 4 + ext.length + msg.length;
    const size = REQUEST_HEADER_SIZE + actionLen + msgLen + blobLen;
    const buf = this.reserve(size);
    let off = this.pos;
    writeRequestHeader(buf, off, format, action, actionBytes, seq, clientId, msgLen, blobLen);
    off += REQUEST_HEADER_SIZE;
    if (actionBytes !== undefined) {
      buf.set(actionBytes, off);
      off += actionLen;
    }
    if (ext !== undefined) {
      buf.writeUInt32LE(ext.length, off);
      buf.set(ext, off + 4);
      off += 4 + ext.length;
    }
    buf.set(msg, off);
    if (blob !== undefined) buf.set(blob, off + msg.length);
    return this.commit(size);
  }

  /** Writes a response frame; for flag 1 pass the errno as `msgLenOrErrno` and an empty msg. */
  response(flag: number, msgLenOrErrno: number, seq: number, msg: Uint8Array, blob: Uint8Array | undefined): void {
    const blobLen = blob === undefined ? 0 : blob.length;
    const size = RESPONSE_HEADER_SIZE + msg.length + blobLen;
    const buf = this.reserve(size);
    const off = this.pos;
    writeResponseHeader(buf, off, flag, msgLenOrErrno, seq, blobLen);
    buf.set(msg, off + RESPONSE_HEADER_SIZE);
    if (blob !== undefined) buf.set(blob, off + RESPONSE_HEADER_SIZE + msg.length);
    this.commit(size);
  }

  /**
   * Room for a frame of up to `room` bytes, for a caller that encodes its
   * msg in place: returns the buffer; the frame starts at `at`, and is
   * committed by `endRequest` / `endResponse` once its msg is there.
   */
  begin(room: number): Buffer {
    const buf = this.reserve(room);
    this.building = true;
    return buf;
  }

  /** Gives up the frame `begin` started (its msg could not be encoded in place). */
  discard(): void {
    this.building = false;
  }

  /** Where the frame being built by `begin` starts. */
  get at(): number {
    return this.pos;
  }

  /**
   * Commits a request frame from `at`: its header and action written here,
   * its msg (`msgLen` bytes) already after them. No blob. With `left` >= 0
   * the ext header `{d: left}` is written here between the action and the
   * msg, whose room (`deadlineExtSize(left)` bytes) the caller left (and
   * whose FORMAT_EXT_HEADER bit it set). Returns the batch it went into.
   */
  endRequest(format: number, action: number, actionBytes: Uint8Array | undefined, seq: number, clientId: number, msgLen: number, left = -1): number {
    const buf = this.arena;
    const off = this.pos;
    this.building = false;
    const actionLen = actionBytes === undefined ? 0 : actionBytes.length;
    if (left >= 0) {
      const at = off + REQUEST_HEADER_SIZE + actionLen;
      const extLen = writeDeadlineHeader(buf, at + 4, left);
      writeU32(buf, at, extLen);
      msgLen += 4 + extLen;
    }
    writeRequestHeader(buf, off, format, action, actionBytes, seq, clientId, msgLen, 0);
    if (actionBytes !== undefined) buf.set(actionBytes, off + REQUEST_HEADER_SIZE);
    return this.commit(REQUEST_HEADER_SIZE + actionLen + msgLen);
  }

  /** Commits a response frame from `at`: its header written here, its msg (`msgLen` bytes) already after it. No blob. */
  endResponse(flag: number, seq: number, msgLen: number): void {
    this.building = false;
    writeResponseHeader(this.arena, this.pos, flag, msgLen, seq, 0);
    this.commit(RESPONSE_HEADER_SIZE + msgLen);
  }

  /** Hands the pending region to the socket. Returns what `socket.write` said. */
  flush(): boolean {
    if (this.pos === this.start) return true;
    const chunk = this.arena.subarray(this.start, this.pos);
    this.start = this.pos;
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) {
      this.onDropped?.(chunk.length);
      return false;
    }
    this.flushed += chunk.length;
    const arena = this.current;
    arena.writes++;
    this.batch++;
    const ok = socket.write(chunk, arena.written);
    if (!ok) this.onBackpressure?.();
    return ok;
  }

  /**
   * Gives back what a burst grew (the connection is idle): spares beyond
   * MIN_SPARE_ARENAS, and a current arena grown past ARENA_SIZE for a
   * large frame when nothing is pending in it.
   */
  trim(): void {
    if (this.spare.length > MIN_SPARE_ARENAS) this.spare.length = MIN_SPARE_ARENAS;
    this.keep = MIN_SPARE_ARENAS;
    const current = this.current;
    if (current.buf.length > ARENA_SIZE && this.start === this.pos && !this.building) {
      current.retired = true;
      if (current.writes === 0) this.recycle(current);
      else {
        current.counted = true;
        this.retiredBusy++;
      }
      this.current = this.spare.pop() ?? new Arena(Buffer.allocUnsafe(ARENA_SIZE), this);
      this.arena = this.current.buf;
      this.start = 0;
      this.pos = 0;
    }
    this.largeSpare.length = 0; // after the current one was recycled into it
  }

  /** Bytes held in arenas (current and spares), for stats and tests. */
  get heldBytes(): number {
    let bytes = this.current.buf.length;
    for (const arena of this.spare) bytes += arena.buf.length;
    for (const arena of this.largeSpare) bytes += arena.buf.length;
    return bytes;
  }

  /** An arena whose writes have all completed comes back for reuse. */
  recycle(arena: Arena): void {
    if (arena.counted) {
      arena.counted = false;
      this.retiredBusy--;
    }
    if (arena.buf.length === ARENA_SIZE) {
      if (this.spare.length < this.keep) {
        arena.retired = false;
        this.spare.push(arena);
      }
    } else if (arena.buf.length <= MAX_LARGE_SPARE_SIZE && this.largeSpare.length < MAX_LARGE_SPARES) {
      arena.retired = false;
      this.largeSpare.push(arena);
    }
  }

  /** A written large arena with room for `size` bytes and at most twice that, if one is kept. */
  private takeLarge(size: number): Arena | undefined {
    const spares = this.largeSpare;
    for (let i = 0; i < spares.length; i++) {
      const arena = spares[i]!;
      if (arena.buf.length >= size && arena.buf.length <= 2 * size) {
        spares.splice(i, 1);
        return arena;
      }
    }
    return undefined;
  }

  private reserve(size: number): Buffer {
    // user code run by an encoder (a toJSON, a getter) that writes on this
    // connection would write over the frame being encoded
    if (this.building) throw new IllegalStateError('cannot write a frame while another is being encoded in place');
    if (this.arena.length - this.pos < size) {
      this.flush();
      const old = this.current;
      old.retired = true;
      if (old.writes === 0) this.recycle(old);
      else {
        old.counted = true;
        if (++this.retiredBusy >= this.keep) this.keep = Math.min(MAX_SPARE_ARENAS, this.retiredBusy + 1);
      }
      const next = size <= ARENA_SIZE ? this.spare.pop() : this.takeLarge(size);
      this.current = next ?? new Arena(Buffer.allocUnsafe(size <= ARENA_SIZE ? ARENA_SIZE : size > MAX_LARGE_SPARE_SIZE ? size : largeArenaSize(size)), this);
      this.arena = this.current.buf;
      this.start = 0;
      this.pos = 0;
    }
    return this.arena;
  }

  /** Counts the frame of `size` bytes at `pos` as written; returns its batch (taken before it may flush). */
  private commit(size: number): number {
    const batch = this.batch;
    this.pos += size;
    const pending = this.pos - this.start;
    // a tick's first bytes go out early only as small frames add up to them: a frame that large alone waits for the
    // threshold or the tick's end, else a tick of a few large frames costs a write each (twice the reference's writes)
    if (pending >= this.tickThreshold && (pending >= this.threshold || size < this.firstThreshold)) {
      this.flush();
      // the first bytes of a tick go out early (the peer starts on them), the rest in full batches
      this.tickThreshold = this.threshold;
    } else if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushOnTick);
    }
    return batch;
  }
}
