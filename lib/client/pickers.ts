import type { ClientPool } from './client-pool.js';
import { PeakEwma } from './peak-ewma.js';

export type FailoverStrategy = 'first' | 'round-robin' | 'least-loaded';
export const FAILOVER_STRATEGIES: readonly FailoverStrategy[] = ['first', 'round-robin', 'least-loaded'];

/** Which pools a pick must pass over: those a call already failed on, those ejected as outliers. */
export interface PickFilter {
  tried: ReadonlySet<ClientPool> | undefined;
  /** true for a pool to pass over; undefined when none is */
  ejected: ((pool: ClientPool) => boolean) | undefined;
}

/**
 * Chooses the pool for one attempt, in the manner of gRPC's load balancers:
 * while any pool has a ready connection, only ready pools are picked;
 * pools still connecting, idle or suspect only when none is ready; pools
 * known to be down or draining never. Pools in the filter are skipped
 * while another candidate exists (the FailoverPool asks again without it).
 */
export interface Picker {
  pick(pools: readonly ClientPool[], filter: PickFilter): ClientPool | undefined;
  /** An attempt on `pool` that went out ended after `rtt` ms (load-aware pickers learn from it). */
  readonly observes: boolean;
  observe(pool: ClientPool, now: number, rtt: number): void;
  forget(pool: ClientPool): void;
}

function usable(p: ClientPool, f: PickFilter): boolean {
  return p.healthy && !(f.tried?.has(p) ?? false) && !(f.ejected?.(p) ?? false);
}

/** The first usable pool in list order (primary / standby). */
export class FirstPicker implements Picker {
  readonly observes = false;
  pick(pools: readonly ClientPool[], filter: PickFilter): ClientPool | undefined {
    let fallback: ClientPool | undefined;
    for (let i = 0; i < pools.length; i++) {
      const p = pools[i]!;
      if (!usable(p, filter)) continue;
      if (p.ready) return p;
      fallback ??= p;
    }
    return fallback;
  }
  observe(): void {}
  forget(): void {}
}

/**
 * Round robin passes over a ready pool holding more than this many times
 * the calls outstanding of the least loaded other ready pool...
 */
export const ROUND_ROBIN_SKIP_FACTOR = 2;
/** ...and at least this many more: equal servers' loads never differ so much, a stalled or slow one's soon do. */
export const ROUND_ROBIN_SKIP_MARGIN = 4;

/**
 * Usable pools in turn. As Envoy's round robin leaves out ejected hosts
 * and gRPC's leaves out subchannels that are not READY, it passes over
 * pools that are suspect (not ready) or ejected, and also a pool holding
 * far more calls outstanding than another ready one (more than
 * ROUND_ROBIN_SKIP_FACTOR × that one's + ROUND_ROBIN_SKIP_MARGIN): a slow,
 * stalled or blackholed server keeps the calls already on it, new ones go
 * on in turn among the others. Among healthy servers the loads stay close,
 * and the turn is plain round robin.
 */
export class RoundRobinPicker implements Picker {
  readonly observes = false;
  private next = 0;

  pick(pools: readonly ClientPool[], filter: PickFilter): ClientPool | undefined {
    const n = pools.length;
    // the least and second least load among ready pools, to tell "far more than another";
    // a pool at the least load is never passed over, so while one is ready, a ready one is picked
    let least = Infinity;
    let second = Infinity;
    let ready = 0;
    for (let i = 0; i < n; i++) {
      const p = pools[i]!;
      if (!p.ready || !usable(p, filter)) continue;
      ready++;
      const load = p.load;
      if (load < least) {
        second = least;
        least = load;
      } else if (load < second) second = load;
    }
    let fallback = -1;
    for (let i = 0; i < n; i++) {
      const at = (this.next + i) % n;
      const p = pools[at]!;
      if (!usable(p, filter)) continue;
      if (p.ready) {
        if (ready > 1) {
          const load = p.load;
          const others = load === least ? second : least;
          if (load > ROUND_ROBIN_SKIP_FACTOR * others + ROUND_ROBIN_SKIP_MARGIN) continue;
        }
        this.next = (at + 1) % n;
        return p;
      }
      if (fallback < 0) fallback = at;
    }
    if (fallback < 0) return undefined;
    this.next = (fallback + 1) % n;
    return pools[fallback];
  }
  observe(): void {}
  forget(): void {}
}

/**
 * Power of two choices over the ready pools, each weighed by its calls
 * outstanding times its peak-EWMA latency (Finagle's and Linkerd's
 * P2C + PeakEwma; Envoy's least-request): cost = (latency + 1 ms) ×
 * (outstanding + 1), the latency being the time since the last answer
 * when that is longer and calls are outstanding. A slow or stalled server gathers outstanding calls
 * (and a high latency) and stops being chosen; the costliest pool is never
 * chosen while another is ready, and any other pool is one of the two
 * candidates often enough that none starves.
 */
export class LeastLoadedPicker implements Picker {
  readonly observes = true;
  private readonly latency = new Map<ClientPool, PeakEwma>();

  constructor(
    private readonly random: () => number,
    private readonly now: () => number,
    private readonly decay?: number,
  ) {}

  pick(pools: readonly ClientPool[], filter: PickFilter): ClientPool | undefined {
    let ready = 0;
    let fallback: ClientPool | undefined;
    for (let i = 0; i < pools.length; i++) {
      const p = pools[i]!;
      if (!usable(p, filter)) continue;
      if (p.ready) ready++;
      else fallback ??= p;
    }
    if (ready === 0) return fallback;
    if (ready === 1) return this.nthReady(pools, filter, 0);
    const a = Math.floor(this.random() * ready) % ready;
    let b = Math.floor(this.random() * (ready - 1)) % (ready - 1);
    if (b >= a) b++;
    const pa = this.nthReady(pools, filter, a)!;
    const pb = this.nthReady(pools, filter, b)!;
    const now = this.now();
    return this.cost(pb, now) < this.cost(pa, now) ? pb : pa;
  }

  observe(pool: ClientPool, now: number, rtt: number): void {
    this.ewma(pool, now).observe(now, rtt);
  }

  forget(pool: ClientPool): void {
    this.latency.delete(pool);
  }

  /**
   * What choosing `pool` is expected to cost. A pool with calls
   * outstanding that has not answered for longer than its estimate is
   * weighed by that silence instead: a stalled server (a blocked event
   * loop, a blackhole) stops being chosen within milliseconds, with a few
   * calls on it rather than a share of every caller.
   */
  cost(pool: ClientPool, now: number): number {
    const e = this.ewma(pool, now);
    const load = pool.load;
    const latency = Math.max(e.value(now), load > 0 ? now - e.lastAnswer : 0);
    return (latency + 1) * (load + 1);
  }

  private ewma(pool: ClientPool, now: number): PeakEwma {
    let e = this.latency.get(pool);
    if (e === undefined) this.latency.set(pool, (e = new PeakEwma(now, this.decay)));
    return e;
  }

  private nthReady(pools: readonly ClientPool[], filter: PickFilter, n: number): ClientPool | undefined {
    for (let i = 0; i < pools.length; i++) {
      const p = pools[i]!;
      if (p.ready && usable(p, filter) && n-- === 0) return p;
    }
    return undefined;
  }
}

export function createPicker(strategy: FailoverStrategy, random: () => number, now: () => number): Picker {
  switch (strategy) {
    case 'first':
      return new FirstPicker();
    case 'round-robin':
      return new RoundRobinPicker();
    case 'least-loaded':
      return new LeastLoadedPicker(random, now);
  }
}
