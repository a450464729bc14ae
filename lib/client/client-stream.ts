import type { Socket } from 'node:net';

import type { Codec } from '../codec/codec.js';
import { ownedIfRead } from '../codec/read-buffer.js';
import type { Clock } from '../core/clock.js';
import { Connection } from '../core/connection.js';
import { goaway } from '../core/diagnostics.js';
import { FrameWriter } from '../core/frame-writer.js';
import { ClosedError, DecodeError, IoError, type OccamsError, OverloadedError, ProtocolError, QueueFullError, TimeoutError, UnreachableError } from '../errors.js';
import { ACTION_PING, EMPTY, FLAG_OK } from '../protocol/constants.js';
import {
  ACTION_HELLO,
  ALL_FEATURES,
  FEATURE_CANCEL,
  FEATURE_CREDIT,
  FEATURE_DEADLINE,
  FEATURE_EVENTS,
  FEATURE_GOAWAY_ACK,
  FEATURE_RECORDS,
  FLAG_GOAWAY,
  FLAG_OK_RECORDS,
  FLAG_STREAM_ITEM,
} from '../protocol/extensions.js';
import { helloCodec, helloOffer } from '../protocol/hello.js';
import { ResponseDecoder, type ResponseSink } from '../protocol/response-decoder.js';
import type { Address, AddressLike } from '../transport/address.js';
import { describeTlsError } from '../transport/dial.js';
import { readSocket } from '../transport/socket-reads.js';
import { AbandonedSeqs } from './abandoned-seqs.js';
import { Call, type CallHandle, CallKind, type CallOptions, type CallOwner, CallState, deliverError, IGNORE, PromiseHandler, type ResponseHandler, rethrow } from './call.js';
import { callsObserved, observeCall, type ProbedConnection } from './call-probe.js';
import { CallWindow } from './call-window.js';
import { type ClientStreamOptions, normalizeClientStreamOptions, type NormalizedClientStreamOptions } from './client-options.js';
import { EventOutbox, MAX_EVENT_BACKLOG } from './event-outbox.js';
import { connectClientStream, HelloAnswer } from './handshake.js';
import { Heartbeat, type HeartbeatPort } from './heartbeat.js';
import { RequestWriter } from './request-writer.js';
import { StreamCredit } from './stream-credit.js';
import { decodeValue, responseError } from './wire.js';

export type ClientStreamState = 'ready' | 'closing' | 'closed';

const TRANSITIONS = { ready: ['closing', 'closed'], closing: ['closed'], closed: [] } as const;

/**
 * One multiplexed connection to an occams server.
 *
 *   call() ─► window open? ─yes─► RequestWriter ─► FrameWriter (one write per tick)
 *                │ no                              │
 *                ▼                                 ▼ seq
 *          CallWindow queue (bounded) ◄─ slot freed ─ CallWindow pending ◄─ ResponseDecoder
 *                                                  ▲
 *                 its TimeoutWheel (one timer)     ┘ fails whole buckets
 *
 * Lifecycle: ready ─close()─► closing (accepted calls finish) ─► closed.
 * Liveness (heartbeat.ts): suspect once pings go unanswered; closed when
 * nothing is left on it or at keepaliveTimeout; healthy when anything arrives.
 * Events: 'close' (error, or undefined when graceful), 'goaway' (the server
 * is draining), 'suspect' (silent ms), 'alive' (suspect no more).
 */
export class ClientStream extends Connection<'ready'> implements CallOwner, ResponseSink, ProbedConnection {
  readonly options: NormalizedClientStreamOptions;
  private readonly writer: FrameWriter;
  private readonly out: RequestWriter;
  private readonly decoder: ResponseDecoder;
  private readonly codec: Codec;
  private readonly clock: Clock;
  private readonly heartbeat: Heartbeat;
  /** sent calls by seq, calls waiting for a slot, their timeouts */
  private readonly window: CallWindow;
  private readonly abandoned = new AbandonedSeqs();
  /** next seq to use; seqs < nextSeq have been sent */
  private nextSeq = 1;
  private readonly events: EventOutbox;
  private readonly credit: StreamCredit;
  private _features = 0;
  private _draining = false;
  /** a 'drain' listener pumps the queue (writes were past highWaterMark with calls waiting) */
  private drainAwaited = false;
  /**
   * The codec's session for this connection (Codec.session), offered in
   * HELLO; kept when the server grants FEATURE_RECORDS, dropped otherwise.
   * Its decoder reads every FLAG_OK_RECORDS response, wanted or not, in order.
   */
  private records: Codec | undefined;
  /** a HELLO was answered (the first answer decides the record sessions) */
  private helloAnswered = false;
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
    return connectClientStream(address, normalizeClientStreamOptions(options), openStream);
  }

  /** Wraps an already connected socket (dialled at `address`). Call `handshake()` to use the extensions. */
  constructor(socket: Socket, options: ClientStreamOptions = {}, address?: Address) {
    super('connection', TRANSITIONS, 'ready', socket, 'client', address);
    this.options = normalizeClientStreamOptions(options);
    this.codec = this.options.codec;
    this.records = this.codec.session?.();
    this.clock = this.options.clock;
    this.window = new CallWindow(this.options.maxInFlight, this.options.maxQueued, this.clock, this.options.timerResolution, (call) => this.expire(call));
    this.writer = new FrameWriter(socket, this.options.flushThreshold);
    this.out = new RequestWriter(this.writer, this.codec, this.options.clientId);
    this.decoder = new ResponseDecoder(this, this.options.maxFrameSize);
    this.events = new EventOutbox(
      () => this.writer.flush(),
      (call) => this.eventFlushed(call),
    );
    this.credit = new StreamCredit(this.window, this.out, this.options.timeout, this.codec);
    const port: HeartbeatPort = {
      ping: () => {
        const every = this.options.pingInterval;
        this.control(ACTION_PING, undefined, IGNORE, every * (this.options.maxMissedPings + 1));
      },
      suspect: (silent) => this.becameSuspect(silent),
      alive: () => this.emit('alive'),
      dead: (silent) => this.destroy(new UnreachableError(`server silent for ${silent} ms, pings unanswered (keepaliveTimeout)`)),
    };
    const o = this.options;
    this.heartbeat = new Heartbeat(port, this.clock, o.pingInterval, o.maxMissedPings, o.keepaliveTimeout);
    socket.setNoDelay(true);
    readSocket(socket, (chunk) => this.onData(chunk));
    socket.on('error', (err) => this.destroy(new IoError(`connection error: ${describeTlsError(err)}`, { cause: err })));
    socket.on('close', () => {
      if (this.state === 'closing' && this.window.idle) this.terminate(undefined);
      else this.destroy(new IoError('connection closed by peer'));
    });
    this.heartbeat.start();
    this.announce();
  }

  /** Extension feature bits both sides speak (0 for a plain v1 server). */
  get features(): number {
    return this._features;
  }
  /** The server announced it is draining: send new work elsewhere. */
  get draining(): boolean {
    return this._draining;
  }
  /**
   * Pings went unanswered for pingInterval × maxMissedPings and nothing
   * arrived since: pools send it no new calls; calls on it keep their deadlines.
   */
  get suspect(): boolean {
    return this.heartbeat.suspect;
  }
  /** True when a new call would be sent at once (ready, not draining, not suspect, window open). */
  get available(): boolean {
    return this.state === 'ready' && !this._draining && this.window.hasRoom && !this.heartbeat.suspect;
  }
  /** `window`: maxInFlight, clamped to the in-flight cap the server announced. */
  get stats(): { state: ClientStreamState; inFlight: number; queued: number; pending: number; features: number; window: number } {
    const w = this.window;
    return { state: this.state, inFlight: w.inFlight, queued: w.queued, pending: w.pending.size, features: this._features, window: w.size };
  }
  /** User calls in flight plus queued. */
  get load(): number {
    return this.window.inFlight + this.window.queued;
  }

  /**
   * Sends a request; the outcome goes to `handler`. Returns the Call, whose
   * `cancel()` stops it. Never throws: every failure reaches `handler.onError`.
   */
  call(action: string | number, value: unknown, handler: ResponseHandler, options?: CallOptions): CallHandle {
    if (callsObserved() && options?.probe === undefined) return observeCall(this, action, value, handler, options);
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
      else if (this.send(call, this.clock.now())) this.events.add(call);
      return call;
    }
    const window = this.window;
    const now = window.arm(call, options?.timeout ?? this.options.timeout);
    if (window.open && !this.writesBackedUp) {
      this.send(call, now);
    } else if (!window.queueFull) {
      window.wait(call);
      if (window.hasRoom) this.pump(); // waits for the socket, not a slot: sent at once if it drained meanwhile, else on 'drain'
    } else {
      this.fail(call, new QueueFullError(`window full (or writes backed up) and ${this.options.maxQueued} callers already waiting`));
    }
    return call;
  }

  /** Promise form of `call`. */
  request(action: string | number, value?: unknown, options?: CallOptions): Promise<unknown> {
    return new Promise((resolve, reject) => void this.call(action, value, new PromiseHandler(resolve, reject), options));
  }

  /** Sends a PING and resolves with the round trip in ms. */
  ping(timeout = this.options.timeout): Promise<number> {
    const started = this.clock.now();
    return new Promise((resolve, reject) => this.control(ACTION_PING, undefined, new PromiseHandler(() => resolve(this.clock.now() - started), reject), timeout));
  }

  /** Negotiates the extensions; a plain v1 server's refusal just leaves them off. */
  handshake(timeout = this.options.connectTimeout || this.options.timeout): Promise<number> {
    const offer = helloOffer(this.codec.name, this.records === undefined ? ALL_FEATURES & ~FEATURE_RECORDS : ALL_FEATURES);
    return new Promise((resolve, reject) => this.control(ACTION_HELLO, offer, new HelloAnswer(this, resolve, reject), timeout));
  }

  /** @internal HELLO was answered: the features both sides speak, the server's in-flight cap. */
  negotiated(features: number, cap: number | undefined): void {
    if (this.helloAnswered) {
      // the first answer decided the record sessions: a later one neither starts nor stops them (frames of both kinds may be on the way)
      features = (features & ~FEATURE_RECORDS) | (this._features & FEATURE_RECORDS);
    } else {
      this.helloAnswered = true;
      if ((features & FEATURE_RECORDS) === 0) this.records = undefined;
      else if (this.records === undefined) features &= ~FEATURE_RECORDS;
      else this.out.useRecords(this.records);
    }
    this._features = features;
    if (cap !== undefined && cap < this.window.size) this.window.size = cap;
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
    if (this.state !== 'closed' && (this._features & FEATURE_CREDIT) !== 0) this.credit.grant(seq, n);
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
    const open: Call[] = [...this.window.stop(), ...this.events.take()];
    // Best effort: tell the server, while the socket still takes writes (it
    // also cancels everything of a connection that closes).
    if ((this._features & FEATURE_CANCEL) !== 0 && this.socket.writable && !this.socket.destroyed && this.out.cancelSent(open)) {
      this.writer.flush();
    }
    this.socket.destroy();
    for (const call of open) this.fail(call, error);
  }

  // ---- sending -------------------------------------------------------------

  private control(action: number, body: unknown, handler: ResponseHandler, timeout: number): void {
    const call = new Call(this, CallKind.Control, action, body, handler, undefined);
    if (this.state === 'closed') return this.fail(call, this.closeError ?? new ClosedError());
    this.send(call, this.window.arm(call, timeout));
  }

  /**
   * Encodes and writes a call at clock time `now` (read by the caller); a
   * User call takes its window slot here, and only once it is on its way.
   * Returns false when it failed (and was settled).
   */
  private send(call: Call, now: number): boolean {
    const seq = this.nextSeq;
    const batch = this.out.request(call, seq, this._features, now);
    if (typeof batch !== 'number') {
      this.fail(call, batch);
      return false;
    }
    this.nextSeq++;
    // the batch the frame went into, not `writer.batch` now: a frame past the
    // flush threshold went to the socket inside request() and closed its batch
    call.batch = batch;
    const probe = call.options?.probe;
    if (probe !== undefined) probe.wrote(this, seq);
    if (call.kind !== CallKind.Event) {
      this.window.sent(call, seq);
      if (call.kind === CallKind.User) call.options?.flow?.bind(this, seq);
    } else {
      call.seq = seq;
    }
    return true;
  }

  /** Sends queued calls while the window has room and the socket's writes are not backed up. */
  private pump(): void {
    if (this.window.queued === 0) return;
    let now = -1;
    while (!this.writesBackedUp) {
      const call = this.window.take();
      if (call === undefined) return;
      this.send(call, now < 0 ? (now = this.clock.now()) : now);
    }
    if (this.window.queued !== 0) this.awaitDrain();
  }

  /**
   * The socket holds highWaterMark bytes or more it has not written, and
   * will say 'drain' (a write was refused: past its own high-water mark,
   * 16 KiB; a runtime without `writableNeedDrain` never backs up here).
   */
  private get writesBackedUp(): boolean {
    const socket = this.socket;
    return socket.writableLength >= this.options.highWaterMark && socket.writableNeedDrain;
  }

  /** Pumps the queue once the socket drains (its writes were past highWaterMark). */
  private awaitDrain(): void {
    if (this.drainAwaited) return;
    this.drainAwaited = true;
    this.socket.once('drain', this.onDrain);
  }

  private readonly onDrain = (): void => {
    this.drainAwaited = false;
    if (this.state !== 'closed') this.pump();
  };

  // ---- receiving -----------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.heartbeat.received(this.clock.now());
    const err = this.decoder.push(chunk);
    if (err !== undefined) this.destroy(new IoError(`protocol violation from server: ${err.message}`, { cause: err }));
  }

  /** ResponseSink: one decoded response. */
  onResponse(flag: number, seq: number, msgLen: number, msg: Buffer, blob: Buffer): void {
    if (flag === FLAG_OK_RECORDS) return this.onRecordsResponse(seq, msg, blob);
    const call = this.window.pending.get(seq);
    if (call === undefined) {
      if (flag === FLAG_GOAWAY && seq === 0 && this._features !== 0) return this.onGoaway();
      return this.abandoned.late(seq, this.nextSeq, flag !== FLAG_STREAM_ITEM);
    }
    switch (flag) {
      case FLAG_OK: {
        if (msgLen === 0) return this.settle(call, undefined, blob);
        const value = decodeValue(call.kind === CallKind.Control ? helloCodec : this.codec, msg, 'response');
        return value instanceof DecodeError ? this.fail(call, value) : this.settle(call, value, blob);
      }
      case FLAG_STREAM_ITEM:
        if (this._features !== 0 && call.kind === CallKind.User) return this.onItem(call, msg);
    }
    const err = responseError(flag, msgLen, blob, this.codec, this._features, call.action);
    this.fail(call, this.ownTimeout(call, err) ? this.timedOut(call) : err);
  }

  /**
   * The server ended `call` at the deadline it sent (every User call to a
   * FEATURE_DEADLINE server sends one, so the server's handlerTimeout never
   * applies to it), or refused it unrun as that deadline had passed while
   * it waited: the same timeout as our own, said the same way, whoever
   * noticed first (a refusal with time left stays rpc_overloaded: another
   * server may take it).
   */
  private ownTimeout(call: Call, err: OccamsError): boolean {
    if (call.kind !== CallKind.User || (this._features & FEATURE_DEADLINE) === 0) return false;
    return err instanceof TimeoutError || (err instanceof OverloadedError && call.expiresAt > 0 && call.expiresAt <= this.clock.now());
  }

  /**
   * A result in the connection's record session: decoded whoever waits for
   * it (a late answer to a cancelled call may describe a shape later ones
   * use); one that cannot be decoded leaves the session unknown, so the
   * connection closes.
   */
  private onRecordsResponse(seq: number, msg: Buffer, blob: Buffer): void {
    const records = this.records;
    if (records === undefined || (this._features & FEATURE_RECORDS) === 0) {
      return this.destroy(new IoError(`protocol violation from server: a records response (seq ${seq}) on a connection that did not negotiate them`));
    }
    const value = decodeValue(records, msg, 'records response');
    if (value instanceof DecodeError) return this.destroy(new IoError(`protocol violation from server: ${value.message}`, { cause: value }));
    const call = this.window.pending.get(seq);
    if (call === undefined) return this.abandoned.late(seq, this.nextSeq, true);
    if (call.kind === CallKind.Control) return this.fail(call, new ProtocolError(`a records response to a control request (seq ${seq})`));
    this.settle(call, value, blob);
  }

  private onItem(call: Call, msg: Buffer): void {
    const err = this.credit.item(call, msg, (this._features & FEATURE_CREDIT) !== 0);
    if (err !== undefined) this.fail(call, err);
  }

  private onGoaway(): void {
    if (this._draining) return;
    this._draining = true;
    if ((this._features & FEATURE_GOAWAY_ACK) !== 0) {
      // Nothing new goes out on this connection from here: the server may
      // finish once it has answered what came before this ack.
      this.out.goawayAck();
      const unsent = this.window.drainQueue();
      for (const call of unsent) this.fail(call, new UnreachableError('server is draining (GOAWAY): not sent'));
    }
    if (goaway.hasSubscribers) goaway.publish({ side: 'client', connection: this });
    this.emit('goaway');
  }

  private sendCancel(call: Call): void {
    if (call.kind !== CallKind.User || (this._features & FEATURE_CANCEL) === 0 || this.state === 'closed') return;
    this.out.cancel(call.seq);
  }

  // ---- settling ------------------------------------------------------------

  /** Removes a call from every structure and frees its slot. */
  private finish(call: Call): void {
    const state = this.window.finish(call);
    if (call.kind === CallKind.User && this.state !== 'closed') {
      this.pump();
      if (state === CallState.Sent && this.onSlotFreed !== undefined) this.onSlotFreed();
    }
    if (this.state === 'closing') this.maybeEnd();
    else if (this.heartbeat.suspect && this.window.idle && this.state === 'ready') this.silentAndIdle();
  }

  /** Pings went unanswered: no new calls come here; the connection ends once nothing is left on it. */
  private becameSuspect(silent: number): void {
    if (this.window.idle) return this.silentAndIdle();
    this.emit('suspect', silent);
  }

  private silentAndIdle(): void {
    const silent = this.clock.now() - this.heartbeat.lastWord;
    this.destroy(new UnreachableError(`server silent for ${silent} ms, pings unanswered`));
  }

  private settle(call: Call, value: unknown, blob: Buffer): void {
    if (call.state === CallState.Done) return;
    this.finish(call);
    try {
      call.handler.onResult(value, blob.length === 0 ? blob : ownedIfRead(blob)); // (a view of the read buffer lasts only this call)
    } catch (err) {
      rethrow(err);
    }
  }

  private fail(call: Call, err: OccamsError): void {
    if (call.state === CallState.Done) return;
    this.finish(call);
    deliverError(call.handler, err);
  }

  /**
   * The tick's flush ran: an event resolves once the socket took it; one it
   * could not take (the socket is being destroyed) fails as never sent, so
   * that a pool may move it.
   */
  private eventFlushed(call: Call): void {
    if (call.sent) this.settle(call, undefined, EMPTY);
    else this.fail(call, new IoError('connection closed before the event was sent'));
  }

  private timedOut(call: Call): TimeoutError {
    return new TimeoutError(`${describeAction(call.action)} timed out after ${call.timeoutMs} ms`);
  }

  private expire(call: Call): void {
    const sent = call.state === CallState.Sent;
    if (sent) this.abandoned.add(call.seq);
    if (call.kind === CallKind.User) this.heartbeat.deadlinePassed();
    this.fail(call, this.timedOut(call));
    if (sent) this.sendCancel(call); // the server stops the handler and frees its slot
  }

  private maybeEnd(): void {
    if (!this.window.idle || this.socket.writableEnded) return;
    this.writer.flush();
    this.socket.end();
  }
}

/** How a call's action reads in an error: the pattern, or the name of a control action. */
function describeAction(action: string | number): string {
  if (typeof action === 'string') return action;
  if (action === ACTION_PING) return 'ping';
  if (action === ACTION_HELLO) return 'handshake (HELLO)';
  return `action ${action}`;
}

/** The handshake's way to wrap a dialled socket (handshake.ts knows ClientStream only through its port). */
function openStream(socket: Socket, opts: NormalizedClientStreamOptions, where: Address): ClientStream {
  return new ClientStream(socket, opts, where);
}
