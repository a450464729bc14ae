import { optionNames } from '../core/validate.js';
import type { RpcServerOptions } from './server-options.js';

/** RpcServer's option names, checked against RpcServerOptions by the compiler; others are refused by name. */
export const RPC_SERVER_OPTIONS = optionNames<RpcServerOptions>({
  address: true,
  tls: true,
  codec: true,
  maxFrameSize: true,
  maxInFlightPerConnection: true,
  maxConnections: true,
  highWaterMark: true,
  maxWriteBuffer: true,
  readTimeout: true,
  writeTimeout: true,
  closeWait: true,
  flushThreshold: true,
  extensions: true,
  logger: true,
  clock: true,
});
