import type { Codec } from '../codec/codec.js';
import type { Clock } from '../core/clock.js';
import { Fifo } from '../core/fifo.js';
import type { OccamsError } from '../errors.js';
import { ErrorCode, StreamOverflowError } from '../errors.js';
import { EMPTY } from '../protocol/constants.js';
import { FLAG_STREAM_ITEM } from '../protocol/extensions.js';
import { encodeFailure, type EndCode, EndReason, returnQuietly } from './request-end.js';
import type { ResponseWriter } from './response-writer.js';

/**
 * What a stream needs of its connection: a part of RequestPort (which
 * extends it), so that this file and server-request.ts do not import each
 * other.
 */
export interface StreamPort {
  /** frames go out through it */
  readonly out: ResponseWriter;
  readonly codec: Codec;
  readonly clock: Clock;
  /** bytes one pushed stream may queue before it fails (streamBufferBytes) */
  readonly streamBufferBytes: number;
  /** false while writes are backed up: streams wait (`waitForRoom`) */
  readonly writable: boolean;
  /** a stream waits for the socket to drain, then is resumed */
  waitForRoom(stream: OutboundStream): void;
  /** a pushed stream queued this many bytes (the server's peak) */
  noteBuffered(bytes: number): void;
}

/** What a stream needs of its request (ServerRequest). */
export interface StreamedRequest {
  readonly port: StreamPort;
  readonly action: number | string;
  readonly seq: number;
  /** items the client still grants; each item sent takes one */
  credit: number;
  readonly settled: boolean;
  readonly released: boolean;
  /** the last item went: the request ends */
  end(): boolean;
  /** the stream failed: the request ends the stream layer's way */
  abandon(why: EndReason, reason: OccamsError, reply: EndCode | undefined): void;
  /** the last frame is out: the request's slot is free */
  free(): true;
}

/** Bytes a queued frame is counted for beyond its payload (header and bookkeeping). */
const FRAME_OVERHEAD = 64;

/** A frame waiting to go out: an item (uses one credit), or the stream's last frame. */
interface QueuedFrame {
  flag: number;
  msgLenOrErrno: number;
  msg: Uint8Array;
  blob: Uint8Array | undefined;
  last: boolean;
}

/**
 * One streamed result on its way out to a peer speaking the streaming
 * extension. Items leave only while the client has granted credit
 * (FEATURE_CREDIT; unlimited without it) and the socket is not backed up.
 *
 *   push (Observable, req.item()) ─► credit and room? ─yes─► STREAM_ITEM frame
 *                                        │ no
 *                                        ▼
 *                 queue of encoded frames, <= streamBufferBytes ─► out as credit / 'drain' allow
 *                 past the bound: this stream alone fails (rpc_stream_overflow)
 *
 *   pull (AsyncIterable) ─► next() only while credit and room: nothing is queued
 *
 * The final frame (ok, or an error) goes out after the queued items; the
 * request's slot is released when it has.
 * Invariants: `queuedBytes` sums the queued frames; `pulling` while a
 * `next()` of `source` is pending (never two at once).
 */
export class OutboundStream {
  private readonly queue = new Fifo<QueuedFrame>();
  /** bytes queued (payload + FRAME_OVERHEAD per frame) */
  queuedBytes = 0;
  /** epoch ms of the last item sent or credit received (the idle deadline restarts from it) */
  lastActive: number;
  private source: AsyncIterator<unknown> | undefined = undefined;
  private pulling = false;
  private fail: ((err: unknown) => void) | undefined = undefined;
  private finished: (() => void) | undefined = undefined;
  private readonly onNextBound = (r: IteratorResult<unknown>): void => this.onNext(r);
  private readonly onThrowBound = (err: unknown): void => this.onThrow(err);

  private readonly port: StreamPort;

  constructor(readonly req: StreamedRequest) {
    this.port = req.port;
    this.lastActive = this.port.clock.now();
  }

  get queued(): number {
    return this.queue.length;
  }

  /** A pushed item: out now, or queued. False when the stream just failed. */
  push(value: unknown): boolean {
    const req = this.req;
    const conn = this.port;
    if (this.queue.length === 0 && req.credit > 0 && conn.writable) return this.send(value);
    const bytes = this.encode(value);
    if (bytes === undefined) return false;
    // a copy: a codec's bytes are only good until its next encode (Codec.encode)
    this.queue.push({ flag: FLAG_STREAM_ITEM, msgLenOrErrno: bytes.length, msg: Buffer.from(bytes), blob: undefined, last: false });
    this.queuedBytes += bytes.length + FRAME_OVERHEAD;
    conn.noteBuffered(this.queuedBytes);
    if (this.queuedBytes > conn.streamBufferBytes) {
      req.abandon(
        EndReason.Overflow,
        new StreamOverflowError(
          `stream ${req.seq} (${String(req.action)}) queued ${this.queuedBytes} bytes its client did not take, over streamBufferBytes (${conn.streamBufferBytes}): ` +
            'return an AsyncIterable (pulled as the client takes items) instead of a pushing Observable, or raise streamBufferBytes',
        ),
        ErrorCode.StreamOverflow,
      );
      return false;
    }
    if (req.credit > 0) conn.waitForRoom(this);
    return true;
  }

  /** Pulls `it` as credit and room allow; resolves once it is done with. */
  pullFrom(it: AsyncIterator<unknown>, fail: (err: unknown) => void): Promise<void> {
    this.source = it;
    this.fail = fail;
    const done = new Promise<void>((resolve) => (this.finished = resolve));
    this.pull();
    return done;
  }

  /** The stream's last frame: now if nothing is queued, else after the queue. Releases the slot once sent. */
  finish(flag: number, msgLenOrErrno: number, msg: Uint8Array, blob: Uint8Array | undefined): true {
    this.stopSource(true); // settled by someone else while the source still had values
    if (this.queue.length === 0) {
      this.port.out.writeFrame(flag, msgLenOrErrno, this.req.seq, msg, blob);
      return this.req.free();
    }
    this.queue.push({ flag, msgLenOrErrno, msg: msg.length === 0 ? msg : Buffer.from(msg), blob, last: true }); // a copy, as in push
    this.queuedBytes += msg.length + (blob?.length ?? 0) + FRAME_OVERHEAD;
    return true;
  }

  /** The client granted more items (already added to `req.credit`). */
  credited(): void {
    this.lastActive = this.port.clock.now();
    this.resume();
  }

  /** Sends what credit and room allow; then pulls the source if it is one. */
  resume(): void {
    const req = this.req;
    const conn = this.port;
    if (req.released) return;
    while (this.queue.length > 0) {
      const f = this.queue.peek()!;
      if (!f.last) {
        if (req.credit <= 0) return;
        if (!conn.writable) return conn.waitForRoom(this);
        req.credit--;
        this.lastActive = conn.clock.now();
      }
      this.queue.shift();
      this.queuedBytes -= f.msg.length + (f.blob?.length ?? 0) + FRAME_OVERHEAD;
      conn.out.writeFrame(f.flag, f.msgLenOrErrno, req.seq, f.msg, f.blob);
      if (f.last) {
        req.free();
        return;
      }
    }
    this.pull();
  }

  /** The request ended early: nothing more goes out; the source is told to stop. */
  drop(): void {
    this.queue.drain();
    this.queuedBytes = 0;
    this.stopSource(true);
  }

  // ---- pull ------------------------------------------------------------------

  private pull(): void {
    const req = this.req;
    if (this.source === undefined || this.pulling || req.settled) return;
    if (req.credit <= 0) return;
    if (!this.port.writable) return this.port.waitForRoom(this);
    this.pulling = true;
    let next: Promise<IteratorResult<unknown>>;
    try {
      next = this.source.next();
    } catch (err) {
      this.pulling = false;
      return this.onThrow(err);
    }
    next.then(this.onNextBound, this.onThrowBound);
  }

  private onNext(r: IteratorResult<unknown>): void {
    this.pulling = false;
    if (this.req.settled || this.source === undefined) return;
    if (r.done) {
      this.source = undefined;
      this.req.end();
      this.settleSource();
      return;
    }
    if (this.send(r.value)) this.pull();
  }

  private onThrow(err: unknown): void {
    this.pulling = false;
    this.source = undefined;
    if (!this.req.settled) this.fail?.(err);
    this.settleSource();
  }

  private stopSource(early: boolean): void {
    const it = this.source;
    if (it === undefined) return;
    this.source = undefined;
    if (early) returnQuietly(it);
    this.settleSource();
  }

  private settleSource(): void {
    const finished = this.finished;
    this.finished = undefined;
    finished?.();
  }

  // ---- frames ----------------------------------------------------------------

  /** Writes one item now (credit and room were checked). */
  private send(value: unknown): boolean {
    const req = this.req;
    const bytes = this.encode(value);
    if (bytes === undefined) return false;
    req.credit--;
    this.lastActive = this.port.clock.now();
    this.port.out.writeFrame(FLAG_STREAM_ITEM, bytes.length, req.seq, bytes, undefined);
    return true;
  }

  private encode(value: unknown): Uint8Array | undefined {
    if (value === undefined) return EMPTY;
    try {
      return this.port.codec.encode(value);
    } catch (err) {
      this.req.abandon(EndReason.Encode, encodeFailure(err), ErrorCode.Encode);
      return undefined;
    }
  }
}
