/**
 * Which connections of a server read lately, and when: what a connection
 * that held the event loop past its turn (ConnectionFlow, READ_OVERSTAY_MS)
 * asks before it sits out. Sitting out is for the others: with nobody else
 * reading, it would only leave the loop idle (one connection carrying
 * 1 MiB values ran at 0.6x for it, bench/results/overstay.md).
 *
 * The last two distinct connections to read are kept: the latest reader
 * other than any given one is always one of them, so both questions cost
 * O(1) per turn, whatever the number of connections.
 */
export class ReadTurns {
  private last: object | undefined = undefined;
  private lastAt = 0;
  private prev: object | undefined = undefined;
  private prevAt = 0;
  /** turns begun by any connection, ever (a connection sitting out begins none) */
  turns = 0;

  /** `who` began a turn of reading at `now`. */
  began(who: object, now: number): void {
    this.turns++;
    if (who !== this.last) {
      this.prev = this.last;
      this.prevAt = this.lastAt;
      this.last = who;
    }
    this.lastAt = now;
  }

  /** Some connection other than `who` began a turn at or after `since`. */
  othersSince(who: object, since: number): boolean {
    return (this.last !== undefined && this.last !== who && this.lastAt >= since) || (this.prev !== undefined && this.prev !== who && this.prevAt >= since);
  }

  /** `who` is gone (nothing of it is held). */
  forget(who: object): void {
    if (this.prev === who) this.prev = undefined;
    if (this.last === who) {
      this.last = this.prev;
      this.lastAt = this.prevAt;
      this.prev = undefined;
    }
  }
}
