import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { MsgpackCodec } from '../codec/msgpack-codec.js';
import type { Codec } from '../codec/codec.js';
import {
  ClosedError,
  DecodeError,
  ErrorCode,
  EncodeError,
  IoError,
  OccamsError,
  ProtocolError,
  QueueFullError,
  RemoteErrnoError,
  RemoteError,
  TimeoutError,
  UnreachableError,
  errorFromWireBytes,
  ownedBytes,
} from '../errors.js';
import { ACTION_PING, EMPTY, FLAG_ERRNO, FLAG_ERROR_BYTES, FLAG_OK } from '../protocol/constants.js';
import {
  ACTION_CANCEL,
  ACTION_HELLO,
  ALL_FEATURES,
  EXTENSIONS_VERSION,
  FEATURE_CANCEL,
  FEATURE_DEADLINE,
  FEATURE_EVENTS,
  FEATURE_META,
  FLAG_ERRNO_MESSAGE,
  FLAG_ERROR_VALUE,
  FLAG_GOAWAY,
  FLAG_STREAM_ITEM,
  FORMAT_EVENT,
  FORMAT_EXT_HEADER,
  type RequestExtHeader,
} from '../protocol/extensions.js';
import { ResponseDecoder, type ResponseSink } from '../protocol/response-decoder.js';
import { type Address, type AddressLike, parseAddress } from '../transport/address.js';
import { dial } from '../transport/dial.js';
import { actionBytes } from '../core/action-bytes.js';
import { Call, CallKind, type CallOptions, type CallOwner, CallState, IGNORE, PromiseHandler, type ResponseHandler } from './call.js';
import { Fifo } from '../core/fifo.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { FrameWriter } from '../core/frame-writer.js';
import { type ClientStreamOptions, type NormalizedClientStreamOptions, normalizeClientStreamOptions } from './client-options.js';
import { TimeoutWheel } from '../core/timeout-wheel.js';

export type ClientStreamState = 'ready' | 'closing' | 'closed';

/** Timed-out or cancelled seqs remembered so their late answers are told from duplicates. */
const MAX_ABANDONED = 16_384;

/** Buffered event bytes past which fire-and-forget events are refused. */
const MAX_EVENT_BACKLOG = 8 * 1024 * 1024;

/** Ext headers are always msgpack, whatever the value codec. */
const extCodec: Codec = new MsgpackCodec();

/**
 * One multiplexed connection to an occams server.
 *
 *   call() ─► window free? ─yes─► encode ─► FrameWriter (one write per tick)
 *                │ no                              │
 *                ▼                                 ▼ seq
 *          queue (bounded FIFO) ◄─ slot freed ─ pending Map<seq, Call> ◄─ ResponseDecoder
 *                                                  ▲
 *                      TimeoutWheel (1 tick/s) ────┘ fails whole buckets
 *
 * Events: 'close' (error), 'goaway' (the server is draining).
 */
export class ClientStream extends EventEmitter implements CallOwner, ResponseSink {
  readonly options: NormalizedClientStreamOptions;
  private readonly socket: Socket;
  private readonly writer: FrameWriter;
  private readonly decoder: ResponseDecoder;
  private readonly codec: Codec;
  private readonly wheel = new TimeoutWheel<Call>();
  /** every Sent call awaiting its response, by seq */
  private readonly pending = new Map<number, Call>();
  /** User calls waiting for a window slot; may hold cancelled (Done) calls */
  private readonly queue = new Fifo<Call>();
  private readonly clock: Clock;
  private readonly timer: TimerHandle;
  /** next seq to use; seqs < nextSeq have been sent */
  private nextSeq = 1;
  /** User calls Sent and not Done; <= options.maxInFlight */
  private inFlight = 0;
  /** User calls Queued and not Done */
  private queued = 0;
  private lastReceived: number;
  private lastPingSent = 0;
  private missedPings = 0;
  private _state: ClientStreamState = 'ready';
  private _features = 0;
  private _draining = false;
  private closeError: OccamsError | undefined;
  private closed: Promise<void> | undefined;
  /**
   * Seqs of sent calls we stopped waiting for (timeout, cancel), whose
   * answers may still come and are dropped; any other answer for a seq
   * already settled is a duplicate, a protocol violation. Bounded: the
   * oldest are forgotten first.
   */
  private readonly abandoned = new Set<number>();
  /** the last action string sent and its UTF-8 bytes */
  private lastAction = '';
  private lastActionBytes: Buffer = Buffer.alloc(0);
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
  static async connect(address: AddressLike, options: ClientStreamOptions = {}): Promise<ClientStream> {
    const opts = normalizeClientStreamOptions(options);
    const where = parseAddress(address);
    const socket = await dial(where, { tls: opts.tls, connectTimeout: opts.connectTimeout });
    const stream = new ClientStream(socket, opts);
    if (!opts.extensions) return stream;
    try {
      await stream.handshake();
      return stream;
    } catch (err) {
      stream.destroy(err as Error);
      if (err instanceof OccamsError && err.code === ErrorCode.Io) return ClientStream.connectPlain(where, opts, err);
      throw err instanceof OccamsError && err.retriable ? new UnreachableError(err.message, { cause: err }) : err;
    }
  }

  /**
   * The fallback after a hang-up on HELLO: plain v1, proven alive with a
   * PING (a server that refuses us, e.g. at its connection limit or for a
   * missing client certificate, hangs up on that too).
   */
  private static async connectPlain(where: Address, opts: NormalizedClientStreamOptions, first: OccamsError): Promise<ClientStream> {
    const socket = await dial(where, { tls: opts.tls, connectTimeout: opts.connectTimeout });
    const stream = new ClientStream(socket, { ...opts, extensions: false });
    try {
      await stream.ping(opts.connectTimeout || opts.timeout);
      return stream;
    } catch (err) {
      stream.destroy(err as Error);
      throw new UnreachableError(`connection refused after connect: ${first.message}`, { cause: err });
    }
  }

  /** Wraps an already connected socket. Call `handshake()` to use the extensions. */
  constructor(socket: Socket, options: ClientStreamOptions = {}) {
    super();
    this.options = normalizeClientStreamOptions(options);
    this.socket = socket;
    this.codec = this.options.codec;
    this.clock = this.options.clock;
    this.writer = new FrameWriter(socket, this.options.flushThreshold);
    this.decoder = new ResponseDecoder(this, this.options.maxFrameSize);
    this.lastReceived = this.clock.now();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.destroy(new IoError(`connection error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.destroy(this._state === 'closing' && this.idle ? undefined : new IoError('connection closed by peer')));
    this.timer = this.clock.setInterval(() => this.tick(), this.options.timerResolution);
  }

  get state(): ClientStreamState {
    return this._state;
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
    return this._state === 'ready' && !this._draining && this.inFlight < this.options.maxInFlight;
  }
  get stats(): { state: ClientStreamState; inFlight: number; queued: number; pending: number; features: number } {
    return { state: this._state, inFlight: this.inFlight, queued: this.queued, pending: this.pending.size, features: this._features };
  }
  /** User calls in flight plus queued. */
  get load(): number {
    return this.inFlight + this.queued;
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
    if (this._state !== 'ready') {
      this.fail(call, this.closeError ?? new ClosedError());
      return call;
    }
    if (isEvent) {
      if (this.socket.writableLength > MAX_EVENT_BACKLOG) this.fail(call, new QueueFullError('event backlog is full'));
      else if (this.send(call)) this.settle(call, undefined, EMPTY);
      return call;
    }
    this.armTimeout(call, options?.timeout ?? this.options.timeout);
    if (this.inFlight < this.options.maxInFlight && this.queued === 0) {
      this.send(call);
    } else if (this.queue.length < this.options.maxQueued) {
      call.state = CallState.Queued;
      this.queued++;
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
      if (this._state === 'closed') return reject(this.closeError ?? new ClosedError());
      const call = new Call(this, CallKind.Control, ACTION_PING, undefined, new PromiseHandler(() => resolve(this.clock.now() - started), reject), undefined);
      this.armTimeout(call, timeout);
      this.send(call);
    });
  }

  /** Negotiates the extensions; a plain v1 server's refusal just leaves them off. */
  handshake(timeout = this.options.connectTimeout || this.options.timeout): Promise<number> {
    return new Promise((resolve, reject) => {
      const handler: ResponseHandler = {
        onResult: (value) => {
          const answer = value as { v?: unknown; f?: unknown } | undefined;
          this._features = typeof answer?.f === 'number' ? answer.f & ALL_FEATURES : 0;
          resolve(this._features);
        },
        onError: (err) => {
          if (err.retriable || err.code === 'rpc_closed') return reject(err);
          this._features = 0; // a v1 server answered with an error: plain v1
          resolve(0);
        },
      };
      const hello = { v: EXTENSIONS_VERSION, f: ALL_FEATURES, c: this.codec.name };
      const call = new Call(this, CallKind.Control, ACTION_HELLO, hello, handler, undefined);
      this.armTimeout(call, timeout);
      this.send(call);
    });
  }

  cancel(call: Call): void {
    if (call.state === CallState.Done) return;
    const wasSent = call.state === CallState.Sent;
    if (wasSent) this.abandon(call.seq);
    this.finish(call);
    if (wasSent && (this._features & FEATURE_CANCEL) !== 0 && this._state !== 'closed') {
      this.writer.request(FORMAT_EVENT, ACTION_CANCEL, undefined, call.seq, this.options.clientId, EMPTY, undefined, undefined);
    }
  }

  /**
   * Graceful close: refuses new calls, lets the ones already accepted
   * (in flight and queued) finish or time out, then closes the connection.
   */
  close(): Promise<void> {
    if (this._state === 'ready') {
      this._state = 'closing';
      this.closeError = new ClosedError();
      this.maybeEnd();
    }
    return this.whenClosed();
  }

  /** Aborts: every call still open fails with `err` (default rpc_closed). Idempotent. */
  destroy(err?: Error): void {
    if (this._state === 'closed') return;
    this._state = 'closed';
    this.clock.clear(this.timer);
    const error = err === undefined ? new ClosedError() : err instanceof OccamsError ? err : new IoError(err.message, { cause: err });
    this.closeError = error;
    this.socket.destroy();
    const open: Call[] = [...this.pending.values(), ...this.queue.drain()];
    for (const call of open) this.fail(call, error);
    this.emit('close', err === undefined ? undefined : error);
  }

  /** Resolves once the connection is closed (however that happens). */
  whenClosed(): Promise<void> {
    if (this._state === 'closed') return Promise.resolve();
    this.closed ??= new Promise((resolve) => this.once('close', () => resolve()));
    return this.closed;
  }

  // ---- sending -------------------------------------------------------------

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
        msg = call.value === undefined ? EMPTY : extCodec.encode(call.value);
      } else {
        const header = this.extHeader(call.options);
        if (header !== undefined) {
          ext = Buffer.from(extCodec.encode(header));
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
    if (call.kind !== CallKind.Event) {
      call.state = CallState.Sent;
      this.pending.set(seq, call);
      if (call.kind === CallKind.User) this.inFlight++;
    }
    return true;
  }

  private extHeader(options: CallOptions | undefined): RequestExtHeader | undefined {
    if (options === undefined || this._features === 0) return undefined;
    let header: RequestExtHeader | undefined;
    if (options.meta !== undefined && (this._features & FEATURE_META) !== 0) header = { m: options.meta };
    if (options.deadline !== undefined && (this._features & FEATURE_DEADLINE) !== 0) {
      (header ??= {}).d = Math.max(0, Math.round(options.deadline - Date.now()));
    }
    return header;
  }

  private armTimeout(call: Call, timeout: number): void {
    const res = this.options.timerResolution;
    this.wheel.add(call, Math.ceil((this.clock.now() + timeout) / res));
  }

  /** Sends queued calls while the window has room. */
  private pump(): void {
    const max = this.options.maxInFlight;
    while (this.inFlight < max && this.queued > 0) {
      const call = this.queue.shift()!;
      if (call.state !== CallState.Queued) continue;
      this.queued--;
      call.state = CallState.New;
      this.send(call);
    }
  }

  // ---- receiving -----------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.lastReceived = this.clock.now();
    this.missedPings = 0;
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
            value = call.kind === CallKind.Control ? extCodec.decode(msg) : this.codec.decode(msg);
          } catch (err) {
            return this.fail(call, new DecodeError(`cannot decode response: ${(err as Error).message}`, { cause: err }));
          }
        }
        return this.settle(call, value, blob);
      }
      case FLAG_ERRNO:
        return this.fail(call, new RemoteErrnoError(msgLen));
      case FLAG_ERROR_BYTES:
        return this.fail(call, errorFromWireBytes(blob));
    }
    if (this._features === 0) throw new ProtocolError(`unknown response flag ${flag}`);
    if (flag === FLAG_STREAM_ITEM) return this.onItem(call, msg);
    if (flag === FLAG_ERRNO_MESSAGE) return this.fail(call, new RemoteErrnoError(msgLen, blob.toString('utf8')));
    if (flag === FLAG_ERROR_VALUE) {
      const data = ownedBytes(blob); // decoded values may be views into it
      let value: unknown;
      try {
        value = this.codec.decode(data);
      } catch {
        value = undefined;
      }
      return this.fail(call, new RemoteError(data, value));
    }
    throw new ProtocolError(`unknown response flag ${flag}`);
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
    this.armTimeout(call, call.options?.timeout ?? this.options.timeout);
    try {
      call.handler.onItem?.(value);
    } catch (err) {
      rethrow(err);
    }
  }

  private onGoaway(): void {
    if (this._draining) return;
    this._draining = true;
    this.emit('goaway');
  }

  // ---- settling ------------------------------------------------------------

  /** Removes a call from every structure and frees its slot. */
  private finish(call: Call): void {
    const state = call.state;
    call.state = CallState.Done;
    this.wheel.remove(call);
    if (state === CallState.Sent) this.pending.delete(call.seq);
    if (call.kind === CallKind.User) {
      if (state === CallState.Sent) this.inFlight--;
      else if (state === CallState.Queued) this.queued--;
      if (this._state !== 'closed') {
        this.pump();
        if (state === CallState.Sent && this.onSlotFreed !== undefined) this.onSlotFreed();
      }
    }
    if (this._state === 'closing') this.maybeEnd();
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
    try {
      call.handler.onError(err);
    } catch (e) {
      rethrow(e);
    }
  }

  private abandon(seq: number): void {
    if (this.abandoned.size >= MAX_ABANDONED) this.abandoned.delete(this.abandoned.values().next().value!);
    this.abandoned.add(seq);
  }

  private get idle(): boolean {
    return this.inFlight === 0 && this.queued === 0;
  }

  private maybeEnd(): void {
    if (!this.idle || this.socket.writableEnded) return;
    this.writer.flush();
    this.socket.end();
  }

  // ---- timer ---------------------------------------------------------------

  private tick(): void {
    const now = this.clock.now();
    const expired = this.wheel.takeExpired(Math.floor(now / this.options.timerResolution));
    for (const call of expired) {
      if (call.state === CallState.Sent) this.abandon(call.seq);
      this.fail(call, new TimeoutError(`${typeof call.action === 'string' ? call.action : `action ${call.action}`} timed out`));
    }
    const interval = this.options.pingInterval;
    if (interval > 0 && this._state === 'ready' && now - this.lastReceived >= interval && now - this.lastPingSent >= interval) {
      if (this.lastPingSent > this.lastReceived && ++this.missedPings >= this.options.maxMissedPings) {
        this.destroy(new UnreachableError(`no answer to ${this.missedPings} pings`));
        return;
      }
      this.lastPingSent = now;
      const ping = new Call(this, CallKind.Control, ACTION_PING, undefined, IGNORE, undefined);
      this.armTimeout(ping, interval * (this.options.maxMissedPings + 1));
      this.send(ping);
    }
  }
}

/**
 * A throw from a user's handler is rethrown on its own (as any callback
 * error would be), after the stream's state is already consistent.
 */
function rethrow(err: unknown): void {
  queueMicrotask(() => {
    throw err;
  });
}
