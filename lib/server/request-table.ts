import type { Clock } from '../core/clock.js';
import { Fifo } from '../core/fifo.js';
import { TimeoutWheel } from '../core/timeout-wheel.js';
import type { ServerRequest } from './server-request.js';

/**
 * What one connection owes: requests still running after their dispatch,
 * and requests held past the in-flight cap.
 *
 *   dispatched, unsettled ─► fresh[] ──end of the turn (one setImmediate)──► live Map<seq> + wheel
 *   read past the cap     ─► held Fifo (and live + wheel at once)
 *
 * Filing waits for the end of the event-loop turn: most async handlers
 * (Nest's) settle within microtasks and never touch the Map or the wheel.
 * Invariants: a request is `tracked` iff it is in `live`; it is in the
 * wheel iff tracked with a time limit and not expired; `heldCount` counts
 * held requests not yet released (the Fifo may also hold released ones,
 * skipped when their turn comes).
 */
export class RequestTable {
  private readonly live = new Map<number, ServerRequest>();
  private fresh: ServerRequest[] = [];
  private fileScheduled = false;
  private readonly fileBound = (): void => this.fileFresh();
  private readonly wheel: TimeoutWheel<ServerRequest>;
  private readonly held = new Fifo<ServerRequest>();
  heldCount = 0;
  heldBytes = 0;

  constructor(clock: Clock, resolution: number, onExpired: (req: ServerRequest) => void) {
    this.wheel = new TimeoutWheel(clock, resolution, onExpired);
  }

  /** A request still running after its dispatch: filed at the end of the turn. */
  running(req: ServerRequest): void {
    if (req.tracked) return;
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
    const req = this.live.get(seq);
    if (req !== undefined) return req;
    for (let i = this.fresh.length - 1; i >= 0; i--) {
      const r = this.fresh[i]!;
      if (r.seq === seq && !r.released) return r;
    }
    return undefined;
  }

  /** Every request owed something (for the rare paths: close, stats). */
  owed(): ServerRequest[] {
    const all = [...this.live.values()];
    for (const req of this.fresh) if (!req.released && !req.tracked) all.push(req);
    return all;
  }

  /** Files `req` to expire again at `until` (a stream that was active). */
  refile(req: ServerRequest, until: number): void {
    this.wheel.add(req, until);
  }

  /** `req` is released: out of every structure. */
  forget(req: ServerRequest): void {
    if (req.tracked) {
      if (req.timerBucket !== null) this.wheel.remove(req);
      if (this.live.get(req.seq) === req) this.live.delete(req.seq);
    }
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
    this.live.clear();
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
    this.live.set(req.seq, req);
    if (req.timeLimit > 0) this.wheel.add(req, req.deadline ?? req.readAt + req.timeLimit);
  }
}
