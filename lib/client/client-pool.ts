import { Backoff } from '../core/backoff.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { poolState } from '../core/diagnostics.js';
import { Lifecycle } from '../core/lifecycle.js';
import { positiveInt, rejectUnknownKeys } from '../core/validate.js';
import { ClosedError, type OccamsError, QueueFullError, TimeoutError, UnreachableError } from '../errors.js';
import { type Address, type AddressLike, formatAddress, parseAddress } from '../transport/address.js';
import { type Caller, type CallHandle, type CallOptions, CallState, deliverError, PromiseHandler, type ResponseHandler } from './call.js';
import { callsObserved, observeCall } from './call-probe.js';
import { type ClientStreamOptions, normalizeClientStreamOptions } from './client-options.js';
import { ClientStream } from './client-stream.js';
import { IdleCloser } from './idle-closer.js';
import {
  CLIENT_POOL_OPTIONS,
  type ClientPoolOptions,
  type ConnectionFactory,
  DEFAULT_EXTRA_IDLE_TIMEOUT,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_POOL_CONNECTIONS,
  extraIdleTimeout,
  type PoolState,
  type PoolStats,
} from './pool-options.js';
import { pingPool } from './pool-ping.js';
import { PoolQueue } from './pool-queue.js';
import { PooledCall } from './pooled-call.js';

export { type ClientPoolOptions, type ConnectionFactory, DEFAULT_EXTRA_IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_POOL_CONNECTIONS, type PoolState, type PoolStats };

/** Legal state moves; anything else is a bug and throws. */
const TRANSITIONS = {
  idle: ['connecting', 'closing', 'closed'],
  connecting: ['ready', 'unhealthy', 'closing', 'closed'],
  ready: ['connecting', 'suspect', 'closing', 'closed'],
  suspect: ['ready', 'connecting', 'closing', 'closed'],
  unhealthy: ['connecting', 'closing', 'closed'],
  closing: ['closed'],
  closed: [],
} as const;

/**
 * Connections to ONE address behind one bounded queue.
 *
 *   call() ─► least-loaded connection with window room ─► ClientStream
 *      │ none has room
 *      ▼
 *   WaitQueue (bounded) ─► drained as slots free; more connections opened
 *                          up to maxConnections; failed at once when the
 *                          address turns unhealthy
 *
 * Health: each connection pings while silent; unanswered pings make it
 * suspect (no new calls), and when every connection is, the pool is
 * 'suspect': calls wait in its queue (a FailoverPool sends them to another
 * server) until one answers again. When the last connection is gone the
 * pool reconnects at once, then with backoff while unhealthy. Events: 'state' (next, prev), 'connect' (stream), 'disconnect'
 * (stream, error), 'goaway' (stream: its server is draining), 'connectError' (a failed connect), 'close'.
 */
export class ClientPool extends Lifecycle<'idle' | 'connecting' | 'ready' | 'suspect' | 'unhealthy'> implements Caller {
  readonly address: Address;
  private readonly streamOptions: ClientStreamOptions;
  private readonly min: number;
  private readonly max: number;
  private readonly idle: IdleCloser;
  private readonly timeout: number;
  private readonly clock: Clock;
  private readonly factory: ConnectionFactory;
  private readonly backoff: Backoff;
  private readonly streams: ClientStream[] = [];
  /** calls waiting for a connection with room, with their deadlines */
  private readonly queue: PoolQueue;
  private connecting = 0;
  private reconnectTimer: TimerHandle | undefined;
  private _lastError: Error | undefined;
  private readonly pumpBound = (): void => this.pump();
  private readonly livenessBound = (): void => this.livenessChanged();

  constructor(address: AddressLike, options: ClientPoolOptions = {}) {
    super(`pool ${typeof address === 'string' ? address : JSON.stringify(address)}`, TRANSITIONS, 'idle');
    rejectUnknownKeys(options, CLIENT_POOL_OPTIONS, 'ClientPool');
    this.address = parseAddress(address);
    const { connections, maxConnections, extraIdleTimeout: _extra, idleTimeout: _idle, backoff, connectionFactory, ...streamOptions } = options;
    const normalized = normalizeClientStreamOptions(streamOptions);
    this.streamOptions = streamOptions;
    this.min = positiveInt(connections, DEFAULT_POOL_CONNECTIONS, 'connections');
    this.max = Math.max(this.min, positiveInt(maxConnections, this.min, 'maxConnections'));
    const idleMs = extraIdleTimeout(options);
    this.timeout = normalized.timeout;
    this.clock = normalized.clock;
    this.queue = new PoolQueue(normalized.maxQueued, this.clock, normalized.timerResolution, (pc) => this.expire(pc));
    this.factory = connectionFactory ?? ((a, o) => ClientStream.connect(a, o));
    this.backoff = new Backoff(backoff);
    this.idle = new IdleCloser(this.clock, idleMs, this.min, this.streams);
  }

  /**
   * Worth sending to: not known to be down, not closed, and not only
   * connections whose server announced it is draining (GOAWAY).
   */
  get healthy(): boolean {
    const s = this.state;
    if (s !== 'idle' && s !== 'connecting' && s !== 'ready' && s !== 'suspect') return false;
    const streams = this.streams;
    if (streams.length === 0) return true;
    for (let i = 0; i < streams.length; i++) if (!streams[i]!.draining) return true;
    return false;
  }
  /** Has a connection that takes new calls now (not only connecting, not only draining). */
  get ready(): boolean {
    if (this.state !== 'ready') return false;
    const streams = this.streams;
    for (let i = 0; i < streams.length; i++) {
      const s = streams[i]!;
      if (!s.draining && !s.suspect && s.state === 'ready') return true;
    }
    return false;
  }
  /** Calls in flight on its connections plus calls waiting in its queue (what load-aware picking weighs). */
  get load(): number {
    let n = this.queue.length;
    const streams = this.streams;
    for (let i = 0; i < streams.length; i++) n += streams[i]!.load;
    return n;
  }
  /** Calls waiting in this pool's queue. */
  get queued(): number {
    return this.queue.length;
  }
  /** Why the last connection attempt failed, until one succeeds. */
  get lastError(): Error | undefined {
    return this._lastError;
  }
  get stats(): PoolStats {
    let inFlight = 0;
    for (const s of this.streams) inFlight += s.load;
    return { state: this.state, connections: this.streams.length, inFlight, queued: this.queue.length, healthy: this.healthy };
  }
  /** The open connections (read-only view, for tests and diagnostics). */
  get connections(): readonly ClientStream[] {
    return this.streams;
  }

  /** Opens the minimum number of connections; resolves when the first is ready (or rejects when it fails). */
  connect(): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    if (this.ending) return Promise.reject(new ClosedError('pool is closed'));
    const done = new Promise<void>((resolve, reject) => {
      const onState = (next: PoolState) => {
        if (next === 'ready') resolve();
        else if (next === 'unhealthy' || next === 'closed') reject(this.unreachable());
        else return;
        this.off('state', onState);
      };
      this.on('state', onState);
    });
    if (this.state === 'idle' || this.state === 'unhealthy') this.startConnecting();
    return done;
  }

  call(action: string | number, value: unknown, handler: ResponseHandler, options?: CallOptions): CallHandle {
    if (callsObserved() && options?.probe === undefined) return observeCall(this, action, value, handler, options);
    switch (this.state) {
      case 'closing':
      case 'closed':
        return failNow(handler, new ClosedError('pool is closed'));
      case 'unhealthy':
        return failNow(handler, this.unreachable());
      case 'idle':
        this.startConnecting();
        break;
    }
    if (this.queue.length === 0) {
      const stream = this.pick();
      if (stream !== undefined) return stream.call(action, value, handler, options);
    }
    if (this.queue.full) {
      return failNow(handler, new QueueFullError(`every connection to ${formatAddress(this.address)} is at its window and ${this.queue.max} callers are waiting`));
    }
    const pc = new PooledCall(this, action, value, handler, options, this.clock.now() + (options?.timeout ?? this.timeout));
    this.queue.push(pc);
    this.maybeGrow();
    return pc;
  }

  request(action: string | number, value?: unknown, options?: CallOptions): Promise<unknown> {
    return new Promise((resolve, reject) => void this.call(action, value, new PromiseHandler(resolve, reject), options));
  }

  /** A real PING within `timeout` ms (connecting first if need be); resolves with its round trip in ms. See pool-ping.ts. */
  ping(timeout = this.timeout): Promise<number> {
    return pingPool(this, timeout, this.clock);
  }

  /** Fails every queued call with `err` (they were never sent: a FailoverPool moves them). */
  releaseQueued(err: OccamsError): void {
    this.failQueued(err);
    this.queueEmptied();
  }

  /** Removes a queued call (cancel). */
  dequeue(pc: PooledCall): void {
    if (this.queue.remove(pc)) this.queueEmptied();
  }

  // ---- lifecycle -------------------------------------------------------------

  protected override onEnter(next: PoolState, prev: PoolState): void {
    if (poolState.hasSubscribers) poolState.publish({ pool: this, address: formatAddress(this.address), state: next, previous: prev });
    this.emit('state', next, prev);
  }

  /** Graceful: queued calls still go out, calls in flight finish, then connections close. */
  protected async beginClose(): Promise<void> {
    this.clock.clear(this.reconnectTimer);
    if (this.streams.length === 0) this.failQueued(new ClosedError('pool closed before a connection was ready'));
    if (this.queue.length > 0) {
      // queued calls still go out as slots free; those left after the
      // timeout (or once no connection is left) fail
      let wake: () => void = () => {};
      const drained = new Promise<void>((resolve) => (wake = resolve));
      const timer = this.clock.setTimeout(wake, this.timeout);
      this.on('drained', wake);
      await drained;
      this.off('drained', wake);
      this.clock.clear(timer);
    }
    this.failQueued(new ClosedError('pool closed'));
    await Promise.all(this.streams.map((s) => s.close()));
  }

  protected abort(error: OccamsError): void {
    this.clock.clear(this.reconnectTimer);
    this.idle.stop();
    this.queue.stop();
    this.failQueued(error);
    for (const s of [...this.streams]) s.destroy(error);
  }

  // ---- selection -----------------------------------------------------------

  private pick(): ClientStream | undefined {
    let best: ClientStream | undefined;
    for (let i = 0; i < this.streams.length; i++) {
      const s = this.streams[i]!;
      if (s.available && (best === undefined || s.load < best.load)) best = s;
    }
    return best;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const stream = this.pick();
      if (stream === undefined) return;
      const pc = this.queue.shift()!;
      pc.state = CallState.Sent;
      const left = Math.max(1, pc.deadline - this.clock.now());
      const stated = pc.options?.statedTimeout ?? pc.options?.timeout ?? this.timeout;
      pc.inner = stream.call(pc.action, pc.value, pc, { ...pc.options, timeout: left, statedTimeout: stated });
    }
    this.queueEmptied();
  }

  /** While closing, tells close() that nothing waits in the queue any more. */
  private queueEmptied(): void {
    if (this.queue.length === 0 && this.state === 'closing') this.emit('drained');
  }

  private maybeGrow(): void {
    if (this.streams.length + this.connecting >= this.max || this.connecting > 0) return;
    if (this.streams.length === 0 || this.pick() !== undefined) return;
    this.openStream();
  }

  private expire(pc: PooledCall): void {
    deliverError(
      pc.handler,
      new TimeoutError(`${String(pc.action)} timed out after ${pc.options?.statedTimeout ?? pc.options?.timeout ?? this.timeout} ms waiting for a connection`),
    );
    this.queueEmptied();
  }

  // ---- connections ---------------------------------------------------------

  private startConnecting(): void {
    this.transition('connecting');
    this.openStream();
  }

  private openStream(): void {
    this.connecting++;
    this.factory(this.address, this.streamOptions).then(
      (stream) => this.adopt(stream),
      (err: Error) => this.connectFailed(err),
    );
  }

  private adopt(stream: ClientStream): void {
    this.connecting--;
    if (this.ending) {
      stream.destroy();
      return;
    }
    stream.onSlotFreed = this.pumpBound;
    stream.once('close', (err?: Error) => this.onStreamClosed(stream, err));
    stream.once('goaway', () => this.onGoaway(stream));
    stream.on('suspect', this.livenessBound);
    stream.on('alive', this.livenessBound);
    this.streams.push(stream);
    this.backoff.reset();
    this._lastError = undefined;
    this.transition('ready');
    this.emit('connect', stream);
    if (this.streams.length + this.connecting < this.min) this.openStream();
    this.idle.grew();
    this.pump();
    this.maybeGrow();
  }

  /**
   * "cannot connect to <address>: <why>", its cause the last connect error.
   * Dial and handshake errors already read so: their message is taken and
   * their own cause kept, so that no cause repeats the message above it.
   */
  private unreachable(): UnreachableError {
    const err = this._lastError;
    if (err instanceof UnreachableError) return new UnreachableError(err.message, err.cause === undefined ? undefined : { cause: err.cause });
    return new UnreachableError(`cannot connect to ${formatAddress(this.address)}${err ? `: ${err.message}` : ''}`, err === undefined ? undefined : { cause: err });
  }

  private connectFailed(err: Error): void {
    this.connecting--;
    this._lastError = err;
    if (this.ending) return;
    this.emit('connectError', err);
    if (this.streams.length > 0 || this.connecting > 0) return; // an extra connection failed; the pool is fine
    this.transition('unhealthy');
    this.failQueued(this.unreachable());
    this.reconnectTimer = this.clock.setTimeout(() => {
      if (this.state === 'unhealthy') this.startConnecting();
    }, this.backoff.next());
  }

  private onStreamClosed(stream: ClientStream, err?: Error): void {
    const i = this.streams.indexOf(stream);
    if (i >= 0) this.streams.splice(i, 1);
    this.idle.forget(stream);
    this.emit('disconnect', stream, err);
    if (this.state === 'closing' && this.streams.length === 0) this.emit('drained');
    if (this.ending) return;
    if (this.streams.length > 0) this.livenessChanged();
    if (this.streams.length === 0 && this.connecting === 0) {
      // the address may be gone: reconnect now; backoff starts if that fails
      this.startConnecting();
    } else if (this.streams.length + this.connecting < this.min) {
      this.openStream();
    }
  }

  /**
   * A connection turned suspect or answered again: the pool is 'suspect'
   * while every connection is, 'ready' (and sends what waits) once one answers.
   */
  private livenessChanged(): void {
    const streams = this.streams;
    let live = false;
    for (let i = 0; i < streams.length; i++) if (!streams[i]!.suspect) live = true;
    if (this.state === 'ready' && !live && streams.length > 0) {
      this.transition('suspect');
    } else if (this.state === 'suspect' && live) {
      this.transition('ready');
      this.pump();
    }
  }

  private onGoaway(stream: ClientStream): void {
    // The server is draining: stop picking it (stream.available is false
    // now), open a replacement, let what is in flight finish.
    this.emit('goaway', stream);
    if (this.state !== 'ready') return;
    const live = this.streams.filter((s) => !s.draining).length;
    if (live + this.connecting < this.min) this.openStream();
    void stream.close();
  }

  private failQueued(err: OccamsError): void {
    this.queue.failAll(err);
  }
}

const NOOP_HANDLE: CallHandle = { cancel() {}, sent: false };

function failNow(handler: ResponseHandler, err: OccamsError): CallHandle {
  deliverError(handler, err);
  return NOOP_HANDLE;
}
