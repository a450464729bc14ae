/**
 * Per-slot buckets of timed entries (a slot is one tick, 1 s by default).
 * Each bucket is an intrusive doubly-linked list through the entries' own
 * fields, so adding and removing is O(1) with no allocation, and a tick
 * fails whole buckets at once. No timer per request.
 *
 *   slots: Map<slot, head>   head ⇄ entry ⇄ entry ⇄ ...
 */
export interface Timed {
  /** slot the entry is filed under; -1 when not in the wheel */
  timerSlot: number;
  timerPrev: Timed | null;
  timerNext: Timed | null;
}

export class TimeoutWheel<T extends Timed> {
  private readonly slots = new Map<number, T>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(entry: T, slot: number): void {
    const head = this.slots.get(slot);
    entry.timerSlot = slot;
    entry.timerPrev = null;
    entry.timerNext = head ?? null;
    if (head !== undefined) head.timerPrev = entry;
    this.slots.set(slot, entry);
    this.count++;
  }

  remove(entry: T): void {
    const slot = entry.timerSlot;
    if (slot < 0) return;
    const prev = entry.timerPrev;
    const next = entry.timerNext;
    if (prev !== null) prev.timerNext = next;
    else if (next !== null) this.slots.set(slot, next as T);
    else this.slots.delete(slot);
    if (next !== null) next.timerPrev = prev;
    entry.timerSlot = -1;
    entry.timerPrev = entry.timerNext = null;
    this.count--;
  }

  /** Removes and returns, in one list, every entry filed at a slot <= `slot`. */
  takeExpired(slot: number): T[] {
    const out: T[] = [];
    for (const [s, head] of this.slots) {
      if (s > slot) continue;
      this.slots.delete(s);
      for (let e: Timed | null = head; e !== null; ) {
        const next: Timed | null = e.timerNext;
        e.timerSlot = -1;
        e.timerPrev = e.timerNext = null;
        this.count--;
        out.push(e as T);
        e = next;
      }
    }
    return out;
  }
}
