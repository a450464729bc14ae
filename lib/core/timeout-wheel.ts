/**
 * Per-slot buckets of timed entries (a slot is one tick, 1 s by default).
 * Each bucket is an intrusive doubly-linked list through the entries' own
 * fields, so adding and removing is O(1) with no allocation, and a tick
 * fails whole buckets at once. No timer per request.
 *
 *   slots: Map<slot, Bucket>   bucket.head ⇄ entry ⇄ entry ⇄ ...
 *
 * Buckets stay in the map until their slot expires, even when empty, and
 * the last bucket used is remembered: the common case (many calls filed in
 * the same second) touches no Map at all.
 */
export interface Timed {
  /** the bucket the entry is filed in; null when not in the wheel */
  timerBucket: Bucket | null;
  timerPrev: Timed | null;
  timerNext: Timed | null;
}

export class Bucket {
  head: Timed | null = null;
  constructor(readonly slot: number) {}
}

export class TimeoutWheel<T extends Timed> {
  private readonly slots = new Map<number, Bucket>();
  private last: Bucket | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(entry: T, slot: number): void {
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

  /** Removes and returns every entry filed at a slot <= `slot`. */
  takeExpired(slot: number): T[] {
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
}
