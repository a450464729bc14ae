import type { Clock, TimerHandle } from './clock.js';

/**
 * Deadlines kept in buckets, as occams does: no timer per entry, one timer
 * per wheel. Each bucket is an intrusive doubly-linked list through the
 * entries' own fields, so adding and removing is O(1) with no allocation,
 * and a tick fails whole buckets at once.
 *
 *   slots: Map<at, Bucket>   bucket.head ⇄ entry ⇄ entry ⇄ ...
 *
 * Accuracy follows the entry: one with `t` ms left is filed in the bucket
 * that expires at its deadline rounded up to a granule of `t / 10` ms
 * (at least MIN_GRANULE, at most `resolution`), so it never expires before
 * its deadline and less than min(resolution, max(t / 10, MIN_GRANULE))
 * after it, plus timer lateness. A 200 ms timeout fails by 220 ms, a 20 s
 * one by 21 s (with the default 1 s resolution): the resolution follows
 * the shortest timeout in use.
 *
 * The one timer fires at the earliest bucket (an empty one is dropped, not
 * waited for) and is re-armed from its own tick; `add` arms it only when
 * it is idle or when the new bucket comes before it (a short timeout among
 * long ones: once per such bucket, never per entry in it). Buckets stay in
 * the map until their time passes, and the last bucket used is remembered:
 * many entries filed in one bucket touch no Map.
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
  /** when the bucket expires, epoch ms: a multiple of the granule its entries were filed with */
  constructor(readonly at: number) {}
}

/** The finest granule, ms: no timeout is checked more often than this. */
export const MIN_GRANULE = 10;
/** setTimeout's largest delay; a longer wait is taken in steps */
const MAX_TIMER_DELAY = 2_147_483_647;

/** The granule for an entry with `left` ms to go: a tenth of it, within [MIN_GRANULE, resolution]. */
export function granuleFor(left: number, resolution: number): number {
  const tenth = Math.floor(left / 10);
  return Math.min(resolution, tenth > MIN_GRANULE ? tenth : MIN_GRANULE);
}

export class TimeoutWheel<T extends Timed> {
  private readonly slots = new Map<number, Bucket>();
  private last: Bucket | undefined;
  private count = 0;
  private timer: TimerHandle | undefined;
  /** when `timer` fires, epoch ms (meaningful while it is set) */
  private timerAt = 0;
  /** the earliest bucket left with entries after `takeExpired`, epoch ms (Infinity: none) */
  private nextAt = Infinity;
  private stopped = false;
  private readonly tickBound = (): void => this.tick();

  constructor(
    private readonly clock: Clock,
    /** the coarsest granule, ms: a deadline is never checked later than this after it */
    readonly resolution: number,
    /** called for each expired entry, after it left the wheel */
    private readonly onExpired: (entry: T) => void,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Files `entry` to expire at `deadline` (epoch ms); `now`: the clock's time, when the caller just read it. */
  add(entry: T, deadline: number, now = this.clock.now()): void {
    const granule = granuleFor(deadline - now, this.resolution);
    const at = Math.ceil(deadline / granule) * granule;
    let bucket = this.last;
    if (bucket === undefined || bucket.at !== at) {
      bucket = this.slots.get(at);
      if (bucket === undefined) {
        bucket = new Bucket(at);
        this.slots.set(at, bucket);
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
    if (!this.stopped && (this.timer === undefined || at < this.timerAt)) this.arm(at, now);
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

  /**
   * Removes and returns every entry whose bucket time is at or before `now`;
   * drops the later buckets left empty, and notes the earliest one left.
   */
  takeExpired(now: number): T[] {
    const out: T[] = [];
    let nextAt = Infinity;
    for (const [at, bucket] of this.slots) {
      if (at > now) {
        if (bucket.head === null) {
          this.slots.delete(at);
          if (this.last === bucket) this.last = undefined;
        } else if (at < nextAt) {
          nextAt = at;
        }
        continue;
      }
      this.slots.delete(at);
      if (this.last === bucket) this.last = undefined;
      for (let e: Timed | null = bucket.head; e !== null;) {
        const next: Timed | null = e.timerNext;
        e.timerBucket = null;
        e.timerPrev = e.timerNext = null;
        this.count--;
        out.push(e as T);
        e = next;
      }
      bucket.head = null;
    }
    this.nextAt = nextAt;
    return out;
  }

  private arm(at: number, now: number): void {
    this.clock.clear(this.timer);
    const delay = Math.min(Math.max(0, at - now), MAX_TIMER_DELAY);
    this.timerAt = now + delay;
    this.timer = this.clock.setTimeout(this.tickBound, delay);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.clock.now();
    const expired = this.takeExpired(now);
    // armed before the callbacks: what they add compares against the next tick
    if (this.nextAt !== Infinity) this.arm(this.nextAt, now);
    for (let i = 0; i < expired.length; i++) this.onExpired(expired[i]!);
  }
}
