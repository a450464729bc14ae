import type { ConnectionInfo } from '../core/diagnostics.js';
import { TimedEntry } from '../core/timeout-wheel.js';
import type { PeerInfo } from '../core/tracing.js';
import type { Waiter } from '../core/wait-queue.js';
import type { OccamsError } from '../errors.js';

/** A connection a probed call can be written to (ClientStream). */
export interface ProbedConnection extends ConnectionInfo {
  /** where it goes (built on each read) */
  readonly peer: PeerInfo;
}

/**
 * What the connection that writes an observed call tells its
 * observer (CallProbe, call-probe.ts): a port, so that the two files do not
 * import each other.
 */
export interface CallObserver {
  wrote(connection: ProbedConnection, seq: number): void;
}

/**
 * Receives the outcome of one call. Exactly one of `onResult` / `onError`
 * is called, once, unless the call was cancelled (then neither is).
 */
export interface ResponseHandler {
  /** A streamed value (servers speaking the extensions); more follow. */
  onItem?(value: unknown): void;
  /** The final value (undefined when the server sent none) and the raw blob. */
  onResult(value: unknown, blob: Buffer): void;
  onError(err: OccamsError): void;
}

/** Per-call options. */
export interface CallOptions {
  /** timeout for this call in ms (overrides the connection default) */
  timeout?: number;
  /** raw bytes sent after the message (the v1 blob) */
  blob?: Uint8Array;
  /** metadata the server sees (extension; dropped for plain v1 servers) */
  meta?: Record<string, unknown>;
  /** absolute deadline, epoch ms; the server is told the time left (extension) */
  deadline?: number;
  /** fire-and-forget: no response is owed (extension; plain v1 servers answer and the answer is discarded) */
  event?: boolean;
  /** pools: false forbids retrying this call once sent (it may still move while never sent) */
  retry?: boolean;
  /** pools: this call may run twice, so it may be retried once sent (default: the pool's `idempotent` option) */
  idempotent?: boolean;
  /**
   * a streamed result whose consumer grants credit itself as it takes items
   * (FEATURE_CREDIT); without it, credit is renewed as items arrive
   */
  flow?: StreamFlow;
  /**
   * @internal the timeout the caller asked for, when a pool passes on only
   * the time left of it (`timeout`): a TimeoutError names this one
   */
  statedTimeout?: number;
  /** @internal set by the outermost `call()` when calls are observed (diagnostics channels, tracing) */
  probe?: CallObserver;
}

/**
 * The credit side of a streamed call, for consumers that pace the server
 * (an async iterator): the connection that sends the call binds itself and
 * the call's seq; the consumer then grants items as it takes them.
 */
export interface StreamFlow {
  /** items the server may send before the first grant */
  readonly window: number;
  bind(owner: CreditOwner, seq: number): void;
}

/** What a StreamFlow grants through: the connection the call went out on. */
export interface CreditOwner {
  grant(seq: number, n: number): void;
}

/** What `call()` returns, whoever issued it. */
export interface CallHandle {
  /** Stops waiting: frees the slot, tells the server when it can. No callback follows. */
  cancel(): void;
  /** True once the request was handed to a connection's socket: the server may run it. */
  readonly sent: boolean;
}

/** Anything requests can be sent through: a ClientStream, a ClientPool, a FailoverPool. */
export interface Caller {
  call(action: string | number, value: unknown, handler: ResponseHandler, options?: CallOptions): CallHandle;
  request(action: string | number, value?: unknown, options?: CallOptions): Promise<unknown>;
  close(): Promise<void>;
  destroy(err?: Error): void;
}

export const enum CallKind {
  /** a user request; counts against the window */
  User,
  /** an event to a server speaking the extensions: not windowed, no response */
  Event,
  /** PING or HELLO: not windowed */
  Control,
}

/** How far a call got: the retry policy reads this (never sent is always safe to retry). */
export const enum CallState {
  /** created, or waiting in a queue (`waiting` true); nothing went out */
  New,
  /** written for the socket: the server may run it */
  Sent,
  /** settled or cancelled; nothing more happens */
  Done,
}

/** Something that can cancel a call it issued. */
export interface CallOwner {
  cancel(call: Call): void;
  /** True once the frames of `batch` were handed to the socket. */
  handedOff(batch: number): boolean;
}

/**
 * One request's bookkeeping, from `call()` to its single settlement.
 * Invariants: `state` only moves New -> Sent -> Done, or New -> Done;
 * `waiting` only while New; while Sent, `pending.get(seq) === this`; while in
 * the timeout wheel, `timerBucket !== null`.
 */
export class Call extends TimedEntry implements Waiter {
  state: CallState = CallState.New;
  waiting = false;
  /** the write batch its frame went into (as FrameWriter reported it); 0 while never written */
  batch = 0;
  seq = 0;
  /** stream items taken since credit was last renewed */
  consumed = 0;
  /** ms it was last armed to time out in (named in its TimeoutError) */
  timeoutMs = 0;
  /** epoch ms it was last armed to time out at, exactly (the wheel checks it coarsely); 0 while never armed (events) */
  expiresAt = 0;

  constructor(
    readonly owner: CallOwner,
    readonly kind: CallKind,
    readonly action: number | string,
    readonly value: unknown,
    readonly handler: ResponseHandler,
    readonly options: CallOptions | undefined,
  ) {
    super();
  }

  /** Stops waiting for this call: frees its slot, tells the server if it can be told. */
  cancel(): void {
    this.owner.cancel(this);
  }

  get settled(): boolean {
    return this.state === CallState.Done;
  }
  /** Handed to the socket: the server may have run it (stays true once Done). */
  get sent(): boolean {
    return this.batch !== 0 && this.owner.handedOff(this.batch);
  }
}

/** Turns a call's OccamsError into what its caller raises (the typed layer's declared errors). */
export type ErrorMapper = (err: OccamsError) => unknown;

/** Adapts a call to a Promise (the convenient, slightly slower API). */
export class PromiseHandler implements ResponseHandler {
  constructor(
    private readonly resolve: (value: unknown) => void,
    private readonly reject: (err: unknown) => void,
    private readonly mapError?: ErrorMapper,
  ) {}
  onResult(value: unknown): void {
    this.resolve(value);
  }
  onError(err: OccamsError): void {
    this.reject(this.mapError === undefined ? err : this.mapError(err));
  }
}

/** Discards everything (pings, fire-and-forget events). */
export const IGNORE: ResponseHandler = {
  onResult() {},
  onError() {},
};

/**
 * Delivers an error to a user's handler; a throw from it is rethrown on its
 * own (as any callback error would be), after our state is consistent.
 */
export function deliverError(handler: ResponseHandler, err: OccamsError): void {
  try {
    handler.onError(err);
  } catch (e) {
    rethrow(e);
  }
}

export function rethrow(err: unknown): void {
  queueMicrotask(() => {
    throw err;
  });
}
