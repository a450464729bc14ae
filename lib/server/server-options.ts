import type tls from 'node:tls';

import type { Codec } from '../codec/codec.js';
import { msgpackCodec } from '../codec/msgpack-codec.js';
import { NEW_KEY_RATE } from '../codec/record-shapes.js';
import { type Clock, systemClock } from '../core/clock.js';
import { DEFAULT_FLUSH_THRESHOLD } from '../core/frame-writer.js';
import { actionSet, flag, nonNegativeInt, optionNames, positiveInt, rejectUnknownKeys } from '../core/validate.js';
import { InvalidOptionError } from '../errors.js';
import type { AddressLike } from '../transport/address.js';
import { consoleLogger, type RpcLogger } from './logger.js';

export const DEFAULT_SERVER_ADDRESS = '127.0.0.1:0';
export const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION = 1024;
/**
 * Largest request frame a server reads by default: 4 MiB, as gRPC's
 * default receive limit. A request decodes in one go on the event loop;
 * at this size the costliest MessagePack (a map of small distinct keys)
 * takes about half a second on a 2-core machine (README, Security).
 */
export const DEFAULT_SERVER_MAX_FRAME_SIZE = 4 * 1024 * 1024;
/**
 * The most a request's value may weigh (msgpack-check.ts: 1 per value, more
 * per string, array, map and map entry): about 20-30 ms of decoding at most on
 * a 2-core machine, while 2,690 rows of 10 fields, or 250k numbers, fit.
 */
export const DEFAULT_MAX_REQUEST_WEIGHT = 250_000;
/**
 * New property names a second one connection may make the server learn
 * (keys of record shapes it had never seen) before its reading is paced:
 * one session's whole shape table (64 shapes of 256 keys) at once, and as
 * much again each second. A schema's names are learned once.
 */
export const DEFAULT_NEW_KEY_RATE = NEW_KEY_RATE;
export const DEFAULT_MAX_QUEUED_PER_CONNECTION = 4096;
export const DEFAULT_MAX_QUEUED_BYTES = 32 * 1024 * 1024;
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;
export const DEFAULT_STREAM_BUFFER = 1024 * 1024;
/** Fits a 30 s Kubernetes grace period with room to spare. */
export const DEFAULT_CLOSE_WAIT = 20_000;
export const DEFAULT_DRAIN_GRACE = 250;
export const DEFAULT_STREAM_CLOSE_GRACE = 1_000;
export const DEFAULT_READ_TIMEOUT = 5_000;
export const DEFAULT_WRITE_TIMEOUT = 30_000;
/** Comfortably above the clients' default timeout (20 s). */
export const DEFAULT_HANDLER_TIMEOUT = 30_000;
export const DEFAULT_SERVER_TIMER_RESOLUTION = 1_000;
/** A TLS peer that has not finished its handshake this long after accept is cut. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT = 5_000;
/** TLS handshakes under way at once; further connections are closed at accept. */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 128;
/** As Node's server.keepAliveTimeout family: minutes, not hours; clients that ping never reach it. */
export const DEFAULT_SERVER_IDLE_TIMEOUT = 5 * 60_000;
/** The concurrency limit learns with Envoy's gradient controller by default. */
export const DEFAULT_CONCURRENCY_LIMIT = 'gradient';
/** The lowest a learnt limit goes (Envoy's min_concurrency is 3). */
export const DEFAULT_MIN_CONCURRENCY_LIMIT = 4;
/** The highest a learnt limit goes (Envoy's and concurrency-limits' default). */
export const DEFAULT_MAX_CONCURRENCY_LIMIT = 1000;
/** Requests that may wait for the concurrency limit, server-wide. */
export const DEFAULT_SERVER_MAX_QUEUED = 1024;

export interface RpcServerOptions {
  // ---- where, and how it speaks ----
  /** where to listen: `host:port` (port 0 = any free port), `unix:/path`, `{host, port}`, `{path}`; default 127.0.0.1:0 */
  address?: AddressLike;
  /** TLS server options; when set, connections are TLS (use requestCert + rejectUnauthorized for mutual TLS) */
  tls?: tls.TlsOptions;
  codec?: Codec;
  /** answer HELLO and use the extensions with clients that ask; default true */
  extensions?: boolean;
  /**
   * answer the reserved DESCRIBE action with what the server serves (its
   * patterns, typed services, events, features and version: the CLI's
   * `list` and `describe`); default false (DESCRIBE is answered
   * `rpc_method_notfound`)
   */
  reflection?: boolean;
  // ---- what one connection may hold: requests, bytes, streams ----
  /** largest request frame read; a larger request is answered `rpc_frame_too_large` unread, alone; default 4 MiB (DEFAULT_SERVER_MAX_FRAME_SIZE) */
  maxFrameSize?: number;
  /**
   * the most a request's value (and its metadata) may weigh, which bounds
   * the time its decode holds the event loop: with the msgpack codec, 1 per
   * value, 1 more per string, 2 per array, 6 per map and 5 per map entry
   * (lib/codec/msgpack-check.ts); a heavier request is answered
   * `rpc_decode` without being decoded; 0 = no limit; default 250,000
   * (DEFAULT_MAX_REQUEST_WEIGHT); a custom codec may ignore it
   */
  maxRequestWeight?: number;
  /**
   * new property names a second one connection may make the server learn
   * (keys it had never seen, of record shapes or of plain maps, the latter
   * counted in one message of sixteen): a new name costs the whole process
   * garbage collection later, so past this budget (which holds one second's
   * worth) the connection's reading pauses until the names it took are paid
   * for; nothing fails.
   * 0 = no limit; default 16,384 (DEFAULT_NEW_KEY_RATE)
   */
  newKeyRate?: number;
  /**
   * requests one connection may have in dispatch at once (announced in HELLO,
   * so a nestjs-occams client's window never exceeds it); past it requests
   * wait in the connection's queue; default 1024
   */
  maxInFlightPerConnection?: number;
  /**
   * requests read past the in-flight cap (or while writes are backed up)
   * that wait to be dispatched; past it (or past `maxQueuedBytes`) a request
   * is refused at once with `rpc_unreachable` (retriable: it never ran);
   * default 4096
   */
  maxQueuedPerConnection?: number;
  /** bytes of msg + blob those waiting requests may hold; default 32 MiB */
  maxQueuedBytes?: number;
  /**
   * write-buffer bytes past which new requests wait (are not dispatched) and
   * streams stop producing until the socket drains; default 1 MiB
   */
  highWaterMark?: number;
  /**
   * encoded bytes one pushed stream (an Observable, `req.item()`) may queue
   * while it has no credit or the socket is backed up; past it that stream
   * alone fails with `rpc_stream_overflow`; default 1 MiB
   */
  streamBufferBytes?: number;
  // ---- connections: how many, how they start, when an idle one goes ----
  /**
   * the most connections held open at once (README, "Names both sides
   * take"), counted from accept (TLS: before the handshake, so handshakes in
   * progress count too); further ones are closed at accept; 0 = no limit
   * (default)
   */
  maxConnections?: number;
  /**
   * TLS only: ms from accept to a completed TLS handshake; a peer that is
   * slower (or sends nothing) is closed; default 5 000
   */
  tlsHandshakeTimeout?: number;
  /**
   * @deprecated the old name of `tlsHandshakeTimeout` (on clients,
   * `handshakeTimeout` is the wait for the HELLO answer); still accepted,
   * with a warning
   */
  handshakeTimeout?: number;
  /** TLS only: handshakes in progress at once; further connections are closed at accept; default 128 */
  maxPendingHandshakes?: number;
  /**
   * ms a connection may stay with nothing in flight and no frame received
   * before it is closed (gracefully); clients that ping (the default) are
   * never idle; 0 = never; default 300 000 (5 minutes). Server only: a
   * pool's bound on its extra connections is `extraIdleTimeout`
   */
  idleTimeout?: number;
  // ---- timeouts of a slow peer or handler ----
  /** ms a connection may hold half a frame without sending more; 0 = no limit; default 5 000 */
  readTimeout?: number;
  /** ms a peer may leave our writes backed up with nothing draining before it is disconnected; 0 = no limit; default 30 000 */
  writeTimeout?: number;
  /**
   * ms a handler may run without answering when the caller sent no deadline
   * (plain v1 peers, events: this library's clients send one with every
   * call); it is then cancelled and answered `rpc_timeout`. For a
   * stream the clock restarts with every item. 0 = no limit; default 30 000
   */
  handlerTimeout?: number;
  // ---- graceful close ----
  /** longest a graceful `close()` waits for owed responses before destroying, ms; default 20 000 */
  closeWait?: number;
  /**
   * graceful close, peers that cannot acknowledge GOAWAY (plain v1): reading
   * goes on until nothing arrived and nothing was owed for this long, ms;
   * default 250. A peer that keeps sending has its new requests refused
   * (`rpc_unreachable`, not run) from 4 x this on, and is let go at 8 x this
   */
  drainGrace?: number;
  /** graceful close: ms an open stream may go on before it ends with `rpc_going_away`; default 1 000 */
  streamCloseGrace?: number;
  // ---- the server-wide concurrency limit (docs/OVERLOAD.md) ----
  /**
   * the server-wide limit on handlers running at once (docs/OVERLOAD.md):
   * 'gradient' (default) learns it from handler latencies as Envoy's
   * adaptive concurrency does, 'aimd' by additive increase and
   * multiplicative decrease, a number fixes it, false (or 0) turns it off.
   * Past it requests wait in one server queue (maxQueued, maxQueueWait);
   * past that they are refused at once, unrun: `rpc_overloaded` (or
   * `rpc_unreachable` to peers that did not negotiate it). A handler counts
   * once it outlives the event-loop turn it started in; a stream stops
   * counting once it streams.
   */
  concurrencyLimit?: 'gradient' | 'aimd' | number | false;
  /** the lowest a learnt limit goes; default 4 */
  minConcurrencyLimit?: number;
  /** the highest a learnt limit goes; default 1000 */
  maxConcurrencyLimit?: number;
  /**
   * ms a request may wait for the concurrency limit: one whose expected
   * wait (its place in the queue x the handlers' median latency / the
   * limit) is longer is refused at once, one that waited longer is refused
   * when its turn comes; 0 = no queue. 'auto' (default), as Facebook's
   * controlled-delay queues: a burst may wait 4 x the median latency (at
   * least 20 ms) and is let drain whatever it waited; a queue that stands
   * (non-empty for 100 ms while the handlers' latency shows they queue
   * too) only 1 x the median latency (at least 5 ms). Whatever this says, a
   * request whose deadline would pass before it could start is refused at
   * once, and one whose deadline passed while it waited never starts
   */
  maxQueueWait?: number | 'auto';
  /**
   * requests that may wait for the concurrency limit, server-wide (README,
   * "Names both sides take"); past it a request is refused at once, unrun;
   * default 1024
   */
  maxQueued?: number;
  /**
   * actions the concurrency limit neither counts nor holds back: handlers
   * that wait by design (long polls, an Observable that waits for events);
   * a list of actions (Nest object patterns as their normalized JSON,
   * `{"cmd":"watch"}`) or a predicate
   */
  limitBypass?: readonly string[] | ((action: string) => boolean);
  // ---- rarely changed: tuning, logs, tests ----
  /**
   * the coarsest check of deadlines and handler timeouts, ms: a request
   * with `t` ms left is checked within max(t / 10, 10 ms), never later than
   * this after it (one timer per connection); default 1 000
   */
  timerResolution?: number;
  /** pending bytes that flush before the end of the tick; default 64 KiB (the tick's first 4 KiB, or less when this is lower, go out at once) */
  flushThreshold?: number;
  logger?: RpcLogger;
  /** time and timers, injectable for tests; default the system clock */
  clock?: Clock;
}

/** RpcServer's option names, checked against RpcServerOptions by the compiler; others are refused by name. */
export const RPC_SERVER_OPTIONS = optionNames<RpcServerOptions>({
  address: true,
  tls: true,
  codec: true,
  extensions: true,
  reflection: true,
  maxFrameSize: true,
  maxRequestWeight: true,
  newKeyRate: true,
  maxInFlightPerConnection: true,
  maxQueuedPerConnection: true,
  maxQueuedBytes: true,
  highWaterMark: true,
  streamBufferBytes: true,
  maxConnections: true,
  tlsHandshakeTimeout: true,
  handshakeTimeout: true,
  maxPendingHandshakes: true,
  idleTimeout: true,
  readTimeout: true,
  writeTimeout: true,
  handlerTimeout: true,
  closeWait: true,
  drainGrace: true,
  streamCloseGrace: true,
  concurrencyLimit: true,
  minConcurrencyLimit: true,
  maxConcurrencyLimit: true,
  maxQueueWait: true,
  maxQueued: true,
  limitBypass: true,
  timerResolution: true,
  flushThreshold: true,
  logger: true,
  clock: true,
});

export type NormalizedRpcServerOptions = Required<Omit<RpcServerOptions, 'tls' | 'limitBypass' | 'handshakeTimeout'>> &
  Pick<RpcServerOptions, 'tls'> & {
    /** undefined when no action bypasses the limit */
    limitBypass: ((action: string) => boolean) | undefined;
  };

/** concurrencyLimit: a name, a positive integer (as a string too), or false / 0 / 'false' (off). */
function concurrencyLimit(value: unknown): 'gradient' | 'aimd' | number | false {
  if (value === undefined) return DEFAULT_CONCURRENCY_LIMIT;
  if (value === 'gradient' || value === 'aimd') return value;
  if (value === false || value === 'false' || value === 0 || value === '0') return false;
  if (value === true || value === 'true') return DEFAULT_CONCURRENCY_LIMIT;
  return positiveInt(value, 0, 'concurrencyLimit');
}

/** maxQueueWait: ms (an integer >= 0) or 'auto'. */
function queueWait(value: unknown): number | 'auto' {
  return value === undefined || value === 'auto' ? 'auto' : nonNegativeInt(value, 0, 'maxQueueWait');
}

/** tlsHandshakeTimeout, or its deprecated name (said once per server, through its logger). */
function tlsHandshakeTimeout(o: RpcServerOptions): number {
  if (o.handshakeTimeout === undefined) return positiveInt(o.tlsHandshakeTimeout, DEFAULT_TLS_HANDSHAKE_TIMEOUT, 'tlsHandshakeTimeout');
  if (o.tlsHandshakeTimeout !== undefined) throw new InvalidOptionError('handshakeTimeout', 'is the old name of tlsHandshakeTimeout: give only tlsHandshakeTimeout');
  (o.logger ?? consoleLogger).warn("RpcServer option handshakeTimeout is deprecated: it is now tlsHandshakeTimeout (a client's handshakeTimeout is the wait for the HELLO answer)");
  return positiveInt(o.handshakeTimeout, DEFAULT_TLS_HANDSHAKE_TIMEOUT, 'handshakeTimeout');
}

export function normalizeRpcServerOptions(o: RpcServerOptions = {}): NormalizedRpcServerOptions {
  rejectUnknownKeys(o, RPC_SERVER_OPTIONS, 'RpcServer');
  const normalized: NormalizedRpcServerOptions = {
    address: o.address ?? DEFAULT_SERVER_ADDRESS,
    tls: o.tls,
    codec: o.codec ?? msgpackCodec,
    maxFrameSize: positiveInt(o.maxFrameSize, DEFAULT_SERVER_MAX_FRAME_SIZE, 'maxFrameSize'),
    maxRequestWeight: nonNegativeInt(o.maxRequestWeight, DEFAULT_MAX_REQUEST_WEIGHT, 'maxRequestWeight') || Infinity,
    newKeyRate: nonNegativeInt(o.newKeyRate, DEFAULT_NEW_KEY_RATE, 'newKeyRate') || Infinity,
    maxInFlightPerConnection: positiveInt(o.maxInFlightPerConnection, DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION, 'maxInFlightPerConnection'),
    maxQueuedPerConnection: nonNegativeInt(o.maxQueuedPerConnection, DEFAULT_MAX_QUEUED_PER_CONNECTION, 'maxQueuedPerConnection'),
    maxQueuedBytes: nonNegativeInt(o.maxQueuedBytes, DEFAULT_MAX_QUEUED_BYTES, 'maxQueuedBytes'),
    maxConnections: nonNegativeInt(o.maxConnections, 0, 'maxConnections'),
    tlsHandshakeTimeout: tlsHandshakeTimeout(o),
    maxPendingHandshakes: positiveInt(o.maxPendingHandshakes, DEFAULT_MAX_PENDING_HANDSHAKES, 'maxPendingHandshakes'),
    idleTimeout: nonNegativeInt(o.idleTimeout, DEFAULT_SERVER_IDLE_TIMEOUT, 'idleTimeout'),
    highWaterMark: positiveInt(o.highWaterMark, DEFAULT_HIGH_WATER_MARK, 'highWaterMark'),
    streamBufferBytes: positiveInt(o.streamBufferBytes, DEFAULT_STREAM_BUFFER, 'streamBufferBytes'),
    readTimeout: nonNegativeInt(o.readTimeout, DEFAULT_READ_TIMEOUT, 'readTimeout'),
    writeTimeout: nonNegativeInt(o.writeTimeout, DEFAULT_WRITE_TIMEOUT, 'writeTimeout'),
    handlerTimeout: nonNegativeInt(o.handlerTimeout, DEFAULT_HANDLER_TIMEOUT, 'handlerTimeout'),
    timerResolution: positiveInt(o.timerResolution, DEFAULT_SERVER_TIMER_RESOLUTION, 'timerResolution'),
    closeWait: nonNegativeInt(o.closeWait, DEFAULT_CLOSE_WAIT, 'closeWait'),
    drainGrace: positiveInt(o.drainGrace, DEFAULT_DRAIN_GRACE, 'drainGrace'),
    streamCloseGrace: nonNegativeInt(o.streamCloseGrace, DEFAULT_STREAM_CLOSE_GRACE, 'streamCloseGrace'),
    flushThreshold: positiveInt(o.flushThreshold, DEFAULT_FLUSH_THRESHOLD, 'flushThreshold'),
    concurrencyLimit: concurrencyLimit(o.concurrencyLimit),
    minConcurrencyLimit: positiveInt(o.minConcurrencyLimit, DEFAULT_MIN_CONCURRENCY_LIMIT, 'minConcurrencyLimit'),
    maxConcurrencyLimit: positiveInt(o.maxConcurrencyLimit, DEFAULT_MAX_CONCURRENCY_LIMIT, 'maxConcurrencyLimit'),
    maxQueueWait: queueWait(o.maxQueueWait),
    maxQueued: nonNegativeInt(o.maxQueued, DEFAULT_SERVER_MAX_QUEUED, 'maxQueued'),
    limitBypass: o.limitBypass === undefined ? undefined : actionSet(o.limitBypass, 'limitBypass', false),
    extensions: flag(o.extensions, true, 'extensions'),
    reflection: flag(o.reflection, false, 'reflection'),
    logger: o.logger ?? consoleLogger,
    clock: o.clock ?? systemClock,
  };
  if (normalized.minConcurrencyLimit > normalized.maxConcurrencyLimit) {
    throw new InvalidOptionError('minConcurrencyLimit', `${normalized.minConcurrencyLimit} is above maxConcurrencyLimit ${normalized.maxConcurrencyLimit}`);
  }
  return normalized;
}
