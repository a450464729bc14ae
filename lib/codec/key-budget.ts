/**
 * How many new property names one connection may make the server learn
 * (keys it had not seen, of record shapes, Codec.newKeys, or of plain maps,
 * Codec.keyCensus), as a token bucket
 * of `rate` keys a second holding at most one second's worth. Past it the
 * connection waits, not fails: its reading pauses until the keys it took
 * beyond the budget are paid for. A new name is cheap to send and dear to
 * keep: V8 interns it and builds hidden classes for it, garbage that the
 * whole process collects in pauses every connection waits for (500
 * pipelined messages of new shapes held other clients' p99 above 50 ms,
 * bench/results/hostile.md). A schema's names are learned once, so a
 * peer meets it only with objects whose keys are data (maps of ids), at
 * more new names a second than the budget.
 */
export class KeyBudget {
  private tokens: number;
  private at: number;

  constructor(
    private readonly rate: number,
    now: number,
  ) {
    this.tokens = rate;
    this.at = now;
  }

  /** `n` new keys were learned at `now`: ms reading must wait for the budget to cover them (0 when it does). */
  spend(n: number, now: number): number {
    this.refill(now);
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.rate;
  }

  /** Keys were taken beyond the budget and not yet paid for (as of the last `spend` or `debt`). */
  get owing(): boolean {
    return this.tokens < 0;
  }

  /** ms from `now` until the keys taken are paid for (0 when they are). */
  debt(now: number): number {
    if (this.tokens >= 0) return 0;
    this.refill(now);
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.rate;
  }

  private refill(now: number): void {
    const rate = this.rate;
    this.tokens = Math.min(rate, this.tokens + ((now - this.at) * rate) / 1000);
    this.at = now;
  }
}
