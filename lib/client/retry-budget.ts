import type { Clock } from '../core/clock.js';
import { nonNegativeInt, optionNames, positiveInt, rejectUnknownKeys, toNumber } from '../core/validate.js';
import { InvalidOptionError } from '../errors.js';

/** Finagle RetryBudget's percentCanRetry: retries may add this share of the calls. */
export const DEFAULT_RETRY_RATIO = 0.2;
/** Finagle RetryBudget's minRetriesPerSec: retries always allowed per second, however few the calls. */
export const DEFAULT_MIN_RETRIES_PER_SECOND = 10;
/** Finagle RetryBudget's ttl: the window calls and retries are counted over, ms. */
export const DEFAULT_RETRY_WINDOW = 10_000;
/** First retry waits up to this long (full jitter, as grpc-js retrying-call), ms. */
export const DEFAULT_RETRY_BACKOFF_INITIAL = 50;
/** Longest wait before a retry, ms. */
export const DEFAULT_RETRY_BACKOFF_MAX = 1_000;
export const DEFAULT_RETRY_BACKOFF_MULTIPLIER = 2;

/** How many retries a FailoverPool may make (Finagle's RetryBudget, grpc-js's RetryThrottler). */
export interface RetryBudgetOptions {
  /** retries allowed per call made, over the window; default 0.2 */
  ratio?: number;
  /** retries allowed per second whatever the calls; default 10 */
  minPerSecond?: number;
  /** ms over which calls and retries are counted; default 10 000 */
  window?: number;
}

/** The wait before each retry: a random share (full jitter) of initial × multiplier^(retry − 1), capped. */
export interface RetryBackoffOptions {
  /** ms; default 50 */
  initial?: number;
  /** ms; default 1 000 */
  max?: number;
  /** default 2 */
  multiplier?: number;
}

const BUDGET_OPTIONS = optionNames<RetryBudgetOptions>({ ratio: true, minPerSecond: true, window: true });
const BACKOFF_OPTIONS = optionNames<RetryBackoffOptions>({ initial: true, max: true, multiplier: true });

/** Buckets the window is counted in. */
const SLOTS = 10;

/**
 * Calls and retries over a sliding window of SLOTS buckets; a retry is
 * allowed while retries < ratio × calls + minPerSecond × window seconds.
 * Retries (sent calls tried again) spend it; moves (calls never sent) do
 * not, as they add no load to any server.
 *
 *   slot:   [0][1]...[9]   one per window/SLOTS ms, reused round the ring
 *   calls:   c0 c1 ... c9  sums kept in `calls`, `retries`
 */
export class RetryBudget {
  private readonly ratio: number;
  private readonly reserve: number;
  private readonly slotMs: number;
  private readonly callSlots = new Float64Array(SLOTS);
  private readonly retrySlots = new Float64Array(SLOTS);
  private calls = 0;
  private retries = 0;
  /** absolute slot number last written (floor(now / slotMs)) */
  private current = 0;

  constructor(
    o: RetryBudgetOptions,
    private readonly clock: Clock,
  ) {
    rejectUnknownKeys(o, BUDGET_OPTIONS, 'retryBudget');
    this.ratio = ratioOption(o.ratio);
    const window = positiveInt(o.window, DEFAULT_RETRY_WINDOW, 'retryBudget.window');
    this.reserve = (nonNegativeInt(o.minPerSecond, DEFAULT_MIN_RETRIES_PER_SECOND, 'retryBudget.minPerSecond') * window) / 1000;
    this.slotMs = Math.max(1, Math.ceil(window / SLOTS));
    this.current = Math.floor(clock.now() / this.slotMs);
  }

  /** A call was made. */
  deposit(): void {
    const i = this.advance();
    this.callSlots[i]!++;
    this.calls++;
  }

  /** Takes one retry from the budget; false (nothing taken) when it is spent. */
  tryRetry(): boolean {
    const i = this.advance();
    if (this.retries + 1 > this.ratio * this.calls + this.reserve) return false;
    this.retrySlots[i]!++;
    this.retries++;
    return true;
  }

  /** Moves to the current slot, emptying the ones that left the window; returns its index. */
  private advance(): number {
    const now = Math.floor(this.clock.now() / this.slotMs);
    if (now !== this.current) {
      const steps = Math.min(SLOTS, Math.max(0, now - this.current));
      for (let k = 1; k <= steps; k++) {
        const j = (this.current + k) % SLOTS;
        this.calls -= this.callSlots[j]!;
        this.retries -= this.retrySlots[j]!;
        this.callSlots[j] = 0;
        this.retrySlots[j] = 0;
      }
      this.current = now;
    }
    return now % SLOTS;
  }
}

/** Delays before retries, from the options (checked once). */
export class RetryBackoff {
  private readonly initial: number;
  private readonly max: number;
  private readonly multiplier: number;

  constructor(
    o: RetryBackoffOptions,
    private readonly random: () => number,
  ) {
    rejectUnknownKeys(o, BACKOFF_OPTIONS, 'retryBackoff');
    this.initial = nonNegativeInt(o.initial, DEFAULT_RETRY_BACKOFF_INITIAL, 'retryBackoff.initial');
    this.max = Math.max(this.initial, nonNegativeInt(o.max, DEFAULT_RETRY_BACKOFF_MAX, 'retryBackoff.max'));
    const m = o.multiplier === undefined ? DEFAULT_RETRY_BACKOFF_MULTIPLIER : toNumber(o.multiplier);
    if (!(m >= 1)) throw new InvalidOptionError('retryBackoff.multiplier', `expected a number >= 1, got ${String(o.multiplier)}`);
    this.multiplier = m;
  }

  /** ms to wait before retry number `retry` (1 for the first). */
  delay(retry: number): number {
    const base = Math.min(this.max, this.initial * this.multiplier ** Math.max(0, retry - 1));
    return Math.floor(this.random() * base);
  }
}

function ratioOption(value: unknown): number {
  if (value === undefined) return DEFAULT_RETRY_RATIO;
  const r = toNumber(value);
  if (!(r >= 0 && r <= 1)) throw new InvalidOptionError('retryBudget.ratio', `expected a number from 0 to 1, got ${String(value)}`);
  return r;
}
