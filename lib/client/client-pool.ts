import { EventEmitter } from 'node:events';
import { ClosedError, OccamsError, QueueFullError, TimeoutError, UnreachableError } from '../errors.js';
import { type Address, type AddressLike, formatAddress, parseAddress } from '../transport/address.js';
import { Backoff, type BackoffOptions } from '../core/backoff.js';
import { type Clock, type TimerHandle, sleep } from '../core/clock.js';
import { type CallHandle, type CallOptions, type Caller, PromiseHandler, type ResponseHandler } from './call.js';
import { ClientStream } from './client-stream.js';
import { Fifo } from '../core/fifo.js';
import { type ClientStreamOptions, normalizeClientStreamOptions } from './client-options.js';
import { nonNegativeInt, positiveInt, rejectUnknownKeys } from '../core/validate.js';
import { CLIENT_POOL_OPTIONS } from './option-names.js';
import { type Bucket, type Timed, TimeoutWheel } from '../core/timeout-wheel.js';

export const DEFAULT_POOL_CONNECTIONS = 1;
export const DEFAULT_IDLE_TIMEOUT = 120_000;

export type PoolState = 'idle' | 'connecting' | 'ready' | 'unhealthy' | 'closing' | 'closed';

/** Legal state moves; anything else is a bug and throws. */
const TRANSITIONS: Record<PoolState, readonly PoolState[]> = {
  idle: ['connecting', 'closing', 'closed'],
  connecting: ['ready', 'unhealthy', 'closing', 'closed'],
  ready: ['connecting', 'closing', 'closed'],
  unhealthy: ['connecting', 'closing', 'closed'],
  closing: ['closed'],
  closed: [],
};

/** Opens one connection; injectable for tests. */
export type ConnectionFactory = (address: Address, options: ClientStreamOptions) => Promise<ClientStream>;

export interface ClientPoolOptions extends ClientStreamOptions {
  /** connections kept open; default 1 */
  connections?: number;
  /** connections opened when every open one is at its window; default = connections */
  maxConnections?: number;
  /** an extra connection (beyond `connections`) idle this long is closed, ms; default 120 000 */
  idleTimeout?: number;
  backoff?: BackoffOptions;
  connectionFactory?: ConnectionFactory;
}

export interface PoolStats {
  state: PoolState;
  connections: number;
  inFlight: number;
  queued: number;
  healthy: boolean;
}

const enum Q {
  Queued,
  Sent,
  Done,
}

/** A call waiting in the pool's queue for a connection with room. */
class PooledCall implements Timed, CallHandle, ResponseHandler {
  timerBucket: Bucket | null = null;
  timerPrev: Timed | null = null;
  timerNext: Timed | null = null;
  state = Q.Queued;
  inner: CallHandle | undefined;
  constructor(
    readonly pool: ClientPool,
    readonly action: string | number,
    readonly value: unknown,
    readonly handler: ResponseHandler,
    readonly options: CallOptions | undefined,
    /** epoch ms at which the call times out */
    readonly deadline: number,
  ) {}
  cancel(): void {
    if (this.state === Q.Queued) this.pool.dequeue(this);
    else if (this.state === Q.Sent) this.inner!.cancel();
    this.state = Q.Done;
  }
  onItem(value: unknown): void {
    this.handler.onItem?.(value);
  }
  onResult(value: unknown, blob: Buffer): void {
    this.state = Q.Done;
    this.handler.onResult(value, blob);
  }
  onError(err: OccamsError): void {
    this.state = Q.Done;
    this.handler.onError(err);
  }
}

/**
 * Connections to ONE address behind one bounded queue.
 *
 *   call() ─► least-loaded connection with window room ─► ClientStream
 *      │ none has room
 *      ▼
 *   queue (bounded FIFO) ─► drained as slots free; more connections opened
 *                           up to maxConnections; failed at once when the
 *                           address turns unhealthy
 *
 * Health: each connection pings while idle and dies on silence; when the
 * last one is gone the pool reconnects at once, then with backoff while
 * unhealthy. Events: 'state' (next, prev), 'connect' (stream), 'disconnect'
 * (stream, error), 'connectError' (a failed connect).
 */
export class ClientPool extends EventEmitter implements Caller {
  readonly address: Address;
  private readonly streamOptions: ClientStreamOptions;
  private readonly min: number;
  private readonly max: number;
  private readonly idleTimeout: number;
  private readonly maxQueued: number;
  private readonly timeout: number;
  private readonly timerResolution: number;
  private readonly clock: Clock;
  private readonly factory: ConnectionFactory;
  private readonly backoff: Backoff;
  private readonly streams: ClientStream[] = [];
  /** when each stream was last seen with nothing in flight (for idle close) */
  private readonly idleSince = new Map<ClientStream, number>();
  private readonly queue = new Fifo<PooledCall>();
  private readonly wheel = new TimeoutWheel<PooledCall>();
  /** PooledCalls Queued and not Done */
  private queued = 0;
  private connecting = 0;
  private ticker: TimerHandle | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private lastError: Error | undefined;
  private _state: PoolState = 'idle';
  private readonly pumpBound = (): void => this.pump();

  constructor(address: AddressLike, options: ClientPoolOptions = {}) {
    super();
    rejectUnknownKeys(options, CLIENT_POOL_OPTIONS, 'ClientPool');
    this.address = parseAddress(address);
    const { connections, maxConnections, idleTimeout, backoff, connectionFactory, ...streamOptions } = options;
    const normalized = normalizeClientStreamOptions(streamOptions);
    this.streamOptions = streamOptions;
    this.min = positiveInt(connections, DEFAULT_POOL_CONNECTIONS, 'connections');
    this.max = Math.max(this.min, positiveInt(maxConnections, this.min, 'maxConnections'));
    this.idleTimeout = nonNegativeInt(idleTimeout, DEFAULT_IDLE_TIMEOUT, 'idleTimeout');
    this.maxQueued = normalized.maxQueued;
    this.timeout = normalized.timeout;
    this.timerResolution = normalized.timerResolution;
    this.clock = normalized.clock;
    this.factory = connectionFactory ?? ((a, o) => ClientStream.connect(a, o));
    this.backoff = new Backoff(backoff);
  }

  get state(): PoolState {
    return this._state;
  }
  /**
   * Worth sending to: not known to be down, not closed, and not only
   * connections whose server announced it is draining (GOAWAY).
   */
  get healthy(): boolean {
    const s = this._state;
    if (s !== 'idle' && s !== 'connecting' && s !== 'ready') return false;
    const streams = this.streams;
    if (streams.length === 0) return true;
    for (let i = 0; i < streams.length; i++) if (!streams[i]!.draining) return true;
    return false;
  }
  get stats(): PoolStats {
    let inFlight = 0;
    for (const s of this.streams) inFlight += s.load;
    return { state: this._state, connections: this.streams.length, inFlight, queued: this.queued, healthy: this.healthy };
  }
  /** The open connections (read-only view, for tests and diagnostics). */
  get connections(): readonly ClientStream[] {
    return this.streams;
  }

  /** Opens the minimum number of connections; resolves when the first is ready (or rejects when it fails). */
  connect(): Promise<void> {
    if (this._state === 'ready') return Promise.resolve();
    if (this._state === 'closing' || this._state === 'closed') return Promise.reject(new ClosedError('pool is closed'));
    const done = new Promise<void>((resolve, reject) => {
      const onState = (next: PoolState) => {
        if (next === 'ready') resolve();
        else if (next === 'unhealthy' || next === 'closed') reject(new UnreachableError(`cannot connect to ${formatAddress(this.address)}`, { cause: this.lastError }));
        else return;
        this.off('state', onState);
      };
      this.on('state', onState);
    });
    if (this._state === 'idle' || this._state === 'unhealthy') this.startConnecting();
    return done;
  }

  call(action: string | number, value: unknown, handler: ResponseHandler, options?: CallOptions): CallHandle {
    switch (this._state) {
      case 'closing':
      case 'closed':
        return failNow(handler, new ClosedError('pool is closed'));
      case 'unhealthy':
        return failNow(handler, new UnreachableError(`${formatAddress(this.address)} is unreachable`, { cause: this.lastError }));
      case 'idle':
        this.startConnecting();
        break;
    }
    if (this.queued === 0) {
      const stream = this.pick();
      if (stream !== undefined) return stream.call(action, value, handler, options);
    }
    if (this.queue.length >= this.maxQueued) {
      return failNow(handler, new QueueFullError(`every connection to ${formatAddress(this.address)} is at its window and ${this.maxQueued} callers are waiting`));
    }
    const timeout = options?.timeout ?? this.timeout;
    const pc = new PooledCall(this, action, value, handler, options, this.clock.now() + timeout);
    this.wheel.add(pc, Math.ceil(pc.deadline / this.timerResolution));
    this.queue.push(pc);
    this.queued++;
    this.ensureTicker();
    this.maybeGrow();
    return pc;
  }

  request(action: string | number, value?: unknown, options?: CallOptions): Promise<unknown> {
    return new Promise((resolve, reject) => void this.call(action, value, new PromiseHandler(resolve, reject), options));
  }

  /** Removes a queued call (cancel). */
  dequeue(pc: PooledCall): void {
    if (pc.state !== Q.Queued) return;
    pc.state = Q.Done;
    this.queued--;
    this.wheel.remove(pc);
    this.queueEmptied();
  }

  /** Graceful: queued calls still go out, calls in flight finish, then connections close. */
  async close(): Promise<void> {
    if (this._state === 'closed') return;
    if (this._state !== 'closing') {
      this.setState('closing');
      this.clock.clear(this.reconnectTimer);
      if (this.streams.length === 0) this.failQueued(new ClosedError('pool closed before a connection was ready'));
    }
    if (this.queued > 0) {
      // queued calls still go out as slots free; those left after the
      // timeout (or once no connection is left) fail
      const wait = sleep(this.clock, this.timeout);
      await Promise.race([new Promise((r) => this.once('drained', r)), wait.promise]);
      wait.cancel();
    }
    this.failQueued(new ClosedError('pool closed'));
    await Promise.all(this.streams.map((s) => s.close()));
    this.finishClose();
  }

  /** Aborts everything with `err` (default rpc_closed). Idempotent. */
  destroy(err?: Error): void {
    if (this._state === 'closed') return;
    const error = err === undefined ? new ClosedError('pool destroyed') : err instanceof OccamsError ? err : new ClosedError(err.message, { cause: err });
    this.clock.clear(this.reconnectTimer);
    this.failQueued(error);
    for (const s of [...this.streams]) s.destroy(error);
    this.finishClose();
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
    while (this.queued > 0) {
      const stream = this.pick();
      if (stream === undefined) return;
      const pc = this.queue.shift()!;
      if (pc.state !== Q.Queued) continue;
      this.queued--;
      this.wheel.remove(pc);
      pc.state = Q.Sent;
      const left = Math.max(1, pc.deadline - this.clock.now());
      pc.inner = stream.call(pc.action, pc.value, pc, { ...pc.options, timeout: left });
    }
    this.queueEmptied();
  }

  /** While closing, tells close() that nothing waits in the queue any more. */
  private queueEmptied(): void {
    if (this.queued === 0 && this._state === 'closing') this.emit('drained');
  }

  private maybeGrow(): void {
    if (this.streams.length + this.connecting >= this.max || this.connecting > 0) return;
    if (this.streams.length === 0 || this.pick() !== undefined) return;
    this.openStream();
  }

  // ---- connections ---------------------------------------------------------

  private startConnecting(): void {
    this.setState('connecting');
    this.ensureTicker();
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
    if (this._state === 'closing' || this._state === 'closed') {
      stream.destroy();
      return;
    }
    stream.onSlotFreed = this.pumpBound;
    stream.once('close', (err?: Error) => this.onStreamClosed(stream, err));
    stream.once('goaway', () => this.onGoaway(stream));
    this.streams.push(stream);
    this.backoff.reset();
    this.lastError = undefined;
    if (this._state !== 'ready') this.setState('ready');
    this.emit('connect', stream);
    if (this.streams.length + this.connecting < this.min) this.openStream();
    this.pump();
    this.maybeGrow();
  }

  private connectFailed(err: Error): void {
    this.connecting--;
    this.lastError = err;
    if (this._state === 'closing' || this._state === 'closed') return;
    this.emit('connectError', err);
    if (this.streams.length > 0 || this.connecting > 0) return; // an extra connection failed; the pool is fine
    this.setState('unhealthy');
    this.failQueued(new UnreachableError(`cannot connect to ${formatAddress(this.address)}: ${err.message}`, { cause: err }));
    const delay = this.backoff.next();
    this.reconnectTimer = this.clock.setTimeout(() => {
      if (this._state === 'unhealthy') this.startConnecting();
    }, delay);
  }

  private onStreamClosed(stream: ClientStream, err?: Error): void {
    const i = this.streams.indexOf(stream);
    if (i >= 0) this.streams.splice(i, 1);
    this.idleSince.delete(stream);
    this.emit('disconnect', stream, err);
    if (this._state === 'closing' && this.streams.length === 0) this.emit('drained');
    if (this._state === 'closing' || this._state === 'closed') return;
    if (this.streams.length === 0 && this.connecting === 0) {
      // the address may be gone: reconnect now; backoff starts if that fails
      this.startConnecting();
    } else if (this.streams.length + this.connecting < this.min) {
      this.openStream();
    }
  }

  private onGoaway(stream: ClientStream): void {
    // The server is draining: stop picking it (stream.available is false
    // now), open a replacement, let what is in flight finish.
    if (this._state !== 'ready') return;
    const live = this.streams.filter((s) => !s.draining).length;
    if (live + this.connecting < this.min) this.openStream();
    void stream.close();
  }

  // ---- timer ---------------------------------------------------------------

  private ensureTicker(): void {
    if (this.ticker !== undefined) return;
    this.ticker = this.clock.setInterval(() => this.tick(), this.timerResolution);
  }

  private tick(): void {
    const now = this.clock.now();
    for (const pc of this.wheel.takeExpired(Math.floor(now / this.timerResolution))) {
      if (pc.state !== Q.Queued) continue;
      pc.state = Q.Done;
      this.queued--;
      deliverError(pc.handler, new TimeoutError(`${String(pc.action)} timed out waiting for a connection`));
    }
    this.queueEmptied();
    if (this.idleTimeout > 0 && this.streams.length > this.min) {
      for (const s of [...this.streams]) {
        if (s.load > 0) {
          this.idleSince.delete(s);
          continue;
        }
        const since = this.idleSince.get(s) ?? now;
        this.idleSince.set(s, since);
        if (now - since >= this.idleTimeout && this.streams.length > this.min) {
          this.streams.splice(this.streams.indexOf(s), 1);
          void s.close();
        }
      }
    }
  }

  // ---- helpers -------------------------------------------------------------

  private failQueued(err: OccamsError): void {
    for (const pc of this.queue.drain()) {
      if (pc.state !== Q.Queued) continue;
      pc.state = Q.Done;
      this.wheel.remove(pc);
      deliverError(pc.handler, err);
    }
    this.queued = 0;
  }

  private finishClose(): void {
    this.clock.clear(this.ticker);
    this.ticker = undefined;
    if (this._state !== 'closed') this.setState('closed');
  }

  private setState(next: PoolState): void {
    const prev = this._state;
    if (prev === next) return;
    if (!TRANSITIONS[prev].includes(next)) throw new Error(`ClientPool: illegal transition ${prev} -> ${next}`);
    this._state = next;
    this.emit('state', next, prev);
  }
}

const NOOP_HANDLE: CallHandle = { cancel() {} };

function failNow(handler: ResponseHandler, err: OccamsError): CallHandle {
  deliverError(handler, err);
  return NOOP_HANDLE;
}

function deliverError(handler: ResponseHandler, err: OccamsError): void {
  try {
    handler.onError(err);
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}
