import { optionNames } from '../core/validate.js';
import type { Address } from '../transport/address.js';
import type { Resolver } from './address-resolver.js';
import type { ClientPool } from './client-pool.js';
import type { DnsOptions } from './dns-lookup.js';
import type { OutlierEjectionOptions } from './outlier-ejection.js';
import type { FailoverStrategy } from './pickers.js';
import { CLIENT_POOL_OPTIONS, type ClientPoolOptions } from './pool-options.js';
import type { RetryBackoffOptions, RetryBudgetOptions } from './retry-budget.js';
import type { IdempotentOption } from './retry-policy.js';

/** The strategy when none is given (see docs/RELIABILITY.md for the measurements behind it). */
export const DEFAULT_FAILOVER_STRATEGY: FailoverStrategy = 'least-loaded';

export interface FailoverPoolOptions extends ClientPoolOptions {
  // ---- picking a server, and retrying a call elsewhere ----
  /**
   * how a server is chosen among the ready ones: 'least-loaded' (the
   * default: power of two choices weighed by calls outstanding × peak-EWMA
   * latency), 'round-robin' (in turn, passing over a server holding more
   * than 2 × + 4 the calls outstanding of another), or 'first' in list
   * order (primary / standby);
   * docs/RELIABILITY.md has the measurements behind the default
   */
  strategy?: FailoverStrategy;
  /**
   * which calls may run twice (IdempotentOption: `true` / `false` for all /
   * none, a list of actions (Nest patterns for OccamsClient), or a
   * predicate); a call's own `idempotent`, then its method's definition,
   * come first (README, Retries); default none
   */
  idempotent?: IdempotentOption;
  /** retries of a call the server may have run (idempotent calls only); default 2 */
  retryLimit?: number;
  /** caps retries at a share of calls (Finagle's RetryBudget); false: no cap; default 20 % of calls + 10 per second, over 10 s */
  retryBudget?: RetryBudgetOptions | false;
  /** the jittered wait before each retry; default up to 50 ms, doubling, at most 1 s */
  retryBackoff?: RetryBackoffOptions;
  // ---- a server that fails or slows ----
  /** takes a server failing call after call, or much slower than the others, out of picking for a growing interval (Envoy); false: never; default 5 failures in a row or 3x the others' median latency (over 5 ms, in 2 sweeps 1 s apart), 30 s */
  outlierEjection?: OutlierEjectionOptions | false;
  // ---- finding the servers behind a name ----
  /**
   * re-resolve host names this often, ms; with `dns`, the longest wait (the
   * records' TTL may make it shorter); 0 = only at start and after a
   * connection fails; default 30 000
   */
  resolveInterval?: number;
  /** resolves host names to IPs; default `dns.lookup` (the system's resolver, /etc/hosts included); not with `dns` */
  resolver?: Resolver;
  /**
   * discovery through DNS servers: A/AAAA (or SRV) records, re-resolved on
   * their TTL and when a connection fails (see DnsOptions); `{}` asks the
   * system's DNS servers
   */
  dns?: DnsOptions;
  // ---- tests ----
  /** random source in [0, 1) for picking and retry jitter, injectable for tests; default Math.random */
  random?: () => number;
  /** builds the pool for one address; injectable for tests */
  poolFactory?: (address: Address, options: ClientPoolOptions) => ClientPool;
}

/** FailoverPool's option names: the pool's (it passes them on) and its own. */
export const FAILOVER_POOL_OPTIONS = optionNames<FailoverPoolOptions>({
  ...CLIENT_POOL_OPTIONS,
  strategy: true,
  idempotent: true,
  retryLimit: true,
  retryBudget: true,
  retryBackoff: true,
  outlierEjection: true,
  resolveInterval: true,
  resolver: true,
  dns: true,
  random: true,
  poolFactory: true,
});
