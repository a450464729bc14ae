import type tls from 'node:tls';
import type { Codec } from '../codec/codec.js';
import { type Clock, systemClock } from '../core/clock.js';
import { msgpackCodec } from '../codec/msgpack-codec.js';
import { DEFAULT_MAX_FRAME_SIZE } from '../protocol/constants.js';
import type { AddressLike } from '../transport/address.js';
import { type RpcLogger, consoleLogger } from './logger.js';
import { DEFAULT_FLUSH_THRESHOLD } from '../core/frame-writer.js';
import { nonNegativeInt, positiveInt, rejectUnknownKeys } from '../core/validate.js';
import { RPC_SERVER_OPTIONS } from './option-names.js';

export const DEFAULT_SERVER_ADDRESS = '127.0.0.1:0';
export const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION = 1024;
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;
export const DEFAULT_MAX_WRITE_BUFFER = 64 * 1024 * 1024;
export const DEFAULT_CLOSE_WAIT = 90_000;
export const DEFAULT_READ_TIMEOUT = 5_000;
export const DEFAULT_WRITE_TIMEOUT = 30_000;

export interface RpcServerOptions {
  /** where to listen: `host:port` (port 0 = any free port), `unix:/path`, `{host, port}`, `{path}`; default 127.0.0.1:0 */
  address?: AddressLike;
  /** TLS server options; when set, connections are TLS (use requestCert + rejectUnauthorized for mutual TLS) */
  tls?: tls.TlsOptions;
  codec?: Codec;
  /** largest request frame accepted; a larger header closes that connection; default 16 MiB */
  maxFrameSize?: number;
  /** requests one connection may have in dispatch at once; past it reading pauses; default 1024 */
  maxInFlightPerConnection?: number;
  /** connections served at once; further ones are closed at once; 0 = no limit (default) */
  maxConnections?: number;
  /** write-buffer bytes past which reading pauses until drain; default 1 MiB */
  highWaterMark?: number;
  /** write-buffer bytes past which a peer that does not read is disconnected; default 64 MiB */
  maxWriteBuffer?: number;
  /** ms a connection may hold half a frame without sending more; 0 = no limit; default 5 000 */
  readTimeout?: number;
  /** ms a peer may leave our writes backed up (not reading) before it is disconnected; 0 = no limit; default 30 000 */
  writeTimeout?: number;
  /** how long `close()` waits for owed responses before destroying, ms; default 90 000 */
  closeWait?: number;
  flushThreshold?: number;
  /** answer HELLO and use the extensions with clients that ask; default true */
  extensions?: boolean;
  logger?: RpcLogger;
  /** time and timers, injectable for tests; default the system clock */
  clock?: Clock;
}

export type NormalizedRpcServerOptions = Required<Omit<RpcServerOptions, 'tls'>> & Pick<RpcServerOptions, 'tls'>;

export function normalizeRpcServerOptions(o: RpcServerOptions = {}): NormalizedRpcServerOptions {
  rejectUnknownKeys(o, RPC_SERVER_OPTIONS, 'RpcServer');
  return {
    address: o.address ?? DEFAULT_SERVER_ADDRESS,
    tls: o.tls,
    codec: o.codec ?? msgpackCodec,
    maxFrameSize: positiveInt(o.maxFrameSize, DEFAULT_MAX_FRAME_SIZE, 'maxFrameSize'),
    maxInFlightPerConnection: positiveInt(o.maxInFlightPerConnection, DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION, 'maxInFlightPerConnection'),
    maxConnections: nonNegativeInt(o.maxConnections, 0, 'maxConnections'),
    highWaterMark: positiveInt(o.highWaterMark, DEFAULT_HIGH_WATER_MARK, 'highWaterMark'),
    maxWriteBuffer: positiveInt(o.maxWriteBuffer, DEFAULT_MAX_WRITE_BUFFER, 'maxWriteBuffer'),
    readTimeout: nonNegativeInt(o.readTimeout, DEFAULT_READ_TIMEOUT, 'readTimeout'),
    writeTimeout: nonNegativeInt(o.writeTimeout, DEFAULT_WRITE_TIMEOUT, 'writeTimeout'),
    closeWait: nonNegativeInt(o.closeWait, DEFAULT_CLOSE_WAIT, 'closeWait'),
    flushThreshold: positiveInt(o.flushThreshold, DEFAULT_FLUSH_THRESHOLD, 'flushThreshold'),
    extensions: o.extensions ?? true,
    logger: o.logger ?? consoleLogger,
    clock: o.clock ?? systemClock,
  };
}
