/**
 * The latency estimate of one server for load-aware picking: a peak-
 * sensitive exponentially weighted moving average of response times, as
 * Finagle's and Linkerd's PeakEwma. A sample above the estimate replaces
 * it at once (a server turning slow is noticed on its first slow answer);
 * lower samples pull it down with weight exp(-Δt / decay); reading it
 * decays it towards 0 too, so a server no longer picked (and so no longer
 * measured) is tried again after a few decay times.
 */

/** Finagle's and Linkerd's decay time, ms. */
export const DEFAULT_LATENCY_DECAY = 10_000;

export class PeakEwma {
  /** ms; the estimate as of `stamp` */
  private estimate = 0;
  /** clock ms of the last sample or read */
  private stamp: number;

  constructor(
    now: number,
    private readonly decay = DEFAULT_LATENCY_DECAY,
  ) {
    this.stamp = now;
    this.lastAnswer = now;
  }

  /** clock ms of the last answer */
  lastAnswer: number;

  /** The estimate now, in ms (decayed since the last sample). */
  value(now: number): number {
    return this.update(now, 0);
  }

  /** One response took `rtt` ms; returns the new estimate. */
  observe(now: number, rtt: number): number {
    this.lastAnswer = now;
    return this.update(now, rtt);
  }

  private update(now: number, rtt: number): number {
    const elapsed = now - this.stamp;
    this.stamp = now;
    if (rtt > this.estimate) return (this.estimate = rtt);
    const w = elapsed > 0 ? Math.exp(-elapsed / this.decay) : 1;
    return (this.estimate = this.estimate * w + rtt * (1 - w));
  }
}
