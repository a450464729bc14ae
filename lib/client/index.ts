// The client side of the stream layer: what users construct and catch.
export type { CallHandle, CallOptions, Caller, CreditOwner, ErrorMapper, ResponseHandler, StreamFlow } from './call.js';
export { StreamIterator, type StreamCallOptions, streamCall } from './stream-iterator.js';
export { type ServiceCallArgs, type ServiceCallOptions, type ServiceClient, type ServiceClientOptions, serviceClient } from './service-client.js';
export {
  type ClientStreamOptions,
} from './client-options.js';
export { ClientStream, type ClientStreamState } from './client-stream.js';
export {
  ClientPool,
  type ClientPoolOptions,
  type ConnectionFactory,
  type PoolState,
  type PoolStats,
} from './client-pool.js';
export {
  FailoverPool,
  dnsResolver,
  type FailoverPoolOptions,
  type FailoverStrategy,
  type IdempotentOption,
  type Resolver,
} from './failover-pool.js';
export type { DnsOptions } from './dns-lookup.js';
export type { RetryBackoffOptions, RetryBudgetOptions } from './retry-budget.js';
export type { OutlierEjectionOptions } from './outlier-ejection.js';
export { type BackoffOptions } from '../core/backoff.js';
export { type Clock, type TimerHandle, systemClock } from '../core/clock.js';
export { describeServer } from './describe-server.js';
