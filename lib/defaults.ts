// `nestjs-occams/defaults`: option defaults by name (the docs give each
// beside its option), and the reconnect backoff's constants.
// Not in the root: a user reads those options' docs, not these names.
export { DEFAULT_RESOLVE_INTERVAL } from './client/address-resolver.js';
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
} from './client/client-options.js';
export { DEFAULT_DNS_MIN_INTERVAL, DEFAULT_DNS_TIMEOUT, DEFAULT_DNS_TRIES } from './client/dns-lookup.js';
export { DEFAULT_FAILOVER_STRATEGY } from './client/failover-pool.js';
export { DEFAULT_IDLE_TIMEOUT, DEFAULT_POOL_CONNECTIONS } from './client/pool-options.js';
export { DEFAULT_RETRY_LIMIT } from './client/retry-policy.js';
export { DEFAULT_STREAM_WINDOW } from './client/stream-iterator.js';
export { BACKOFF_INITIAL_MS, BACKOFF_JITTER, BACKOFF_MAX_MS, BACKOFF_MULTIPLIER } from './core/backoff.js';
export { DEFAULT_OCCAMS_HOST, DEFAULT_OCCAMS_PORT } from './nest/defaults.js';
export {
  DEFAULT_CLOSE_WAIT,
  DEFAULT_CONCURRENCY_LIMIT,
  DEFAULT_DRAIN_GRACE,
  DEFAULT_HANDLER_TIMEOUT,
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_MAX_CONCURRENCY_LIMIT,
  DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_MAX_QUEUED_PER_CONNECTION,
  DEFAULT_MIN_CONCURRENCY_LIMIT,
  DEFAULT_READ_TIMEOUT,
  DEFAULT_SERVER_ADDRESS,
  DEFAULT_SERVER_IDLE_TIMEOUT,
  DEFAULT_SERVER_MAX_QUEUED,
  DEFAULT_SERVER_TIMER_RESOLUTION,
  DEFAULT_STREAM_BUFFER,
  DEFAULT_STREAM_CLOSE_GRACE,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT,
  DEFAULT_WRITE_TIMEOUT,
} from './server/server-options.js';
export { DEFAULT_TRACER_NAME } from './tracing/enable-tracing.js';
