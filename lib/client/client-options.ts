import type tls from 'node:tls';

import type { Codec } from '../codec/codec.js';
import { msgpackCodec } from '../codec/msgpack-codec.js';
import { type Clock, systemClock } from '../core/clock.js';
import { DEFAULT_FLUSH_THRESHOLD } from '../core/frame-writer.js';
import { flag, nonNegativeInt, optionNames, positiveInt, rejectUnknownKeys } from '../core/validate.js';
import { DEFAULT_MAX_FRAME_SIZE } from '../protocol/constants.js';

export const DEFAULT_MAX_IN_FLIGHT = 128;
export const DEFAULT_MAX_QUEUED = 4096;
export const DEFAULT_CLIENT_HIGH_WATER_MARK = 1024 * 1024;
export const DEFAULT_TIMEOUT = 20_000;
export const DEFAULT_TIMER_RESOLUTION = 1_000;
export const DEFAULT_PING_INTERVAL = 1_000;
export const DEFAULT_MAX_MISSED_PINGS = 3;
/** gRPC's keepalive timeout: how long a suspect connection (pings unanswered) is kept for the calls on it */
export const DEFAULT_KEEPALIVE_TIMEOUT = 20_000;
export const DEFAULT_CONNECT_TIMEOUT = 10_000;
export const DEFAULT_HANDSHAKE_TIMEOUT = 2_000;

/** Options of one client connection (ClientStream). */
export interface ClientStreamOptions {
  // ---- the window and a call's timeout ----
  /** requests outstanding at once on this connection (the sliding window); default 128 */
  maxInFlight?: number;
  /**
   * calls that may wait for a window slot (README, "Names both sides take";
   * a pool's queue, waiting for a connection with room, takes as many);
   * past it a call fails at once, unsent, with rpc_queue_full; default 4096
   */
  maxQueued?: number;
  /**
   * bytes written to the socket and not yet taken by it past which new
   * calls wait in the queue, as for a window slot, until it drains (their
   * timeouts running): a window of large values holds one buffer's worth
   * of encoded requests, not a window's worth (64 x 8 MiB, 512 MiB).
   * PINGs, CANCELs and events do not wait; default 1 MiB
   */
  highWaterMark?: number;
  /**
   * default per-request timeout in ms, sent (as the time left) to a server
   * that speaks the extensions as every call's deadline; default 20 000
   */
  timeout?: number;
  // ---- connecting, and how it speaks ----
  /** ms for the TCP (and TLS) connection; default 10 000 */
  connectTimeout?: number;
  /**
   * ms for the server to answer once connected (HELLO, or the first PING of
   * a plain v1 connection); a stopped process accepts connections but never
   * answers; default 2 000
   */
  handshakeTimeout?: number;
  /** TLS client options; when set the connection uses TLS */
  tls?: tls.ConnectionOptions;
  /** value codec; default msgpack */
  codec?: Codec;
  /** announce and use the nestjs-occams extensions; default true */
  extensions?: boolean;
  // ---- a server that stops answering ----
  /** ping when nothing was received for this long, ms; 0 disables; default 1 000 */
  pingInterval?: number;
  /**
   * unanswered ping intervals before the connection is *suspect*: it takes
   * no new calls (a pool sends them elsewhere or queues them), calls already
   * on it keep their own deadlines; it is closed once nothing is left on it,
   * healthy again as soon as anything arrives; default 3
   */
  maxMissedPings?: number;
  /**
   * ms of silence (pings unanswered) after which a suspect connection is
   * destroyed with the calls still on it (rpc_unreachable), as gRPC's
   * keepalive timeout; at or below pingInterval × maxMissedPings (0) there is
   * no suspect step: the connection dies at that bound; default 20 000
   */
  keepaliveTimeout?: number;
  // ---- rarely changed: limits, tuning, tests ----
  /** largest frame accepted from the server; default 16 MiB */
  maxFrameSize?: number;
  /**
   * the coarsest check of timeouts, ms. A call with a timeout of `t` ms
   * fails after `t` and within max(t / 10, 10 ms) of it, never more than
   * this late: the checks follow the shortest timeout in use, one timer per
   * connection and none per call; its TimeoutError names the timeout
   * (`echo timed out after 200 ms`). Default 1 000
   */
  timerResolution?: number;
  /** pending bytes that flush before the end of the tick; default 64 KiB (the tick's first 4 KiB, or less when this is lower, go out at once) */
  flushThreshold?: number;
  /** client id written in every request; default one random id per process */
  clientId?: number;
  /** time and timers, injectable for tests; default the system clock */
  clock?: Clock;
}

/** The names ClientStreamOptions has, checked against it by the compiler; constructors refuse any other key by name. */
export const CLIENT_STREAM_OPTIONS = optionNames<ClientStreamOptions>({
  maxInFlight: true,
  maxQueued: true,
  highWaterMark: true,
  timeout: true,
  connectTimeout: true,
  handshakeTimeout: true,
  tls: true,
  codec: true,
  extensions: true,
  pingInterval: true,
  maxMissedPings: true,
  keepaliveTimeout: true,
  maxFrameSize: true,
  timerResolution: true,
  flushThreshold: true,
  clientId: true,
  clock: true,
});

export type NormalizedClientStreamOptions = Required<Omit<ClientStreamOptions, 'tls'>> & Pick<ClientStreamOptions, 'tls'>;

/** One random 48-bit id per process: safe as a double, distinct enough. */
export const PROCESS_CLIENT_ID = Math.floor(Math.random() * 2 ** 48) + 1;

export function normalizeClientStreamOptions(o: ClientStreamOptions = {}): NormalizedClientStreamOptions {
  rejectUnknownKeys(o, CLIENT_STREAM_OPTIONS, 'ClientStream');
  return {
    maxInFlight: positiveInt(o.maxInFlight, DEFAULT_MAX_IN_FLIGHT, 'maxInFlight'),
    maxQueued: nonNegativeInt(o.maxQueued, DEFAULT_MAX_QUEUED, 'maxQueued'),
    highWaterMark: positiveInt(o.highWaterMark, DEFAULT_CLIENT_HIGH_WATER_MARK, 'highWaterMark'),
    timeout: positiveInt(o.timeout, DEFAULT_TIMEOUT, 'timeout'),
    timerResolution: positiveInt(o.timerResolution, DEFAULT_TIMER_RESOLUTION, 'timerResolution'),
    pingInterval: nonNegativeInt(o.pingInterval, DEFAULT_PING_INTERVAL, 'pingInterval'),
    maxMissedPings: positiveInt(o.maxMissedPings, DEFAULT_MAX_MISSED_PINGS, 'maxMissedPings'),
    keepaliveTimeout: nonNegativeInt(o.keepaliveTimeout, DEFAULT_KEEPALIVE_TIMEOUT, 'keepaliveTimeout'),
    maxFrameSize: positiveInt(o.maxFrameSize, DEFAULT_MAX_FRAME_SIZE, 'maxFrameSize'),
    flushThreshold: positiveInt(o.flushThreshold, DEFAULT_FLUSH_THRESHOLD, 'flushThreshold'),
    connectTimeout: nonNegativeInt(o.connectTimeout, DEFAULT_CONNECT_TIMEOUT, 'connectTimeout'),
    handshakeTimeout: positiveInt(o.handshakeTimeout, DEFAULT_HANDSHAKE_TIMEOUT, 'handshakeTimeout'),
    extensions: flag(o.extensions, true, 'extensions'),
    tls: o.tls,
    codec: o.codec ?? msgpackCodec,
    clientId: nonNegativeInt(o.clientId, PROCESS_CLIENT_ID, 'clientId'),
    clock: o.clock ?? systemClock,
  };
}
