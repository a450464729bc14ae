import { optionNames } from '../core/validate.js';
import type { ClientStreamOptions } from './client-options.js';
import type { ClientPoolOptions } from './client-pool.js';
import type { FailoverPoolOptions } from './failover-pool.js';
import type { ServiceClientOptions } from './service-client.js';

/**
 * The option names of each client component, checked against its options
 * interface by the compiler; constructors refuse any other key by name.
 * Each layer's table includes the layers below it, whose options it passes on.
 */
export const CLIENT_STREAM_OPTIONS = optionNames<ClientStreamOptions>({
  maxInFlight: true,
  maxQueued: true,
  timeout: true,
  timerResolution: true,
  pingInterval: true,
  maxMissedPings: true,
  keepaliveTimeout: true,
  maxFrameSize: true,
  flushThreshold: true,
  connectTimeout: true,
  handshakeTimeout: true,
  extensions: true,
  tls: true,
  codec: true,
  clientId: true,
  clock: true,
});

export const CLIENT_POOL_OPTIONS = optionNames<ClientPoolOptions>({
  ...CLIENT_STREAM_OPTIONS,
  connections: true,
  maxConnections: true,
  idleTimeout: true,
  backoff: true,
  connectionFactory: true,
});

export const FAILOVER_POOL_OPTIONS = optionNames<FailoverPoolOptions>({
  ...CLIENT_POOL_OPTIONS,
  strategy: true,
  retryLimit: true,
  retryBudget: true,
  retryBackoff: true,
  outlierEjection: true,
  random: true,
  idempotent: true,
  resolveInterval: true,
  resolver: true,
  dns: true,
  poolFactory: true,
});

export const SERVICE_CLIENT_OPTIONS = optionNames<ServiceClientOptions>({ codec: true });
