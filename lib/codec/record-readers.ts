import type { Unpackr } from 'msgpackr';

/** What msgpackr keeps on a shape (its keys array): the function it reads that shape's records with. */
interface ShapeReader {
  read?: (() => unknown) & { count?: number };
}

/**
 * Keeps a session's records read by msgpackr's loop reader, never by the
 * object literal it generates per shape (issue 29, bench/results/reference-gc.md).
 *
 * msgpackr reads a record through `keys.read`: first a loop that fills `{}`
 * key by key, counting its calls in `read.count`; at the fourth object it
 * swaps in a generated `function(){return ({id:r(),name:r(),...})}`. V8
 * tracks every object literal by its allocation site, and a site whose
 * objects are found alive at a scavenge (a socket read of 1024 responses
 * decoded before any caller runs) while the young generation is at its
 * largest is marked "tenure": from then on every record of that shape is
 * born in the old generation and dies there, and its young values (strings,
 * arrays, nested records) are kept through each scavenge by a dead parent
 * until the next mark-compact. A client at small x1024 so marked spent 2-3x
 * the CPU per call, for good (the decision is never taken back). `{}` is not
 * tracked by site, so the loop reader's records are always born young.
 *
 * How: `read.count` set to NaN never passes msgpackr's threshold (`NaN++`
 * stays NaN). A shape whose reader msgpackr has not made yet (a shape
 * learned from a refused message), or already swapped (used four times in
 * the message that described it), is given a fresh loop reader first, by
 * decoding one record of it whose values are all nil. Should a msgpackr
 * release read records some other way, this changes nothing.
 */
export function keepLoopReader(unpackr: Unpackr, slot: number, keys: unknown): void {
  const shape = keys as ShapeReader & readonly unknown[];
  if (shape.read === undefined || typeof shape.read.count !== 'number') {
    shape.read = undefined;
    const record = new Uint8Array(1 + shape.length).fill(0xc0); // nil for every key
    record[0] = 0x40 | slot; // a record of this slot
    try {
      unpackr.unpack(record);
    } catch {
      return; // best effort: the shape is read as msgpackr reads it
    }
  }
  const read = shape.read;
  if (read !== undefined && typeof read.count === 'number') read.count = NaN;
}
