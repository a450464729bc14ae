/**
 * When the peer of a draining connection is done sending (graceful close).
 * Pure decisions on times handed in; the connection asks on a coarse tick.
 *
 *   acknowledging peer (GOAWAY_ACK):  done once the ack (or its FIN) is read
 *   any other peer (plain v1):
 *     reading ──quiet for grace──────────────────────────────► done
 *        └── 4 x grace ──► refusing (new requests answered
 *                          rpc_unreachable, never run) ──quiet, or 8 x grace──► done
 *
 * "Quiet": nothing read and nothing owed. Streams still open `streamGrace`
 * after the close began are due to end.
 */
export class DrainPolicy {
  /** the peer sends nothing new: the connection may end once nothing is owed */
  peerDone = false;
  /** new requests are refused (answered at once, never run) */
  refusing = false;
  private draining = false;
  private acknowledges = false;
  private started = 0;
  private quietSince = 0;

  constructor(
    /** quiet period that tells a peer that cannot acknowledge is done, ms */
    private readonly grace: number,
    /** how long open streams may go on, ms */
    private readonly streamGrace: number,
  ) {}

  get active(): boolean {
    return this.draining;
  }

  /** The close begins; `acknowledges`: the peer will send GOAWAY_ACK. */
  begin(now: number, acknowledges: boolean): void {
    this.draining = true;
    this.acknowledges = acknowledges;
    this.started = now;
    this.quietSince = now;
  }

  /** Bytes arrived. */
  read(now: number): void {
    this.quietSince = now;
  }

  /** GOAWAY_ACK or the peer's FIN: nothing new will come. */
  acknowledged(): void {
    this.peerDone = true;
  }

  /** A tick while draining; `owed`: something is still running or held. Returns true when open streams are due to end. */
  tick(now: number, owed: boolean): boolean {
    if (!this.peerDone && !this.acknowledges) {
      if (owed) this.quietSince = now;
      const limit = 4 * this.grace;
      if (now - this.quietSince >= this.grace) this.peerDone = true;
      else if (!this.refusing && now - this.started >= limit) this.refusing = true;
      else if (this.refusing && now - this.started >= 2 * limit) this.peerDone = true;
    }
    return now - this.started >= this.streamGrace;
  }
}
