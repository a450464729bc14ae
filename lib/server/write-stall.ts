import type { Clock, TimerHandle } from '../core/clock.js';

/**
 * Watches a socket whose writes are backed up: fires `onStall` once the
 * peer has taken none of our bytes for `timeout` ms. Progress, not volume:
 * a peer that reads, however slowly, is never cut. Runs a coarse interval
 * only while started (writes backed up), never a timer per write.
 */
export class WriteStallWatch {
  private timer: TimerHandle | undefined;
  private taken = 0;
  private since = 0;
  private readonly checkBound = (): void => this.check();

  constructor(
    private readonly clock: Clock,
    /** ms without progress before `onStall`; 0 disables */
    private readonly timeout: number,
    /** bytes the peer has taken so far (monotonic) */
    private readonly progress: () => number,
    private readonly onStall: () => void,
  ) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timeout === 0 || this.timer !== undefined) return;
    this.taken = this.progress();
    this.since = this.clock.now();
    this.timer = this.clock.setInterval(this.checkBound, Math.max(10, Math.min(1_000, Math.floor(this.timeout / 4))));
  }

  stop(): void {
    this.clock.clear(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const taken = this.progress();
    const now = this.clock.now();
    if (taken > this.taken) {
      this.taken = taken;
      this.since = now;
    } else if (now - this.since >= this.timeout) {
      this.stop();
      this.onStall();
    }
  }
}
