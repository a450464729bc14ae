import { ProtocolError } from '../errors.js';

/** Timed-out or cancelled seqs remembered so their late answers are told from duplicates. */
export const MAX_ABANDONED = 16_384;

/**
 * Seqs of sent calls we stopped waiting for (timeout, cancel), whose answers
 * may still come and are dropped; any other answer for a seq already settled
 * is a duplicate, a protocol violation. Bounded: the oldest are forgotten
 * first (a Set iterates in insertion order).
 */
export class AbandonedSeqs {
  private readonly seqs = new Set<number>();

  add(seq: number): void {
    if (this.seqs.size >= MAX_ABANDONED) this.seqs.delete(this.seqs.values().next().value!);
    this.seqs.add(seq);
  }
  has(seq: number): boolean {
    return this.seqs.has(seq);
  }
  delete(seq: number): void {
    this.seqs.delete(seq);
  }
  /**
   * An answer for `seq`, which no call awaits (`next`: the next seq to be
   * sent): dropped when the call was abandoned (forgotten unless more stream
   * items may follow); a ProtocolError thrown when it was never sent or is a
   * duplicate.
   */
  late(seq: number, next: number, final: boolean): void {
    if (seq === 0 || seq >= next) throw new ProtocolError(`response for seq ${seq} that was never sent`);
    if (!this.seqs.has(seq)) throw new ProtocolError(`duplicate response for seq ${seq}`);
    if (final) this.seqs.delete(seq);
  }
  get size(): number {
    return this.seqs.size;
  }
}
