// The client side of the stream layer: what users construct and catch.
export type { CallHandle, CallOptions, Caller, CreditOwner, ErrorMapper, ResponseHandler, StreamFlow } from './call.js';
export { DEFAULT_STREAM_WINDOW, StreamIterator, type StreamCallOptions, streamCall } from './stream-iterator.js';
export { type ServiceCallArgs, type ServiceCallOptions, type ServiceClient, type ServiceClientOptions, serviceClient } from './service-client.js';
export {
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_KEEPALIVE_TIMEOUT,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_MISSED_PINGS,
  DEFAULT_MAX_QUEUED,
  DEFAULT_PING_INTERVAL,
  DEFAULT_TIMEOUT,
  DEFAULT_TIMER_RESOLUTION,
  type ClientStreamOptions,
} from './client-options.js';
export { ClientStream, type ClientStreamState } from './client-stream.js';
export {
  ClientPool,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_POOL_CONNECTIONS,
  type ClientPoolOptions,
  type ConnectionFactory,
  type PoolState,
  type PoolStats,
} from './client-pool.js';
export {
  DEFAULT_FAILOVER_STRATEGY,
  DEFAULT_RESOLVE_INTERVAL,
  DEFAULT_RETRY_LIMIT,
  FailoverPool,
  dnsResolver,
  type FailoverPoolOptions,
  type FailoverStrategy,
  type IdempotentOption,
  type Resolver,
} from './failover-pool.js';
export type { RetryBackoffOptions, RetryBudgetOptions } from './retry-budget.js';
export type { OutlierEjectionOptions } from './outlier-ejection.js';
export { type BackoffOptions, BACKOFF_INITIAL_MS, BACKOFF_JITTER, BACKOFF_MAX_MS, BACKOFF_MULTIPLIER } from '../core/backoff.js';
export { type Clock, type TimerHandle, systemClock } from '../core/clock.js';
export { describeServer } from './describe-server.js';
