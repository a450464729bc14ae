import { optionNames } from '../core/validate.js';
import type { RpcServerOptions } from './server-options.js';

/** RpcServer's option names, checked against RpcServerOptions by the compiler; others are refused by name. */
export const RPC_SERVER_OPTIONS = optionNames<RpcServerOptions>({
  address: true,
  tls: true,
  codec: true,
  maxFrameSize: true,
  maxRequestWeight: true,
  maxInFlightPerConnection: true,
  maxQueuedPerConnection: true,
  maxQueuedBytes: true,
  maxConnections: true,
  handshakeTimeout: true,
  maxPendingHandshakes: true,
  idleTimeout: true,
  highWaterMark: true,
  streamBufferBytes: true,
  readTimeout: true,
  writeTimeout: true,
  handlerTimeout: true,
  timerResolution: true,
  closeWait: true,
  drainGrace: true,
  streamCloseGrace: true,
  flushThreshold: true,
  extensions: true,
  logger: true,
  clock: true,
});
