import { appLimited, type LimitAlgorithm, type LimitWindow, targetLatency } from './limit-algorithm.js';

/** Bounds of one window's gradient: the limit at most halves or doubles per window. */
export const MIN_GRADIENT = 0.5;
export const MAX_GRADIENT = 2;

/**
 * The gradient controller of Envoy's adaptive concurrency filter (after
 * Netflix's concurrency-limits):
 *
 *   gradient = clamp(targetLatency(minLatency) / latency, 0.5, 2)
 *   next     = limit x gradient + sqrt(limit x gradient)
 *
 * The square root is the headroom that lets the limit probe upwards and
 * absorbs bursts. At a resource of C slots, each busy for minLatency,
 * it settles where latency is about 1.25 x minLatency plus the headroom's
 * queue: limit ~ 1.25 C + sqrt(1.25 C). A limit the window never came near
 * does not grow (see `appLimited`). Slow start (ours, as TCP's): while
 * requests wait and the latency is within the target (the handlers show no
 * queue: the limit, not the resource, holds them back), it doubles.
 */
export class GradientLimit implements LimitAlgorithm {
  readonly name = 'gradient';

  next(limit: number, window: LimitWindow): number {
    const raw = targetLatency(window.minLatency) / Math.max(window.latency, 1);
    const gradient = raw >= 1 && window.queued > 0 ? MAX_GRADIENT : Math.min(MAX_GRADIENT, Math.max(MIN_GRADIENT, raw));
    if (gradient >= 1 && appLimited(limit, window)) return limit;
    const scaled = limit * gradient;
    return Math.floor(scaled + Math.sqrt(scaled));
  }
}
