/**
 * Reconnect delays: exponential with jitter, reset on success (as grpc-js's
 * backoff-timeout.ts). The occams Rust crate retries every 1 s flat; we start
 * faster so a restarted server is found quickly, and back off so a dead one
 * is not hammered.
 */
import { optionNames, rejectUnknownKeys } from './validate.js';

export const BACKOFF_INITIAL_MS = 200;
export const BACKOFF_MULTIPLIER = 1.6;
export const BACKOFF_MAX_MS = 5_000;
/** each delay is scaled by a random factor in [1 - JITTER, 1 + JITTER] */
export const BACKOFF_JITTER = 0.2;

export interface BackoffOptions {
  initial?: number;
  multiplier?: number;
  max?: number;
  jitter?: number;
  /** random source in [0, 1), injectable for tests */
  random?: () => number;
}

const BACKOFF_OPTIONS = optionNames<BackoffOptions>({ initial: true, multiplier: true, max: true, jitter: true, random: true });

export class Backoff {
  private readonly initial: number;
  private readonly multiplier: number;
  private readonly max: number;
  private readonly jitter: number;
  private readonly random: () => number;
  /** un-jittered delay the next attempt will use */
  private base: number;

  constructor(o: BackoffOptions = {}) {
    rejectUnknownKeys(o, BACKOFF_OPTIONS, 'backoff');
    this.initial = o.initial ?? BACKOFF_INITIAL_MS;
    this.multiplier = o.multiplier ?? BACKOFF_MULTIPLIER;
    this.max = o.max ?? BACKOFF_MAX_MS;
    this.jitter = o.jitter ?? BACKOFF_JITTER;
    this.random = o.random ?? Math.random;
    this.base = this.initial;
  }

  /** The delay before the next attempt, then grows the base. */
  next(): number {
    const delay = this.base * (1 + this.jitter * (2 * this.random() - 1));
    this.base = Math.min(this.max, this.base * this.multiplier);
    return Math.round(delay);
  }

  reset(): void {
    this.base = this.initial;
  }
}
