import { TimedEntry } from '../core/timeout-wheel.js';
import { CancelledError, EncodeError, ErrorCode, errorFromWireBytes, InternalError, type OccamsError, RemoteErrnoError, RemoteError, stackless } from '../errors.js';
import { EMPTY, FLAG_ERRNO, FLAG_ERROR_BYTES, FLAG_OK } from '../protocol/constants.js';
import { FEATURE_ERRNO_MESSAGE, FEATURE_ERROR_VALUE, FEATURE_STREAMING, FLAG_ERRNO_MESSAGE, FLAG_ERROR_VALUE } from '../protocol/extensions.js';
import type { ConnectionView } from './connection-view.js';
import { OutboundStream, type StreamPort } from './outbound-stream.js';
import { codeBytes, type EndCode, EndReason, type NotRunCode, returnQuietly, type WireErrorCode } from './request-end.js';
import type { RequestProbe } from './request-probe.js';

/**
 * What a request (and its OutboundStream) needs of its connection; the
 * ServerConnection implements it. The request knows its connection only
 * through this port, and hands handlers the read-only `view`.
 */
export interface RequestPort extends StreamPort {
  /** what handlers see of the connection: read-only */
  readonly view: ConnectionView;
  /** the client negotiated this extension feature */
  has(feature: number): boolean;
  /** a request ended the stream layer's way (counted) */
  count(why: EndReason, dispatched: boolean): void;
  /** its slot is free: called once per request */
  release(req: ServerRequest): void;
  /** its handler (or stream source) failed with `err`: logged */
  logHandlerError(req: ServerRequest, err: unknown): void;
  /** it began to stream: it leaves the server's concurrency limit */
  streams(req: ServerRequest): void;
  /** the server's concurrency limit starts it (it waited there) */
  startWaiting(req: ServerRequest, now: number): void;
  /** it waited for the concurrency limit and can no longer start in time: answered unrun */
  dropWaiting(req: ServerRequest): void;
}

/**
 * One request on the server, handed to the Dispatch. Settle it once: the
 * first settling call wins, later ones return false and send nothing.
 * Streaming: `item()` any number of times, then `end()` (or an error), or
 * hand over an AsyncIterable with `streamFrom()` (pulled only while the
 * client grants credit and the socket has room). A peer without the
 * streaming extension gets only the last item, as the final ok.
 *
 * The stream layer may end a request the handler has not settled: the
 * client cancelled it, its deadline or `handlerTimeout` passed, its stream
 * overflowed, the server is closing, or the connection went away. Then
 * `signal` aborts (with the reason), the `onCancel` handler runs, later
 * settling calls return false, and its slot is free at once.
 *
 * Life on the connection:
 *   read ─► held (over the cap) ─► waiting (server's concurrency limit) ─► dispatched ─► settled ─► released
 *            └──────────── refused / abandoned, never run ────────┘           └── abandoned ──┘
 * `released` (slot given back) follows `settled` at once, except for a
 * stream whose last frames still wait for credit or for the socket.
 */
export class ServerRequest extends TimedEntry {
  /** Nest-style metadata from the client (extension), else undefined. */
  meta: Record<string, unknown> | undefined = undefined;
  /** Epoch ms by which the caller stops waiting (extension), else undefined. */
  deadline: number | undefined = undefined;
  /** @internal ms this request may run without activity (a deadline or handlerTimeout); 0 = no limit */
  timeLimit = 0;
  /** @internal items the server may send before the client grants more (Infinity without FEATURE_CREDIT) */
  credit = Infinity;
  /** @internal the handler got it (false while held in the connection's queue) */
  dispatched = false;
  /** @internal bytes it holds while waiting in the connection's queue */
  heldBytes = 0;
  /** @internal clock time its frame was read */
  readAt = 0;
  /** @internal clock time its handler started (the concurrency limit's latency samples) */
  startedAt = 0;
  /** @internal the concurrency limit's turn it started in; 0 while the limit does not count it */
  turn = 0;
  /** @internal waiting in the server's queue for the concurrency limit (counted against its connection's cap) */
  waiting = false;
  /** @internal clock time it began waiting there */
  queuedAt = 0;
  /** @internal filed for its connection's timeout wheel (RequestTable) */
  tracked = false;
  /** @internal its way out once it streams to a peer speaking the extension */
  out: OutboundStream | undefined = undefined;
  /** @internal diagnostics channels and tracing; undefined while nobody observes */
  probe: RequestProbe | undefined = undefined;
  private done = false;
  private freed = false;
  private cancelled = false;
  private streaming = false;
  private held: unknown = undefined;
  private cancelHandler: (() => void) | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  private endReason: OccamsError | undefined = undefined;

  /** The connection it came on, as handlers may see it. */
  readonly connection: ConnectionView;

  constructor(
    /** its connection's side of it (internal: the stream layer's) */
    readonly port: RequestPort,
    readonly action: number | string,
    readonly seq: number,
    readonly clientId: number,
    /** the decoded message */
    readonly msg: unknown,
    /** the raw blob (a view: copy it to keep it past the request) */
    readonly blob: Buffer,
    /** fire-and-forget: nothing is sent back whatever the handler does */
    readonly isEvent: boolean,
  ) {
    super();
    this.connection = port.view;
  }

  get settled(): boolean {
    return this.done;
  }
  /** True once the stream layer ended it (cancel, deadline, disconnect...) before the handler settled it. */
  get isCancelled(): boolean {
    return this.cancelled;
  }
  /** True once its slot is given back (nothing more will be sent for it). */
  get released(): boolean {
    return this.freed;
  }
  /** True once it streams (items, or an AsyncIterable). */
  get isStreaming(): boolean {
    return this.streaming;
  }
  /** ms left until the caller's deadline (Infinity without one). */
  get timeLeft(): number {
    return this.deadline === undefined ? Infinity : this.deadline - this.port.clock.now();
  }

  /**
   * Aborts when the request is cancelled by the client, passes its deadline
   * or `handlerTimeout`, or its connection goes away; `signal.reason` says
   * which (an OccamsError). Created on first use: requests that never read
   * it pay nothing.
   */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.endReason !== undefined) this.controller.abort(this.endReason);
    }
    return this.controller.signal;
  }

  ok(value?: unknown, blob?: Uint8Array): boolean {
    if (this.done) return false;
    this.done = true;
    if (this.isEvent) return this.free();
    if (this.out === undefined) {
      if (!this.port.out.sendValue(FLAG_OK, this.seq, value, blob)) this.probe?.fail(new EncodeError());
      return this.free();
    }
    const bytes = this.port.out.encode(value);
    if (bytes === undefined) {
      this.probe?.fail(new EncodeError());
      return this.out.finish(FLAG_ERROR_BYTES, 0, EMPTY, codeBytes(ErrorCode.Encode));
    }
    return this.out.finish(FLAG_OK, bytes.length, bytes, blob);
  }

  /**
   * One value of a streamed result. Returns false once the request is
   * settled (or its stream just failed: overflow, encode).
   */
  item(value: unknown): boolean {
    if (this.done) return false;
    if (!this.streaming) this.startStreaming();
    if (this.isEvent) return true;
    if (!this.port.has(FEATURE_STREAMING)) {
      this.held = value;
      return true;
    }
    return (this.out ??= new OutboundStream(this)).push(value);
  }

  /** Completes a streamed result. */
  end(): boolean {
    if (this.done) return false;
    this.done = true;
    if (this.isEvent) return this.free();
    if (this.out !== undefined) return this.out.finish(FLAG_OK, 0, EMPTY, undefined);
    const last = this.port.has(FEATURE_STREAMING) ? undefined : this.held;
    this.held = undefined;
    this.port.out.sendValue(FLAG_OK, this.seq, last, undefined);
    return this.free();
  }

  /**
   * Streams what `source` yields, pulling the next value only while the
   * client has granted credit and the socket has room, then ends. A throw
   * from the source goes to `onError`, which must settle the request
   * (default: `rpc_internal_err`). If the request ends early (cancel,
   * deadline, close), the source's `return()` is called. Resolves once the
   * source is done with.
   */
  streamFrom(source: AsyncIterable<unknown>, onError?: (err: unknown) => void): Promise<void> {
    const fail = onError ?? ((err: unknown) => this.failInternal(err));
    if (this.done) {
      returnQuietly(source[Symbol.asyncIterator]());
      return Promise.resolve();
    }
    if (!this.streaming) this.startStreaming();
    const it = source[Symbol.asyncIterator]();
    if (!this.isEvent && this.port.has(FEATURE_STREAMING)) return (this.out ??= new OutboundStream(this)).pullFrom(it, fail);
    return this.collect(it, fail);
  }

  /**
   * A numeric user error: wire flag 1, or flag 6 carrying `message` too when
   * the client speaks that extension (v1 peers get the errno alone).
   */
  errno(code: number, message?: string): boolean {
    if (this.done) return false;
    this.done = true;
    this.probe?.fail(new RemoteErrnoError(code, message));
    if (message !== undefined && this.port.has(FEATURE_ERRNO_MESSAGE)) return this.final(FLAG_ERRNO_MESSAGE, code, Buffer.from(message, 'utf8'));
    return this.final(FLAG_ERRNO, code, EMPTY);
  }

  /** A user error message or raw error bytes (wire flag 2). */
  error(message: string | Uint8Array): boolean {
    if (this.done) return false;
    this.done = true;
    const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
    this.probe?.fail(new RemoteError(bytes));
    return this.final(FLAG_ERROR_BYTES, 0, bytes);
  }

  /**
   * A user error value, encoded with the codec: flag 4 for peers that speak
   * the extension (they decode it back), flag 2 with the same bytes for v1
   * peers (they decode with the error type they expect).
   */
  errorValue(value: unknown): boolean {
    if (this.done) return false;
    this.done = true;
    const bytes = this.port.out.encode(value);
    this.probe?.fail(bytes === undefined ? new EncodeError() : new RemoteError(bytes, value));
    if (bytes === undefined) return this.final(FLAG_ERROR_BYTES, 0, codeBytes(ErrorCode.Encode));
    return this.final(this.port.has(FEATURE_ERROR_VALUE) ? FLAG_ERROR_VALUE : FLAG_ERROR_BYTES, 0, bytes);
  }

  /** A framework error (`rpc_*`, wire flag 2). */
  internal(code: WireErrorCode): boolean {
    if (this.done) return false;
    this.done = true;
    this.probe?.fail(errorFromWireBytes(codeBytes(code)));
    return this.final(FLAG_ERROR_BYTES, 0, codeBytes(code));
  }

  /**
   * Registers what to do when the stream layer ends the request before the
   * handler settled it (see the class comment): typically unsubscribing the
   * handler's Observable. Runs at most once.
   */
  onCancel(handler: () => void): void {
    if (this.done) return;
    this.cancelHandler = handler;
  }

  /** @internal Its handler threw `err` (it is answered rpc_internal_err): kept for diagnostics and its span. */
  handlerThrew(err: unknown): void {
    this.probe?.fail(new InternalError(`handler for ${String(this.action)} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
  }

  /**
   * @internal Refuses a request that never started (its handler never saw
   * it): answers `code` (nothing to an event) and frees its slot.
   */
  refuse(code: NotRunCode): void {
    if (this.freed) return;
    this.done = true;
    if (!this.isEvent) this.port.out.writeCode(this.seq, code);
    this.free();
  }

  /** The client cancelled this request (CANCEL): ends it without a response. */
  cancel(): void {
    this.abandon(EndReason.Cancel, stackless(CancelledError, 'cancelled by the client'), undefined);
  }

  /**
   * @internal Ends the request from the stream layer: frees its slot at
   * once, answers `reply` (if any, and owed), aborts `signal` and runs the
   * cancel handler if the handler had not settled it.
   */
  abandon(why: EndReason, reason: OccamsError, reply: EndCode | undefined): void {
    if (this.freed) return;
    const handlerDone = this.done;
    const handler = this.cancelHandler;
    this.done = true;
    this.cancelled = !handlerDone;
    this.held = undefined;
    this.probe?.fail(reason);
    this.out?.drop();
    if (reply !== undefined && !this.isEvent) this.port.out.writeCode(this.seq, reply);
    this.free();
    this.port.count(why, this.dispatched);
    if (handlerDone || !this.dispatched) return;
    this.endReason = reason;
    this.controller?.abort(reason);
    if (handler !== undefined) {
      try {
        handler();
      } catch (err) {
        this.port.logHandlerError(this, err);
      }
    }
  }

  /** @internal The slot is free (answer sent, or the request abandoned). */
  free(): true {
    if (this.freed) return true;
    this.freed = true;
    this.cancelHandler = undefined;
    this.port.release(this);
    this.probe?.end();
    return true;
  }

  /** A stream may run for as long as its consumer reads: it leaves the server's concurrency limit. */
  private startStreaming(): void {
    this.streaming = true;
    if (this.turn !== 0) this.port.streams(this);
  }

  private final(flag: number, msgLenOrErrno: number, blob: Uint8Array): boolean {
    if (this.isEvent) return this.free();
    if (this.out !== undefined) return this.out.finish(flag, msgLenOrErrno, EMPTY, blob);
    this.port.out.writeFrame(flag, msgLenOrErrno, this.seq, EMPTY, blob);
    return this.free();
  }

  private failInternal(err: unknown): void {
    this.port.logHandlerError(this, err);
    this.handlerThrew(err);
    this.internal(ErrorCode.Internal);
  }

  /** A peer without streaming (or an event): keep the last value, answer it at the end. */
  private async collect(it: AsyncIterator<unknown>, fail: (err: unknown) => void): Promise<void> {
    try {
      for (;;) {
        const r = await it.next();
        if (this.done) return returnQuietly(it);
        if (r.done) break;
        this.held = r.value;
      }
    } catch (err) {
      if (!this.done) fail(err);
      return;
    }
    this.end();
  }
}
