// The client side of the stream layer: what users construct and catch.
export { type BackoffOptions } from '../core/backoff.js';
export { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
export type { Caller, CallHandle, CallOptions, CreditOwner, ErrorMapper, ResponseHandler, StreamFlow } from './call.js';
export { type ClientStreamOptions } from './client-options.js';
export { ClientPool, type ClientPoolOptions, type ConnectionFactory, type PoolState, type PoolStats } from './client-pool.js';
export { ClientStream, type ClientStreamState } from './client-stream.js';
export { describeServer } from './describe-server.js';
export type { DnsOptions } from './dns-lookup.js';
export { dnsResolver, FailoverPool, type FailoverPoolOptions, type FailoverStrategy, type IdempotentOption, type Resolver } from './failover-pool.js';
export type { OutlierEjectionOptions } from './outlier-ejection.js';
export type { RetryBackoffOptions, RetryBudgetOptions } from './retry-budget.js';
export { type ServiceCallArgs, type ServiceCallOptions, type ServiceClient, serviceClient, type ServiceClientOptions } from './service-client.js';
export { streamCall, type StreamCallOptions, StreamIterator } from './stream-iterator.js';
