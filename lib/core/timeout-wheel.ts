import type { Clock, TimerHandle } from './clock.js';

/**
 * Deadlines kept in per-slot buckets (a slot is `resolution` ms, 1 s by
 * default), as occams does: no timer per entry, one coarse timer per wheel.
 * Each bucket is an intrusive doubly-linked list through the entries' own
 * fields, so adding and removing is O(1) with no allocation, and a tick
 * fails whole buckets at once.
 *
 *   slots: Map<slot, Bucket>   bucket.head ⇄ entry ⇄ entry ⇄ ...
 *
 * Accuracy: an entry is filed in slot ceil(deadline / resolution) and
 * expires at the first tick at or after that slot's boundary; ticks are
 * aligned to the boundaries. So an entry never expires before its deadline
 * and at most `resolution` (plus timer lateness) after it.
 *
 * The timer runs only while the wheel holds entries, and is re-armed from
 * its own tick, never from `add`, so the hot path touches no timer. Buckets
 * stay in the map until their slot expires, even when empty, and the last
 * bucket used is remembered: many entries filed in one slot touch no Map.
 */
export interface Timed {
  /** the bucket the entry is filed in; null when not in the wheel */
  timerBucket: Bucket | null;
  timerPrev: Timed | null;
  timerNext: Timed | null;
}

/** The intrusive fields of `Timed`, for classes that extend it. */
export class TimedEntry implements Timed {
  timerBucket: Bucket | null = null;
  timerPrev: Timed | null = null;
  timerNext: Timed | null = null;
}

export class Bucket {
  head: Timed | null = null;
  constructor(readonly slot: number) {}
}

export class TimeoutWheel<T extends Timed> {
  private readonly slots = new Map<number, Bucket>();
  private last: Bucket | undefined;
  private count = 0;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private readonly tickBound = (): void => this.tick();

  constructor(
    private readonly clock: Clock,
    readonly resolution: number,
    /** called for each expired entry, after it left the wheel */
    private readonly onExpired: (entry: T) => void,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Files `entry` to expire at `deadline` (epoch ms). */
  add(entry: T, deadline: number): void {
    const slot = Math.ceil(deadline / this.resolution);
    let bucket = this.last;
    if (bucket === undefined || bucket.slot !== slot) {
      bucket = this.slots.get(slot);
      if (bucket === undefined) {
        bucket = new Bucket(slot);
        this.slots.set(slot, bucket);
      }
      this.last = bucket;
    }
    const head = bucket.head;
    entry.timerBucket = bucket;
    entry.timerPrev = null;
    entry.timerNext = head;
    if (head !== null) head.timerPrev = entry;
    bucket.head = entry;
    this.count++;
    if (this.timer === undefined && !this.stopped) this.arm();
  }

  remove(entry: T): void {
    const bucket = entry.timerBucket;
    if (bucket === null) return;
    const prev = entry.timerPrev;
    const next = entry.timerNext;
    if (prev !== null) prev.timerNext = next;
    else bucket.head = next;
    if (next !== null) next.timerPrev = prev;
    entry.timerBucket = null;
    entry.timerPrev = entry.timerNext = null;
    this.count--;
  }

  /** Stops the timer for good (the owner closed); entries stay until removed. */
  stop(): void {
    this.stopped = true;
    this.clock.clear(this.timer);
    this.timer = undefined;
  }

  /** Removes and returns every entry whose slot boundary is at or before `now`. */
  takeExpired(now: number): T[] {
    const slot = Math.floor(now / this.resolution);
    const out: T[] = [];
    for (const [s, bucket] of this.slots) {
      if (s > slot) continue;
      this.slots.delete(s);
      if (this.last === bucket) this.last = undefined;
      for (let e: Timed | null = bucket.head; e !== null; ) {
        const next: Timed | null = e.timerNext;
        e.timerBucket = null;
        e.timerPrev = e.timerNext = null;
        this.count--;
        out.push(e as T);
        e = next;
      }
      bucket.head = null;
    }
    return out;
  }

  private arm(): void {
    const now = this.clock.now();
    const res = this.resolution;
    this.timer = this.clock.setTimeout(this.tickBound, (Math.floor(now / res) + 1) * res - now);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const expired = this.takeExpired(this.clock.now());
    for (let i = 0; i < expired.length; i++) this.onExpired(expired[i]!);
    if (this.count > 0 || this.slots.size > 0) {
      if (this.count === 0) this.slots.clear();
      else if (this.timer === undefined && !this.stopped) this.arm();
    }
  }
}
