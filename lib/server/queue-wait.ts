/**
 * maxQueueWait 'auto', after Facebook's controlled-delay server queues
 * ("Fail at Scale"). A queue that stayed non-empty for STANDING_QUEUE ms
 * while at least a limit's worth of handlers finished, the handlers' own
 * latency showing a queue (for a learnt limit), *stands*: arrivals outrun
 * the resource. It stays so for STANDING_MEMORY after it last stood or
 * refused for waiting (kept short, it empties now and then, and must not
 * pass for a burst again each time). Its requests may wait only
 * QUEUE_WAIT_LATENCIES x the handlers' median latency (at least
 * MIN_AUTO_QUEUE_WAIT): those that run are answered soon, the rest are
 * refused at once, or dropped when their turn comes past it. Any other
 * queue is a *burst*: it is admitted up to an expected wait of
 * BURST_QUEUE_LATENCIES x the median latency (at least
 * MIN_BURST_QUEUE_WAIT) and drains whatever its requests waited, until
 * their deadlines (an event loop that stalled, a GC pause, a CPU quota:
 * nothing finished, so nothing stands).
 */
export const STANDING_QUEUE = 100;
export const STANDING_MEMORY = 1_000;
export const QUEUE_WAIT_LATENCIES = 1;
export const MIN_AUTO_QUEUE_WAIT = 5;
export const BURST_QUEUE_LATENCIES = 4;
export const MIN_BURST_QUEUE_WAIT = 20;

/** What the policy reads of its limiter at a decision. */
export interface QueueView {
  /** requests waiting */
  readonly queued: number;
  /** the limit (what a round of handlers is) */
  readonly limit: number;
  /** median handler latency, ms; 0 until measured */
  readonly latency: number;
  /** the handlers show no queue of their own (their latency within the target): the limit, not the resource, holds requests back */
  readonly unqueuedHandlers: boolean;
}

/**
 * How long a request may wait for the concurrency limit: a fixed
 * maxQueueWait, or 'auto' (above). Decisions on times and figures handed
 * in; the limiter tells it when the queue fills, when a handler finishes
 * while requests wait, and when it refused or dropped one for waiting.
 */
export class QueueWait {
  /** clock time the queue last became non-empty */
  private busySince = 0;
  /** handlers finished since */
  private served = 0;
  /** held to the standing bound until then */
  private strictUntil = -Infinity;

  constructor(private readonly fixed: number | 'auto') {}

  /** The queue became non-empty at `now`. */
  filling(now: number): void {
    this.busySince = now;
    this.served = 0;
  }

  /** A handler finished while requests waited. */
  finished(): void {
    this.served++;
  }

  /** A request was refused or dropped for waiting: the queue is overloaded, hold it to the standing bound. */
  refused(now: number): void {
    this.strictUntil = now + STANDING_MEMORY;
  }

  /** The longest a request may be expected to wait at `now`, ms (Infinity until the latency is known). */
  bound(now: number, q: QueueView): number {
    if (this.fixed !== 'auto') return this.fixed;
    if (q.latency === 0) return Infinity;
    if (this.standing(now, q)) return Math.max(MIN_AUTO_QUEUE_WAIT, QUEUE_WAIT_LATENCIES * q.latency);
    return Math.max(MIN_BURST_QUEUE_WAIT, BURST_QUEUE_LATENCIES * q.latency);
  }

  /** What a request waited counts too (not only its expected wait): a fixed maxQueueWait, or a standing queue. */
  counts(now: number, q: QueueView): boolean {
    return this.fixed !== 'auto' || this.standing(now, q);
  }

  private standing(now: number, q: QueueView): boolean {
    if (now < this.strictUntil) return true;
    if (q.queued === 0 || now - this.busySince <= STANDING_QUEUE || this.served < q.limit || q.latency === 0 || q.unqueuedHandlers) return false;
    this.strictUntil = now + STANDING_MEMORY;
    return true;
  }
}
