import { Fifo } from '../core/fifo.js';
import type { OccamsError } from '../errors.js';
import { DEFAULT_STREAM_CREDIT, MAX_STREAM_CREDIT } from '../protocol/extensions.js';
import type { Caller, CallHandle, CallOptions, CreditOwner, ErrorMapper, ResponseHandler, StreamFlow } from './call.js';

/** Items a stream's server may send ahead of its consumer, by default. */
export const DEFAULT_STREAM_WINDOW = DEFAULT_STREAM_CREDIT;

export interface StreamCallOptions extends Omit<CallOptions, 'flow' | 'event'> {
  /** items the server may send ahead of the consumer (its credit); default 64 */
  window?: number;
}

interface Waiter<T> {
  resolve(r: IteratorResult<T>): void;
  reject(err: unknown): void;
}

/**
 * A streamed call as an async iterator: `for await (const v of
 * streamCall(client, 'ticks', 10))`. The call goes out on the first
 * `next()`; items wait in a buffer of at most `window` items, and credit
 * goes back to the server as the consumer takes them, so a slow consumer
 * slows the producer across the wire (servers speaking FEATURE_CREDIT; with
 * others the server's own backpressure applies). Leaving the loop early
 * (`break`, a throw) cancels the call on the server.
 *
 *   server ──items (<= credit)──► buffer (<= window) ──next()──► consumer
 *      ▲                                                          │
 *      └──────── CREDIT(n) once half the window has been taken ───┘
 *
 * A result that is not a stream yields its one value (if any) and ends.
 * Errors reject the pending `next()` (then the iterator is done), as
 * `mapError` makes them when given (the typed layer's declared errors).
 */
export class StreamIterator<T = unknown> implements AsyncIterableIterator<T>, ResponseHandler, StreamFlow {
  readonly window: number;
  private readonly items = new Fifo<T>();
  private readonly waiters: Waiter<T>[] = [];
  private handle: CallHandle | undefined;
  private started = false;
  /** the call is over: final answer, error, or return() */
  private ended = false;
  /** the error the next `next()` rejects with; `hasFailure` tells it apart from none */
  private failure: unknown = undefined;
  private hasFailure = false;
  private owner: CreditOwner | undefined;
  private seq = 0;
  /** items taken since credit was last granted */
  private taken = 0;
  private readonly grantEvery: number;

  constructor(
    private readonly caller: Pick<Caller, 'call'>,
    private readonly action: string | number,
    private readonly value: unknown,
    private readonly options: StreamCallOptions = {},
    private readonly mapError?: ErrorMapper,
  ) {
    const w = options.window ?? DEFAULT_STREAM_WINDOW;
    this.window = Number.isSafeInteger(w) && w >= 1 ? Math.min(w, MAX_STREAM_CREDIT) : DEFAULT_STREAM_WINDOW;
    this.grantEvery = Math.max(1, this.window >> 1);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Items received and not yet taken (never more than `window` from a server speaking credit). */
  get buffered(): number {
    return this.items.length;
  }

  next(): Promise<IteratorResult<T>> {
    if (!this.started) this.start();
    if (this.items.length > 0) {
      const value = this.items.shift() as T;
      this.took();
      return Promise.resolve({ value, done: false });
    }
    if (this.hasFailure) {
      const err = this.failure;
      this.failure = undefined;
      this.hasFailure = false;
      return Promise.reject(err);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Stops early: cancels the call (the server's handler is told), drops what is buffered. */
  return(): Promise<IteratorResult<T>> {
    this.started = true;
    if (!this.ended) {
      this.ended = true;
      this.handle?.cancel();
    }
    this.items.drain();
    this.failure = undefined;
    this.hasFailure = false;
    this.release();
    return Promise.resolve({ value: undefined, done: true });
  }

  // ---- ResponseHandler -------------------------------------------------------

  onItem(value: unknown): void {
    if (this.ended) return;
    const w = this.waiters.shift();
    if (w === undefined) return this.items.push(value as T);
    this.took();
    w.resolve({ value: value as T, done: false });
  }

  onResult(value: unknown): void {
    if (this.ended) return;
    if (value !== undefined) this.onItem(value);
    this.ended = true;
    this.release();
  }

  onError(err: OccamsError): void {
    if (this.ended) return;
    this.ended = true;
    const raised = this.mapError === undefined ? err : this.mapError(err);
    const w = this.waiters.shift();
    if (w === undefined) {
      this.failure = raised;
      this.hasFailure = true;
    } else w.reject(raised);
    this.release();
  }

  // ---- StreamFlow ----------------------------------------------------------

  bind(owner: CreditOwner, seq: number): void {
    this.owner = owner;
    this.seq = seq;
    this.taken = 0;
  }

  private start(): void {
    this.started = true;
    this.handle = this.caller.call(this.action, this.value, this, { ...this.options, flow: this });
  }

  private took(): void {
    if (this.ended || ++this.taken < this.grantEvery) return;
    this.owner?.grant(this.seq, this.taken);
    this.taken = 0;
  }

  /** Waiters left once the call is over are done. */
  private release(): void {
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }
}

/** `for await (const v of streamCall(caller, action, value))`: see StreamIterator. */
export function streamCall<T = unknown>(caller: Pick<Caller, 'call'>, action: string | number, value: unknown, options?: StreamCallOptions): StreamIterator<T> {
  return new StreamIterator<T>(caller, action, value, options);
}
