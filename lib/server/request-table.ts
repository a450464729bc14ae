import type { Clock } from '../core/clock.js';
import { Fifo } from '../core/fifo.js';
import { SeqTable } from '../core/seq-table.js';
import { TimeoutWheel } from '../core/timeout-wheel.js';
import type { ServerRequest } from './server-request.js';

/**
 * What one connection owes: every request read and not yet released, by
 * seq (running or held), and the timeout wheel of those with a time limit.
 *
 *   read ─► owned SeqTable<seq> ───────────────────────────── released: out
 *             │ dispatched, unsettled, time limit ─► fresh[] ──end of the turn (one setImmediate)──► wheel
 *             │ read past the cap ─► held Fifo (and the wheel at once)
 *
 * A request is owned from the moment it is read, so a second request with
 * the seq of one still owned is seen before it runs (`owns`), and nothing
 * runs that the table cannot cancel, time out or tear down. Filing in the
 * wheel waits for the end of the event-loop turn: most async handlers
 * (Nest's) settle within microtasks and never touch it.
 * Invariants: a request is in `owned` from `own` until `forget`; it is
 * `tracked` once filed for the wheel (in it iff it has a time limit and did
 * not expire); `heldCount` counts held requests not yet released (the Fifo
 * may also hold released ones, skipped when their turn comes).
 */
export class RequestTable {
  private owned: SeqTable<ServerRequest>;
  private fresh: ServerRequest[] = [];
  private fileScheduled = false;
  private readonly fileBound = (): void => this.fileFresh();
  private readonly wheel: TimeoutWheel<ServerRequest>;
  private readonly held = new Fifo<ServerRequest>();
  private readonly expected: number;
  heldCount = 0;
  heldBytes = 0;

  /** `expected`: requests usually owed at once (the in-flight cap). */
  constructor(clock: Clock, resolution: number, onExpired: (req: ServerRequest) => void, expected: number) {
    this.wheel = new TimeoutWheel(clock, resolution, onExpired);
    this.expected = expected;
    this.owned = new SeqTable(expected);
  }

  /** How many requests are owed (running or held). */
  get size(): number {
    return this.owned.size;
  }

  /** A request with this seq is still owed something. */
  owns(seq: number): boolean {
    return this.owned.get(seq) !== undefined;
  }

  /** A request just read (its seq not owned): owned until released. */
  own(req: ServerRequest): void {
    this.owned.add(req);
  }

  /** A request still running after its dispatch: filed in the wheel at the end of the turn. */
  running(req: ServerRequest): void {
    if (req.tracked || req.timeLimit <= 0) return;
    this.fresh.push(req);
    if (!this.fileScheduled) {
      this.fileScheduled = true;
      setImmediate(this.fileBound);
    }
  }

  /** A request read past the cap, waiting. */
  hold(req: ServerRequest, bytes: number): void {
    req.heldBytes = bytes;
    this.heldBytes += bytes;
    this.heldCount++;
    this.held.push(req);
    this.track(req);
  }

  /** The next held request still waiting, taken out of the queue. */
  nextHeld(): ServerRequest | undefined {
    while (this.heldCount > 0) {
      const req = this.held.shift()!;
      if (req.released) continue;
      this.heldCount--;
      this.heldBytes -= req.heldBytes;
      req.heldBytes = 0;
      return req;
    }
    this.held.drain(); // only released ones were left
    return undefined;
  }

  /** The request with this seq still owed something, if any. */
  lookup(seq: number): ServerRequest | undefined {
    return this.owned.get(seq);
  }

  /** Every request owed something, in seq order (for the rare paths: close, stats). */
  owed(): ServerRequest[] {
    return this.owned.values();
  }

  /** Files `req` to expire again at `until` (a stream that was active). */
  refile(req: ServerRequest, until: number): void {
    this.wheel.add(req, until);
  }

  /** `req` is released: out of every structure. */
  forget(req: ServerRequest): void {
    if (this.owned.get(req.seq) === req) this.owned.delete(req.seq);
    if (req.timerBucket !== null) this.wheel.remove(req);
    if (!req.dispatched && req.heldBytes !== 0) {
      // released while held: stays in the Fifo, skipped
      this.heldCount--;
      this.heldBytes -= req.heldBytes;
      req.heldBytes = 0;
      if (this.heldCount === 0) this.held.drain();
      else if (this.held.length > 1024 && this.held.length > 2 * this.heldCount) this.held.retain((r) => !r.released);
    }
  }

  /** The connection is gone: stops the wheel, forgets everything, returns what was owed. */
  clear(): ServerRequest[] {
    const owed = this.owed();
    this.wheel.stop();
    this.owned = new SeqTable(this.expected);
    this.fresh = [];
    for (const req of this.held.drain()) req.heldBytes = 0;
    this.heldCount = 0;
    this.heldBytes = 0;
    return owed;
  }

  private fileFresh(): void {
    this.fileScheduled = false;
    const fresh = this.fresh;
    this.fresh = [];
    for (let i = 0; i < fresh.length; i++) {
      const req = fresh[i]!;
      if (!req.released) this.track(req);
    }
  }

  private track(req: ServerRequest): void {
    if (req.tracked) return;
    req.tracked = true;
    if (req.timeLimit > 0) this.wheel.add(req, req.deadline ?? req.readAt + req.timeLimit);
  }
}
