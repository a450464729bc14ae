/**
 * How a concurrency limit moves, one sampling window at a time. Pure: it is
 * handed the window's figures and the current limit, and gives the next
 * limit (ServerLimiter clamps it to [minConcurrencyLimit, maxConcurrencyLimit]).
 */
export interface LimitAlgorithm {
  /** its name in stats and diagnostics */
  readonly name: string;
  next(limit: number, window: LimitWindow): number;
}

/** What one sampling window saw. */
export interface LimitWindow {
  /** median latency of the handlers that finished in the window, ms */
  latency: number;
  /** the handlers' latency without queueing (the last probe's median), ms; > 0 */
  minLatency: number;
  /** most handlers counted by the limit at once during the window */
  peak: number;
  /** requests waiting for the limit as the window closed */
  queued: number;
}

/**
 * Share of `minLatency` tolerated on top of it before the limit shrinks
 * (Envoy's adaptive concurrency `buffer`, 25 %); at least
 * MIN_LATENCY_BUFFER_MS, as latencies are read from a millisecond clock.
 */
export const LATENCY_BUFFER = 0.25;
export const MIN_LATENCY_BUFFER_MS = 1;

/** The latency a window may show before the limit shrinks: `minLatency` and its buffer. */
export function targetLatency(minLatency: number): number {
  return minLatency + Math.max(minLatency * LATENCY_BUFFER, MIN_LATENCY_BUFFER_MS);
}

/**
 * The limit is used when the window's peak reached half of it: a limit that
 * was never approached says nothing about whether more would do, so it does
 * not grow (concurrency-limits' "app limited" rule).
 */
export function appLimited(limit: number, window: LimitWindow): boolean {
  return window.peak * 2 < limit;
}
