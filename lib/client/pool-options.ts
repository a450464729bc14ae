import type { BackoffOptions } from '../core/backoff.js';
import { optionNames } from '../core/validate.js';
import type { Address } from '../transport/address.js';
import { CLIENT_STREAM_OPTIONS, type ClientStreamOptions } from './client-options.js';
import type { ClientStream } from './client-stream.js';

export const DEFAULT_POOL_CONNECTIONS = 1;
export const DEFAULT_IDLE_TIMEOUT = 120_000;

/** 'suspect': connected, but every connection's pings went unanswered (see ClientStreamOptions.maxMissedPings). */
export type PoolState = 'idle' | 'connecting' | 'ready' | 'suspect' | 'unhealthy' | 'closing' | 'closed';

/** Opens one connection; injectable for tests. */
export type ConnectionFactory = (address: Address, options: ClientStreamOptions) => Promise<ClientStream>;

export interface ClientPoolOptions extends ClientStreamOptions {
  /** connections kept open; default 1 */
  connections?: number;
  /** connections opened when every open one is at its window; default = connections */
  maxConnections?: number;
  /** an extra connection (beyond `connections`) idle this long is closed, ms; default 120 000 */
  idleTimeout?: number;
  backoff?: BackoffOptions;
  connectionFactory?: ConnectionFactory;
}

/** ClientPool's option names: the stream's (it passes them on) and its own. */
export const CLIENT_POOL_OPTIONS = optionNames<ClientPoolOptions>({
  ...CLIENT_STREAM_OPTIONS,
  connections: true,
  maxConnections: true,
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
