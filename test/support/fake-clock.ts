import type { Clock, TimerHandle } from '../../lib/core/clock.js';

interface FakeTimer {
  at: number;
  every: number;
  fn: () => void;
  id: number;
}

/** A Clock whose time moves only when the test says so. */
export class FakeClock implements Clock {
  private timers: FakeTimer[] = [];
  private nextId = 1;
  constructor(public time = 1_000_000) {}

  now = (): number => this.time;

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, 0);
  }
  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, ms);
  }
  clear(handle: TimerHandle | undefined): void {
    if (handle === undefined) return;
    this.timers = this.timers.filter((t) => t !== handle);
  }
  /** Timers waiting (intervals included). */
  get pending(): number {
    return this.timers.length;
  }
  /** Delays of the timeouts waiting, from now (for backoff assertions). */
  delays(): number[] {
    return this.timers.filter((t) => t.every === 0).map((t) => t.at - this.time);
  }

  /** Moves time forward by `ms`, running every timer due on the way, in order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.time = Math.max(this.time, due.at);
      if (due.every > 0) due.at += due.every;
      else this.timers = this.timers.filter((t) => t !== due);
      due.fn();
    }
    this.time = end;
  }

  /** Runs the next timeout or interval due, moving time to it; false when none. */
  runNext(): boolean {
    const due = [...this.timers].sort((a, b) => a.at - b.at || a.id - b.id)[0];
    if (due === undefined) return false;
    this.advance(due.at - this.time);
    return true;
  }

  private add(fn: () => void, ms: number, every: number): FakeTimer {
    const t = { at: this.time + Math.max(0, ms), every, fn, id: this.nextId++ };
    this.timers.push(t);
    return t;
  }
}
