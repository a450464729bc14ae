import type { BackoffOptions } from '../core/backoff.js';
import { nonNegativeInt, optionNames } from '../core/validate.js';
import { InvalidOptionError } from '../errors.js';
import type { Address } from '../transport/address.js';
import { CLIENT_STREAM_OPTIONS, type ClientStreamOptions } from './client-options.js';
import type { ClientStream } from './client-stream.js';

export const DEFAULT_POOL_CONNECTIONS = 1;
/** How long a connection opened past `connections` may carry nothing before the pool closes it. */
export const DEFAULT_EXTRA_IDLE_TIMEOUT = 120_000;
/** @deprecated the old name of DEFAULT_EXTRA_IDLE_TIMEOUT (the pool's `idleTimeout` is now `extraIdleTimeout`) */
export const DEFAULT_IDLE_TIMEOUT = DEFAULT_EXTRA_IDLE_TIMEOUT;
/** process.emitWarning's code for a pool given its old `idleTimeout`. */
export const POOL_IDLE_TIMEOUT_WARNING = 'OCCAMS_POOL_IDLE_TIMEOUT';

/** 'suspect': connected, but every connection's pings went unanswered (see ClientStreamOptions.maxMissedPings). */
export type PoolState = 'idle' | 'connecting' | 'ready' | 'suspect' | 'unhealthy' | 'closing' | 'closed';

/** Opens one connection; injectable for tests. */
export type ConnectionFactory = (address: Address, options: ClientStreamOptions) => Promise<ClientStream>;

export interface ClientPoolOptions extends ClientStreamOptions {
  // ---- how many connections ----
  /** connections kept open; default 1 */
  connections?: number;
  /**
   * the most connections held open at once (README, "Names both sides
   * take"): the pool opens more than `connections`, up to this, when every
   * open one is at its window; past it calls wait in the pool's queue;
   * default = connections
   */
  maxConnections?: number;
  /**
   * ms a connection opened past `connections` (for a burst) may carry no
   * call before it is closed; 0 = never; default 120 000
   */
  extraIdleTimeout?: number;
  /**
   * @deprecated the old name of `extraIdleTimeout` (on servers,
   * `idleTimeout` closes any connection whose peer sent nothing); still
   * accepted, with a warning
   */
  idleTimeout?: number;
  // ---- reconnecting ----
  /** the waits between reconnect attempts; default 200 ms ×1.6 up to 5 s, ±20 % jitter */
  backoff?: BackoffOptions;
  // ---- tests ----
  /** opens one connection; injectable for tests; default ClientStream.connect */
  connectionFactory?: ConnectionFactory;
}

/** ClientPool's option names: the stream's (it passes them on) and its own. */
export const CLIENT_POOL_OPTIONS = optionNames<ClientPoolOptions>({
  ...CLIENT_STREAM_OPTIONS,
  connections: true,
  maxConnections: true,
  extraIdleTimeout: true,
  idleTimeout: true,
  backoff: true,
  connectionFactory: true,
});

export interface PoolStats {
  state: PoolState;
  connections: number;
  inFlight: number;
  queued: number;
  healthy: boolean;
}

let idleTimeoutWarned = false;

/** extraIdleTimeout, or its deprecated pool name `idleTimeout` (said once per process: FailoverPool makes a pool per address). */
export function extraIdleTimeout(o: Pick<ClientPoolOptions, 'extraIdleTimeout' | 'idleTimeout'>): number {
  if (o.idleTimeout === undefined) return nonNegativeInt(o.extraIdleTimeout, DEFAULT_EXTRA_IDLE_TIMEOUT, 'extraIdleTimeout');
  if (o.extraIdleTimeout !== undefined) throw new InvalidOptionError('idleTimeout', "is the pool's old name of extraIdleTimeout: give only extraIdleTimeout");
  if (!idleTimeoutWarned) {
    idleTimeoutWarned = true;
    process.emitWarning("ClientPool option idleTimeout is deprecated: it is now extraIdleTimeout (a server's idleTimeout closes any connection whose peer sent nothing)", {
      type: 'DeprecationWarning',
      code: POOL_IDLE_TIMEOUT_WARNING,
    });
  }
  return nonNegativeInt(o.idleTimeout, DEFAULT_EXTRA_IDLE_TIMEOUT, 'idleTimeout');
}
