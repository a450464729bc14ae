import { appLimited, type LimitAlgorithm, type LimitWindow, targetLatency } from './limit-algorithm.js';

/** The share of the limit kept after a window whose latency was past the target. */
export const AIMD_BACKOFF = 0.9;

/**
 * Additive increase, multiplicative decrease (concurrency-limits' AIMDLimit):
 * one more per window while the window's latency stays within
 * targetLatency(minLatency) and the limit is used; x 0.9 once it is past it.
 * Slower to find its level than the gradient, simpler to reason about.
 */
export class AimdLimit implements LimitAlgorithm {
  readonly name = 'aimd';

  next(limit: number, window: LimitWindow): number {
    if (window.latency > targetLatency(window.minLatency)) return Math.floor(limit * AIMD_BACKOFF);
    return appLimited(limit, window) ? limit : limit + 1;
  }
}
