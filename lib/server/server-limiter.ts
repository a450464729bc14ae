import type { Clock } from '../core/clock.js';
import { serverLimit } from '../core/diagnostics.js';
import { Fifo } from '../core/fifo.js';
import { AimdLimit } from './aimd-limit.js';
import { GradientLimit } from './gradient-limit.js';
import { LatencySampler, Sampled } from './latency-sampler.js';
import { type LimitAlgorithm, targetLatency } from './limit-algorithm.js';
import { type QueueView, QueueWait } from './queue-wait.js';
import type { ServerRequest } from './server-request.js';

/** The limit a learning algorithm starts from (concurrency-limits' initialLimit), within the configured bounds. */
export const INITIAL_CONCURRENCY_LIMIT = 20;
/**
 * A probe holds the limit at this share of it (and at least
 * minConcurrencyLimit): well below what the resource takes once the limit
 * has settled (about 1.25 x its slots and the headroom), and below the
 * initial limit's share of a small resource, so the probe sees no queue;
 * while under light load (the limit then ~2 x what runs) it holds nothing back.
 */
export const PROBE_SHARE = 0.25;
/** Windows in a row at the floor after which minLatency is measured again (it may be stale and low). */
export const FLOOR_WINDOWS = 5;
/** Per turn, the share estimate decays by this when fewer of the turn's handlers outlived it. */
const SHARE_DECAY = 0.9;

/** Why a request was not let wait. */
export const enum Refusal {
  None,
  /** the queue holds maxQueued, or its wait would pass maxQueueWait */
  Limit,
  /** it could not start before its deadline */
  Deadline,
}

/** What the limiter asks of the connection a waiting request came from. */
export interface LimiterPort {
  /** its turn came: dispatch it */
  start(req: ServerRequest, now: number): void;
  /** it can no longer start in time (deadline passed, or it waited past maxQueueWait): answer it unrun, release it */
  drop(req: ServerRequest): void;
}

export interface LimiterSettings {
  /** 'gradient', 'aimd', or a static limit */
  limit: 'gradient' | 'aimd' | number;
  minLimit: number;
  maxLimit: number;
  /** ms, or 'auto' (QueueWait) */
  maxQueueWait: number | 'auto';
  maxQueued: number;
  clock: Clock;
}

/**
 * The server-wide concurrency limit: at most `limit` handlers run at once
 * across every connection; the rest wait in one FIFO, bounded by count and
 * by expected wait; a request that could not start before its deadline
 * never does.
 *
 *   connection (room on it) ─► room under the limit? ─yes─► started (counted until released)
 *                                  │ no
 *                                  ▼
 *        expected wait = position x latency / limit
 *        within maxQueueWait (a burst: 4 x latency; a standing queue: 1 x latency),
 *        before the deadline, < maxQueued? ─no─► refused at once (rpc_overloaded)
 *                                  │ yes
 *                                  ▼
 *        queue (FIFO) ─ a slot frees ─► deadline passed / (standing) waited too long? ─yes─► dropped (rpc_overloaded)
 *                                                   │ no
 *                                                   ▼ started
 *
 * What counts. In one event-loop turn a connection decodes and dispatches
 * a whole chunk of requests, and handlers that settle in microtasks (most
 * of Nest's) would all look in flight at once. So a handler counts fully
 * once it outlives the turn it started in (`parked`: it waits on something:
 * a database, a timer, another service); within its turn it counts for
 * `share`, the fraction of recent turns' handlers that outlived them. Fast
 * handlers (share ~ 0) are never held back, slow ones (share ~ 1) are
 * counted from their start; a server's first turn counts its handlers as
 * fast (share starts at 0: one turn's worth may overshoot the limit). A
 * stream leaves the count once it streams; `limitBypass` actions never count.
 *
 * Learning. Handlers that outlived their turn are sampled (start to
 * release, on the clock); LatencySampler gives medians per window and the
 * latency without queueing; the algorithm (GradientLimit, AimdLimit) moves
 * the limit once per window. Nothing on the hot path reads the clock: a
 * handler's start is its frame's read time (or the pump's), and its end is
 * read only for handlers that outlived their turn.
 *
 * Invariants: `running` = `parked` + `inTurn` = requests with `turn !== 0`;
 * `queued` = requests with `waiting` (the Fifo may also hold ones that left
 * it, skipped when their turn comes).
 */
export class ServerLimiter implements QueueView {
  readonly algorithm: string;
  /** handlers counted now */
  running = 0;
  /** requests waiting for a slot */
  queued = 0;
  /** what the algorithm set (or the static limit) */
  private learnt: number;
  /** what applies now: `limit`, or lower while a probe runs */
  private cap: number;
  /** counted handlers that outlived the turn they started in */
  private parked = 0;
  /** counted handlers started in this turn */
  private inTurn = 0;
  /** handlers started in this turn, released or not */
  private startedInTurn = 0;
  /** estimated share of a turn's handlers that will outlive it */
  private share = 0;
  private turn = 1;
  private turnOpen = false;
  /** most handlers parked at once in the current window */
  private peak = 0;
  private atFloor = 0;
  private pumping = false;
  private readonly wait: QueueWait;
  private readonly fifo = new Fifo<ServerRequest>();
  private readonly algo: LimitAlgorithm | undefined;
  private readonly sampler: LatencySampler;
  private readonly clock: Clock;
  private readonly endTurnBound = (): void => this.endTurn();

  constructor(
    private readonly settings: LimiterSettings,
    private readonly port: LimiterPort,
    random?: () => number,
  ) {
    const { limit, minLimit, maxLimit } = settings;
    this.clock = settings.clock;
    this.algo = limit === 'gradient' ? new GradientLimit() : limit === 'aimd' ? new AimdLimit() : undefined;
    this.algorithm = this.algo?.name ?? 'static';
    this.learnt = typeof limit === 'number' ? limit : Math.min(maxLimit, Math.max(minLimit, INITIAL_CONCURRENCY_LIMIT));
    this.sampler = new LatencySampler(this.algo !== undefined, random);
    this.wait = new QueueWait(settings.maxQueueWait);
    this.cap = this.learnt;
  }

  /** A request could start now: nobody waits, and the handlers counted are under the limit. */
  get room(): boolean {
    return this.queued === 0 && this.parked + this.share * this.inTurn < this.cap;
  }

  /** QueueView: the limit learnt (or set); a round of handlers. */
  get limit(): number {
    return this.learnt;
  }

  /** QueueView: median handler latency, ms. */
  get latency(): number {
    return this.sampler.latency;
  }

  /** QueueView: the handlers show no queue of their own (a learnt limit only: a static one knows no minLatency). */
  get unqueuedHandlers(): boolean {
    const s = this.sampler;
    return this.algo !== undefined && s.latency <= targetLatency(s.minLatency);
  }

  get stats(): { algorithm: string; limit: number; running: number; queued: number; latency: number; minLatency: number; probing: boolean } {
    const s = this.sampler;
    return { algorithm: this.algorithm, limit: this.cap, running: this.running, queued: this.queued, latency: s.latency, minLatency: s.minLatency, probing: s.probing };
  }

  /** `req` starts at `now` (its frame's read time, or the pump's clock). */
  started(req: ServerRequest, now: number): void {
    req.startedAt = now;
    req.turn = this.turn;
    this.running++;
    this.inTurn++;
    this.startedInTurn++;
    if (!this.turnOpen) {
      this.turnOpen = true;
      setImmediate(this.endTurnBound);
    }
  }

  /** `req` is released (or streams: `sample` false); a waiting request may start. */
  finished(req: ServerRequest, sample = true): void {
    const turn = req.turn;
    if (turn === 0) return;
    req.turn = 0;
    this.running--;
    if (turn === this.turn) this.inTurn--;
    else {
      this.parked--;
      if (sample) this.sample(req);
    }
    if (this.queued !== 0) {
      this.wait.finished();
      this.pump();
    }
  }

  /** No room: lets `req` wait (Refusal.None), or says why it may not. */
  offer(req: ServerRequest, now: number): Refusal {
    const queued = this.queued;
    const wait = this.wait.bound(now, this);
    const expected = ((queued + 1) * this.sampler.latency) / this.cap;
    // past the count, or the wait expected; or the oldest has waited past the bound: it drains slower than measured
    if (queued >= this.settings.maxQueued || expected > wait || wait === 0 || (queued !== 0 && this.wait.counts(now, this) && now - this.head()!.queuedAt > wait)) {
      this.wait.refused(now);
      return Refusal.Limit;
    }
    if (req.deadline !== undefined && now + expected >= req.deadline) return Refusal.Deadline;
    req.waiting = true;
    req.queuedAt = now;
    this.fifo.push(req);
    if (this.queued++ === 0) this.wait.filling(now);
    return Refusal.None;
  }

  /** `req` leaves the queue (to start, or released while waiting). */
  dequeue(req: ServerRequest): void {
    if (!req.waiting) return;
    req.waiting = false;
    if (--this.queued === 0) this.fifo.drain();
    else if (this.fifo.length > 1024 && this.fifo.length > 2 * this.queued) this.fifo.retain((r) => r.waiting);
  }

  /** Starts waiting requests while there is room; those that can no longer start in time are dropped. */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      let now = -1;
      while (this.queued !== 0 && this.parked + this.share * this.inTurn < this.cap) {
        const req = this.fifo.shift();
        if (req === undefined) break;
        if (!req.waiting) continue;
        if (now < 0) now = this.clock.now();
        if (req.deadline !== undefined && req.deadline <= now) {
          this.port.drop(req);
        } else if (this.wait.counts(now, this) && now - req.queuedAt > this.wait.bound(now, this)) {
          this.wait.refused(now);
          this.port.drop(req);
        } else {
          this.port.start(req, now);
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The oldest request still waiting (those that left are shifted off). */
  private head(): ServerRequest | undefined {
    for (;;) {
      const req = this.fifo.peek();
      if (req === undefined || req.waiting) return req;
      this.fifo.shift();
    }
  }

  /** The turn ended: handlers still running outlived it; the share estimate follows. */
  private endTurn(): void {
    this.turnOpen = false;
    const started = this.startedInTurn;
    const stayed = this.inTurn;
    this.startedInTurn = 0;
    this.inTurn = 0;
    this.parked += stayed;
    this.turn++;
    const ratio = started === 0 ? 0 : stayed / started;
    this.share = ratio >= this.share ? ratio : this.share * SHARE_DECAY;
    if (this.parked > this.peak) this.peak = this.parked;
    if (this.queued !== 0) this.pump();
  }

  private sample(req: ServerRequest): void {
    const now = this.clock.now();
    const s = this.sampler;
    if (s.probing && this.parked + this.inTurn <= this.cap) s.arm(now);
    const sampled = s.add(now, now - req.startedAt, req.startedAt);
    if (sampled === Sampled.Kept) return;
    const previous = this.cap;
    // the limit moves once a probe measured the latency without queueing (the first window's own median may be anything)
    if (sampled === Sampled.Window && this.algo !== undefined && s.probed) {
      const next = this.algo.next(this.learnt, { latency: s.latency, minLatency: s.minLatency, peak: this.peak, queued: this.queued });
      this.learnt = Math.min(this.settings.maxLimit, Math.max(this.settings.minLimit, next));
      this.atFloor = this.learnt === this.settings.minLimit ? this.atFloor + 1 : 0;
    }
    this.peak = this.parked;
    if (this.atFloor >= FLOOR_WINDOWS) {
      this.atFloor = 0;
      s.startProbe(now);
    } else if (s.due(now) && (this.queued !== 0 || s.latency > targetLatency(s.minLatency))) {
      // (while nothing waits and the latency is where it should be, the windows see an unqueued latency themselves: the probe waits for load)
      s.startProbe(now);
    }
    this.cap = s.probing ? this.probeCap() : this.learnt;
    if (this.cap !== previous) this.changed(previous);
  }

  private probeCap(): number {
    return Math.max(this.settings.minLimit, Math.ceil(this.learnt * PROBE_SHARE));
  }

  private changed(previous: number): void {
    if (serverLimit.hasSubscribers) serverLimit.publish({ ...this.stats, previous });
    if (this.cap > previous && this.queued !== 0) this.pump();
  }
}
