import type { ClientPool } from './client-pool.js';

export type FailoverStrategy = 'first' | 'round-robin';

/**
 * Chooses the pool for one attempt, in the manner of gRPC's load balancers:
 * while any pool has a ready connection, only ready pools are picked;
 * pools still connecting (or idle) only when none is ready; pools known to
 * be down or draining never. `tried` holds pools this call already failed
 * on; they are skipped while another candidate exists.
 */
export interface Picker {
  pick(pools: readonly ClientPool[], tried: ReadonlySet<ClientPool> | undefined): ClientPool | undefined;
}

/** The first usable pool in list order (primary / standby). */
export class FirstPicker implements Picker {
  pick(pools: readonly ClientPool[], tried: ReadonlySet<ClientPool> | undefined): ClientPool | undefined {
    let fallback: ClientPool | undefined;
    for (let i = 0; i < pools.length; i++) {
      const p = pools[i]!;
      if (tried?.has(p) || !p.healthy) continue;
      if (p.ready) return p;
      fallback ??= p;
    }
    return fallback;
  }
}

/** Usable pools in turn. */
export class RoundRobinPicker implements Picker {
  private next = 0;

  pick(pools: readonly ClientPool[], tried: ReadonlySet<ClientPool> | undefined): ClientPool | undefined {
    const n = pools.length;
    let fallback = -1;
    for (let i = 0; i < n; i++) {
      const at = (this.next + i) % n;
      const p = pools[at]!;
      if (tried?.has(p) || !p.healthy) continue;
      if (p.ready) {
        this.next = (at + 1) % n;
        return p;
      }
      if (fallback < 0) fallback = at;
    }
    if (fallback < 0) return undefined;
    this.next = (fallback + 1) % n;
    return pools[fallback];
  }
}

export function createPicker(strategy: FailoverStrategy): Picker {
  return strategy === 'first' ? new FirstPicker() : new RoundRobinPicker();
}
