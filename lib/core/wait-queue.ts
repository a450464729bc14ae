import { Fifo } from './fifo.js';

/** What a waiter records about itself: true while it waits in a queue. */
export interface Waiter {
  waiting: boolean;
}

/**
 * Callers waiting for room (a window slot, a connection), first come first
 * served, bounded by its owner. Removing a waiter is O(1): it is only marked,
 * and skipped when its turn comes.
 *
 *   fifo: [ live | removed | live | ... ]   length = live waiters only
 */
export class WaitQueue<T extends Waiter> {
  private readonly fifo = new Fifo<T>();
  private live = 0;
  /** removed waiters still in the fifo; compacted once they outnumber the live */
  private dead = 0;
  private readonly isWaiting = (w: T): boolean => w.waiting;

  constructor(readonly max: number) {}

  /** Waiters still waiting. */
  get length(): number {
    return this.live;
  }
  get full(): boolean {
    return this.live >= this.max;
  }

  push(w: T): void {
    w.waiting = true;
    this.fifo.push(w);
    this.live++;
  }

  /** Takes `w` out of the queue; false when it was not waiting. */
  remove(w: T): boolean {
    if (!w.waiting) return false;
    w.waiting = false;
    this.live--;
    if (++this.dead > 1024 && this.dead > this.live) {
      this.fifo.retain(this.isWaiting);
      this.dead = 0;
    }
    return true;
  }

  /** The next live waiter, taken out of the queue. */
  shift(): T | undefined {
    while (this.live > 0) {
      const w = this.fifo.shift()!;
      if (!w.waiting) {
        this.dead--;
        continue;
      }
      w.waiting = false;
      this.live--;
      return w;
    }
    return undefined;
  }

  /** Takes every live waiter out, in order. */
  drain(): T[] {
    const out: T[] = [];
    for (const w of this.fifo.drain()) {
      if (!w.waiting) continue;
      w.waiting = false;
      out.push(w);
    }
    this.live = 0;
    this.dead = 0;
    return out;
  }
}
