import type { Socket } from 'node:net';
import { describeTlsError } from '../transport/dial.js';
import type { Codec } from '../codec/codec.js';
import type { Clock } from '../core/clock.js';
import { FrameWriter } from '../core/frame-writer.js';
import { Lifecycle } from '../core/lifecycle.js';
import { TimeoutWheel } from '../core/timeout-wheel.js';
import { WaitQueue } from '../core/wait-queue.js';
import { ClosedError, DecodeError, EncodeError, IoError, type OccamsError, ProtocolError, QueueFullError, TimeoutError, UnreachableError } from '../errors.js';
import { ACTION_PING, EMPTY, FLAG_OK } from '../protocol/constants.js';
import {
  ACTION_CANCEL,
  ACTION_CREDIT,
  ACTION_GOAWAY_ACK,
  ACTION_HELLO,
  DEFAULT_STREAM_CREDIT,
  FEATURE_CANCEL,
  FEATURE_CREDIT,
  FEATURE_EVENTS,
  FEATURE_GOAWAY_ACK,
  FLAG_GOAWAY,
  FLAG_STREAM_ITEM,
  FORMAT_EVENT,
  FORMAT_EXT_HEADER,
} from '../protocol/extensions.js';
import { grantedFeatures, helloCodec, helloOffer, serverWindow } from '../protocol/hello.js';
import { ResponseDecoder, type ResponseSink } from '../protocol/response-decoder.js';
import type { AddressLike } from '../transport/address.js';
import { AbandonedSeqs } from './abandoned-seqs.js';
import { actionBytes } from '../core/action-bytes.js';
import { Call, CallKind, type CallOptions, type CallOwner, CallState, IGNORE, PromiseHandler, type ResponseHandler, deliverError, rethrow } from './call.js';
import { type ClientStreamOptions, type NormalizedClientStreamOptions, normalizeClientStreamOptions } from './client-options.js';
import { connectClientStream } from './handshake.js';
import { Heartbeat, type HeartbeatPort } from './heartbeat.js';
import { extHeader, responseError } from './wire.js';

export type ClientStreamState = 'ready' | 'closing' | 'closed';

const TRANSITIONS = { ready: ['closing', 'closed'], closing: ['closed'], closed: [] } as const;

/** Buffered event bytes past which fire-and-forget events are refused. */
const MAX_EVENT_BACKLOG = 8 * 1024 * 1024;
/** Items taken from a stream before its credit is renewed (half the server's default window). */
const AUTO_GRANT = DEFAULT_STREAM_CREDIT / 2;

/**
 * One multiplexed connection to an occams server.
 *
 *   call() ─► window free? ─yes─► encode ─► FrameWriter (one write per tick)
 *                │ no                              │
 *                ▼                                 ▼ seq
 *          WaitQueue (bounded) ◄─ slot freed ─ pending Map<seq, Call> ◄─ ResponseDecoder
 *                                                  ▲
 *                 TimeoutWheel (aligned ticks) ────┘ fails whole buckets
 *
 * Lifecycle: ready ─close()─► closing (accepted calls finish) ─► closed.
 * Events: 'close' (error, or undefined when graceful), 'goaway' (the server is draining).
 */
export class ClientStream extends Lifecycle<'ready'> implements CallOwner, ResponseSink {
  readonly options: NormalizedClientStreamOptions;
  private readonly socket: Socket;
  private readonly writer: FrameWriter;
  private readonly decoder: ResponseDecoder;
  private readonly codec: Codec;
  private readonly clock: Clock;
  private readonly wheel: TimeoutWheel<Call>;
  private readonly heartbeat: Heartbeat;
  /** every Sent call awaiting its response, by seq */
  private readonly pending = new Map<number, Call>();
  /** User calls waiting for a window slot */
  private readonly queue: WaitQueue<Call>;
  private readonly abandoned = new AbandonedSeqs();
  /** next seq to use; seqs < nextSeq have been sent */
  private nextSeq = 1;
  /** User calls Sent and not Done; <= window */
  private inFlight = 0;
  /** options.maxInFlight, clamped to the in-flight cap the server announced in HELLO */
  private window: number;
  /** events written but not yet handed to the socket; they resolve at the flush */
  private unflushedEvents: Call[] = [];
  private readonly settleFlushedBound = (): void => this.settleFlushed();
  private _features = 0;
  private _draining = false;
  /** the last action string sent and its UTF-8 bytes */
  private lastAction = '';
  private lastActionBytes: Buffer = EMPTY;
  /**
   * Called whenever a user call leaves the window (for pools that keep
   * their own queue). Set by the owner; not an event, to stay cheap.
   */
  onSlotFreed: (() => void) | undefined = undefined;

  /**
   * Connects, then negotiates the extensions (unless turned off). A server
   * that hangs up on HELLO instead of answering it is dialled again and
   * spoken to in plain v1.
   */
  static connect(address: AddressLike, options: ClientStreamOptions = {}): Promise<ClientStream> {
    return connectClientStream(address, normalizeClientStreamOptions(options));
  }

  /** Wraps an already connected socket. Call `handshake()` to use the extensions. */
  constructor(socket: Socket, options: ClientStreamOptions = {}) {
    super('connection', TRANSITIONS, 'ready');
    this.options = normalizeClientStreamOptions(options);
    this.socket = socket;
    this.codec = this.options.codec;
    this.clock = this.options.clock;
    this.queue = new WaitQueue(this.options.maxQueued);
    this.window = this.options.maxInFlight;
    this.writer = new FrameWriter(socket, this.options.flushThreshold);
    this.decoder = new ResponseDecoder(this, this.options.maxFrameSize);
    this.wheel = new TimeoutWheel(this.clock, this.options.timerResolution, (call) => this.expire(call));
    const port: HeartbeatPort = {
      ping: () => {
        const every = this.options.pingInterval;
        this.control(ACTION_PING, undefined, IGNORE, every * (this.options.maxMissedPings + 1));
      },
      dead: (silent) => this.destroy(new UnreachableError(`server silent for ${silent} ms, pings unanswered`)),
    };
    this.heartbeat = new Heartbeat(port, this.clock, this.options.pingInterval, this.options.maxMissedPings);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.destroy(new IoError(`connection error: ${describeTlsError(err)}`, { cause: err })));
    socket.on('close', () => {
      if (this.state === 'closing' && this.idle) this.terminate(undefined);
      else this.destroy(new IoError('connection closed by peer'));
    });
    this.heartbeat.start();
  }

  /** Extension feature bits both sides speak (0 for a plain v1 server). */
  get features(): number {
    return this._features;
  }
  /** The server announced it is draining: send new work elsewhere. */
  get draining(): boolean {
    return this._draining;
  }
  /** True when a new call would be sent at once (ready, not draining, window open). */
  get available(): boolean {
    return this.state === 'ready' && !this._draining && this.inFlight < this.window;
  }
  /** `window`: maxInFlight, clamped to the in-flight cap the server announced. */
  get stats(): { state: ClientStreamState; inFlight: number; queued: number; pending: number; features: number; window: number } {
    return { state: this.state, inFlight: this.inFlight, queued: this.queue.length, pending: this.pending.size, features: this._features, window: this.window };
  }
  /** User calls in flight plus queued. */
  get load(): number {
    return this.inFlight + this.queue.length;
  }
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress ?? undefined;
  }

  /**
   * Sends a request; the outcome goes to `handler`. Returns the Call, whose
   * `cancel()` stops it. Never throws: every failure reaches `handler.onError`.
   */
  call(action: string | number, value: unknown, handler: ResponseHandler, options?: CallOptions): Call {
    const isEvent = options?.event === true && (this._features & FEATURE_EVENTS) !== 0;
    const call = new Call(this, isEvent ? CallKind.Event : CallKind.User, action, value, handler, options);
    if (this.state !== 'ready') {
      this.fail(call, this.closeError ?? new ClosedError());
      return call;
    }
    if (this._draining && (this._features & FEATURE_GOAWAY_ACK) !== 0) {
      // GOAWAY was acknowledged: the server reads nothing new from us
      this.fail(call, new UnreachableError('server is draining (GOAWAY): not sent'));
      return call;
    }
    if (isEvent) {
      if (this.socket.writableLength > MAX_EVENT_BACKLOG) this.fail(call, new QueueFullError('event backlog is full'));
      else if (this.send(call)) this.afterFlush(call);
      return call;
    }
    this.wheel.add(call, this.clock.now() + (options?.timeout ?? this.options.timeout));
    if (this.inFlight < this.window && this.queue.length === 0) {
      this.send(call);
    } else if (!this.queue.full) {
      this.queue.push(call);
    } else {
      this.fail(call, new QueueFullError(`window full and ${this.options.maxQueued} callers already waiting`));
    }
    return call;
  }

  /** Promise form of `call`. */
  request(action: string | number, value?: unknown, options?: CallOptions): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.call(action, value, new PromiseHandler(resolve, reject), options);
    });
  }

  /** Sends a PING and resolves with the round trip in ms. */
  ping(timeout = this.options.timeout): Promise<number> {
    const started = this.clock.now();
    return new Promise((resolve, reject) => {
      this.control(ACTION_PING, undefined, new PromiseHandler(() => resolve(this.clock.now() - started), reject), timeout);
    });
  }

  /** Negotiates the extensions; a plain v1 server's refusal just leaves them off. */
  handshake(timeout = this.options.connectTimeout || this.options.timeout): Promise<number> {
    return new Promise((resolve, reject) => {
      const handler: ResponseHandler = {
        onResult: (value) => {
          this._features = grantedFeatures(value);
          const cap = serverWindow(value);
          if (cap !== undefined && cap < this.window) this.window = cap;
          resolve(this._features);
        },
        onError: (err) => {
          if (err.retriable || err instanceof ClosedError) return reject(err);
          this._features = 0; // a v1 server answered with an error: plain v1
          resolve(0);
        },
      };
      this.control(ACTION_HELLO, helloOffer(this.codec.name), handler, timeout);
    });
  }

  /** CallOwner: true once the frames of `batch` were handed to the socket. */
  handedOff(batch: number): boolean {
    return batch < this.writer.batch;
  }

  /** CallOwner: stops waiting for `call`; tells an extension server to stop its handler. */
  cancel(call: Call): void {
    if (call.state === CallState.Done) return;
    const wasSent = call.state === CallState.Sent;
    if (wasSent) this.abandoned.add(call.seq);
    this.finish(call);
    if (wasSent) this.sendCancel(call);
  }

  /**
   * Grants the server `n` more items of the stream sent as `seq`
   * (FEATURE_CREDIT); the call's timeout restarts, as its consumer is alive.
   */
  grant(seq: number, n: number): void {
    const call = this.pending.get(seq);
    if (call === undefined || n <= 0 || this.state === 'closed' || (this._features & FEATURE_CREDIT) === 0) return;
    this.wheel.remove(call);
    this.wheel.add(call, this.clock.now() + (call.options?.timeout ?? this.options.timeout));
    this.writeCredit(seq, n);
  }

  // ---- lifecycle -----------------------------------------------------------

  /** Graceful close: refuses new calls, lets accepted ones (in flight and queued) finish or time out. */
  protected beginClose(): undefined {
    this.heartbeat.stop(); // what is still owed is bounded by its timeouts
    this.maybeEnd();
    return undefined;
  }

  protected abort(error: OccamsError): void {
    this.heartbeat.stop();
    this.wheel.stop();
    const open: Call[] = [...this.pending.values(), ...this.queue.drain(), ...this.unflushedEvents];
    this.unflushedEvents = [];
    // Best effort: tell the server, while the socket still takes writes (it
    // also cancels everything of a connection that closes).
    if ((this._features & FEATURE_CANCEL) !== 0 && this.socket.writable && !this.socket.destroyed) {
      let any = false;
      for (const call of open) {
        if (call.kind !== CallKind.User || call.state !== CallState.Sent) continue;
        this.writer.request(FORMAT_EVENT, ACTION_CANCEL, undefined, call.seq, this.options.clientId, EMPTY, undefined, undefined);
        any = true;
      }
      if (any) this.writer.flush();
    }
    this.socket.destroy();
    for (const call of open) this.fail(call, error);
  }

  // ---- sending -------------------------------------------------------------

  private control(action: number, body: unknown, handler: ResponseHandler, timeout: number): void {
    const call = new Call(this, CallKind.Control, action, body, handler, undefined);
    if (this.state === 'closed') return this.fail(call, this.closeError ?? new ClosedError());
    this.wheel.add(call, this.clock.now() + timeout);
    this.send(call);
  }

  /**
   * Encodes and writes a call; a User call takes its window slot here, and
   * only once it is on its way. Returns false when it failed (and was settled).
   */
  private send(call: Call): boolean {
    let msg: Uint8Array;
    let ext: Uint8Array | undefined;
    let format = call.kind === CallKind.Event ? FORMAT_EVENT : 0;
    try {
      if (call.kind === CallKind.Control) {
        msg = call.value === undefined ? EMPTY : helloCodec.encode(call.value);
      } else {
        const header = call.options === undefined ? undefined : extHeader(call.options, this._features, this.clock.now());
        if (header !== undefined) {
          ext = Buffer.from(helloCodec.encode(header));
          format |= FORMAT_EXT_HEADER;
        }
        msg = this.codec.encode(call.value);
      }
    } catch (err) {
      this.fail(call, new EncodeError(`cannot encode request: ${(err as Error).message}`, { cause: err }));
      return false;
    }
    const seq = this.nextSeq++;
    call.seq = seq;
    const action = call.action;
    if (typeof action === 'string') {
      if (action !== this.lastAction) {
        this.lastAction = action;
        this.lastActionBytes = actionBytes(action);
      }
      this.writer.request(format, 0, this.lastActionBytes, seq, this.options.clientId, msg, call.options?.blob, ext);
    } else {
      this.writer.request(format, action, undefined, seq, this.options.clientId, msg, call.options?.blob, ext);
    }
    call.batch = this.writer.batch;
    if (call.kind !== CallKind.Event) {
      call.state = CallState.Sent;
      this.pending.set(seq, call);
      if (call.kind === CallKind.User) {
        this.inFlight++;
        call.options?.flow?.bind(this, seq);
      }
    }
    return true;
  }

  /** Sends queued calls while the window has room. */
  private pump(): void {
    const max = this.window;
    while (this.inFlight < max) {
      const call = this.queue.shift();
      if (call === undefined) return;
      this.send(call);
    }
  }

  // ---- receiving -----------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.heartbeat.received(this.clock.now());
    const err = this.decoder.push(chunk);
    if (err !== undefined) this.destroy(new IoError(`protocol violation from server: ${err.message}`, { cause: err }));
  }

  /** ResponseSink: one decoded response. */
  onResponse(flag: number, seq: number, msgLen: number, msg: Buffer, blob: Buffer): void {
    const call = this.pending.get(seq);
    if (call === undefined) {
      if (flag === FLAG_GOAWAY && seq === 0 && this._features !== 0) return this.onGoaway();
      if (seq === 0 || seq >= this.nextSeq) throw new ProtocolError(`response for seq ${seq} that was never sent`);
      if (!this.abandoned.has(seq)) throw new ProtocolError(`duplicate response for seq ${seq}`);
      // late: the call timed out or was cancelled; a stream may still send items
      if (flag !== FLAG_STREAM_ITEM) this.abandoned.delete(seq);
      return;
    }
    switch (flag) {
      case FLAG_OK: {
        let value: unknown;
        if (msgLen !== 0) {
          try {
            value = call.kind === CallKind.Control ? helloCodec.decode(msg) : this.codec.decode(msg);
          } catch (err) {
            return this.fail(call, new DecodeError(`cannot decode response: ${(err as Error).message}`, { cause: err }));
          }
        }
        return this.settle(call, value, blob);
      }
      case FLAG_STREAM_ITEM:
        if (this._features !== 0 && call.kind === CallKind.User) return this.onItem(call, msg);
    }
    this.fail(call, responseError(flag, msgLen, blob, this.codec, this._features));
  }

  private onItem(call: Call, msg: Buffer): void {
    let value: unknown;
    try {
      value = msg.length === 0 ? undefined : this.codec.decode(msg);
    } catch (err) {
      return this.fail(call, new DecodeError(`cannot decode stream item: ${(err as Error).message}`, { cause: err }));
    }
    // A stream is alive while items arrive: its timeout restarts per item.
    this.wheel.remove(call);
    this.wheel.add(call, this.clock.now() + (call.options?.timeout ?? this.options.timeout));
    // Credit: a consumer that manages its own (an async iterator) grants as
    // it takes items; anyone else takes each item as it comes.
    if ((this._features & FEATURE_CREDIT) !== 0 && call.options?.flow === undefined && ++call.consumed >= AUTO_GRANT) {
      this.writeCredit(call.seq, call.consumed);
      call.consumed = 0;
    }
    try {
      call.handler.onItem?.(value);
    } catch (err) {
      rethrow(err);
    }
  }

  private onGoaway(): void {
    if (this._draining) return;
    this._draining = true;
    if ((this._features & FEATURE_GOAWAY_ACK) !== 0) {
      // Nothing new goes out on this connection from here: the server may
      // finish once it has answered what came before this ack.
      this.writer.request(FORMAT_EVENT, ACTION_GOAWAY_ACK, undefined, 0, this.options.clientId, EMPTY, undefined, undefined);
      const unsent = this.queue.drain();
      for (const call of unsent) this.fail(call, new UnreachableError('server is draining (GOAWAY): not sent'));
    }
    this.emit('goaway');
  }

  private sendCancel(call: Call): void {
    if (call.kind !== CallKind.User || (this._features & FEATURE_CANCEL) === 0 || this.state === 'closed') return;
    this.writer.request(FORMAT_EVENT, ACTION_CANCEL, undefined, call.seq, this.options.clientId, EMPTY, undefined, undefined);
  }

  private writeCredit(seq: number, n: number): void {
    const msg = Buffer.allocUnsafe(4);
    msg.writeUInt32LE(Math.min(n, 0xffff_ffff), 0);
    this.writer.request(FORMAT_EVENT, ACTION_CREDIT, undefined, seq, this.options.clientId, msg, undefined, undefined);
  }

  /** An event resolves once its frame is handed to the socket (the writer flushes on the same tick, before this). */
  private afterFlush(call: Call): void {
    if (this.unflushedEvents.push(call) === 1) process.nextTick(this.settleFlushedBound);
  }

  private settleFlushed(): void {
    const calls = this.unflushedEvents;
    this.unflushedEvents = [];
    this.writer.flush();
    for (const call of calls) this.settle(call, undefined, EMPTY);
  }

  // ---- settling ------------------------------------------------------------

  /** Removes a call from every structure and frees its slot. */
  private finish(call: Call): void {
    const state = call.state;
    call.state = CallState.Done;
    this.wheel.remove(call);
    if (state === CallState.Sent) this.pending.delete(call.seq);
    else this.queue.remove(call);
    if (call.kind === CallKind.User) {
      if (state === CallState.Sent) this.inFlight--;
      if (this.state !== 'closed') {
        this.pump();
        if (state === CallState.Sent && this.onSlotFreed !== undefined) this.onSlotFreed();
      }
    }
    if (this.state === 'closing') this.maybeEnd();
  }

  private settle(call: Call, value: unknown, blob: Buffer): void {
    if (call.state === CallState.Done) return;
    this.finish(call);
    try {
      call.handler.onResult(value, blob);
    } catch (err) {
      rethrow(err);
    }
  }

  private fail(call: Call, err: OccamsError): void {
    if (call.state === CallState.Done) return;
    this.finish(call);
    deliverError(call.handler, err);
  }

  private expire(call: Call): void {
    const sent = call.state === CallState.Sent;
    if (sent) this.abandoned.add(call.seq);
    this.fail(call, new TimeoutError(`${typeof call.action === 'string' ? call.action : `action ${call.action}`} timed out`));
    if (sent) this.sendCancel(call); // the server stops the handler and frees its slot
  }

  private get idle(): boolean {
    return this.inFlight === 0 && this.queue.length === 0;
  }

  private maybeEnd(): void {
    if (!this.idle || this.socket.writableEnded) return;
    this.writer.flush();
    this.socket.end();
  }
}
