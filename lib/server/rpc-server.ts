import type net from 'node:net';
import type tls from 'node:tls';

import type { TimerHandle } from '../core/clock.js';
import { sleep } from '../core/clock.js';
import { Lifecycle } from '../core/lifecycle.js';
import { ClosedError, type OccamsError } from '../errors.js';
import { VERSION } from '../protocol/constants.js';
import { ALL_FEATURES, EXTENSIONS_VERSION, FEATURE_RECORDS } from '../protocol/extensions.js';
import { type Address, formatAddress, parseAddress } from '../transport/address.js';
import { listen } from '../transport/listen.js';
import { LIBRARY_VERSION } from '../version.js';
import type { Dispatch } from './dispatch.js';
import { peerOf, PendingHandshakes } from './pending-handshakes.js';
import { ReadTurns } from './read-turns.js';
import { isDescribable, type ServerDescription } from './reflection.js';
import { RefusalCode, RefusalLog } from './refusal-log.js';
import { type ConnectionHost, ServerConnection } from './server-connection.js';
import { describeCounters, newCounters, type ServerCounters } from './server-counters.js';
import { ServerLimiter } from './server-limiter.js';
import { type NormalizedRpcServerOptions, normalizeRpcServerOptions, type RpcServerOptions } from './server-options.js';

export type RpcServerState = 'idle' | 'listening' | 'closing' | 'closed';

/** A connection quiet this long (no request; pings do not count) gives back the write buffers a burst grew (on the idle sweep, so only while idleTimeout is on). */
export const TRIM_AFTER_IDLE = 1_000;

const TRANSITIONS = {
  idle: ['listening', 'closing', 'closed'],
  listening: ['closing', 'closed'],
  closing: ['closed'],
  closed: [],
} as const;

/**
 * Serves occams requests on TCP, TLS or a Unix socket, handing each to a
 * Dispatch. Events: 'connection' (ServerConnection), 'disconnect'
 * (ServerConnection), 'close'.
 */
export class RpcServer extends Lifecycle<'idle' | 'listening'> {
  readonly options: NormalizedRpcServerOptions;
  private readonly dispatcher: Dispatch;
  private readonly connections = new Set<ServerConnection>();
  private readonly counters: ServerCounters = newCounters();
  /** the server-wide concurrency limit (undefined when `concurrencyLimit` is false) */
  private readonly limiter: ServerLimiter | undefined;
  /** events still running whose connection is gone (a graceful close waits for them) */
  private orphanEvents = 0;
  private readonly host: ConnectionHost;
  private server: net.Server | undefined;
  private bound: Address | undefined;
  private nextId = 1;
  /** TLS connections accepted whose handshake is not done (they count against maxConnections) */
  private readonly handshakes: PendingHandshakes;
  private readonly refusals: RefusalLog;
  /** one coarse sweep for idle connections, while listening (never a timer per connection) */
  private idleSweep: TimerHandle | undefined;

  constructor(dispatcher: Dispatch, options: RpcServerOptions = {}) {
    super('server', TRANSITIONS, 'idle');
    this.dispatcher = dispatcher;
    this.options = normalizeRpcServerOptions(options);
    const o = this.options;
    this.limiter =
      o.concurrencyLimit === false
        ? undefined
        : new ServerLimiter(
            { limit: o.concurrencyLimit, minLimit: o.minConcurrencyLimit, maxLimit: o.maxConcurrencyLimit, maxQueueWait: o.maxQueueWait, maxQueued: o.maxQueued, clock: o.clock },
            { start: (req, now) => req.port.startWaiting(req, now), drop: (req) => req.port.dropWaiting(req) },
          );
    this.host = {
      counters: this.counters,
      limiter: this.limiter,
      turns: new ReadTurns(),
      forget: (c) => this.forget(c),
      adoptEvent: () => void this.orphanEvents++,
      eventDone: () => {
        this.orphanEvents--;
        this.checkDrained();
      },
      describe: () => (this.options.reflection ? this.describe() : undefined),
    };
    this.refusals = new RefusalLog(this.options.logger, this.options.clock);
    this.handshakes = new PendingHandshakes(this.options, this.refusals, () => this.checkDrained());
  }

  /**
   * What the server serves, as DESCRIBE answers it when `reflection` is on
   * (reflection.ts): the Dispatch's patterns, events and typed services
   * (when it can tell them), the features and the version.
   */
  describe(): ServerDescription {
    const d = isDescribable(this.dispatcher) ? this.dispatcher.describe() : {};
    const o = this.options;
    return {
      protocol: VERSION,
      extensions: o.extensions ? EXTENSIONS_VERSION : 0,
      features: o.extensions ? (o.codec.session === undefined ? ALL_FEATURES & ~FEATURE_RECORDS : ALL_FEATURES) : 0,
      server: 'nestjs-occams',
      version: LIBRARY_VERSION,
      patterns: d.patterns ?? [],
      events: d.events ?? [],
      services: d.services ?? [],
    };
  }

  /** The bound address (port 0 resolved); undefined before `listen`. */
  get address(): Address | undefined {
    return this.bound;
  }
  /**
   * `inFlight`: handlers running now (dispatched, not settled); `queued`:
   * requests read past a connection's cap, held on it; `streamBuffer`:
   * bytes pushed streams hold now; `limit`: the concurrency limit (its
   * algorithm, the limit now, handlers it counts, requests waiting for it,
   * the handlers' median latency and latency without queueing, ms), or
   * undefined when it is off; `ended`: requests the stream layer ended
   * itself, by reason, since the server started (cancel, deadline, handler
   * timeout, disconnect, overflow, shutdown), and requests it refused or
   * dropped unrun (`refused`: a connection's queue full or the server
   * closing; `overloaded`: past the concurrency limit and its queue, or
   * too late for its deadline; `expiredQueued`: taken out of a queue, its
   * deadline passed or maxQueueWait waited), and `keyPaced`: requests after
   * which a connection's reading waited for the new property names its
   * peer made the server learn (newKeyRate), and `satOut`: turns after
   * which a connection's reading sat out, having held the event loop past
   * READ_OVERSTAY_MS (8 ms) while other connections were reading.
   */
  get stats(): {
    state: RpcServerState;
    connections: number;
    /** TLS handshakes under way (they count against maxConnections too) */
    handshakes: number;
    inFlight: number;
    queued: number;
    streamBuffer: number;
    limit: ServerLimiter['stats'] | undefined;
    ended: ReturnType<typeof describeCounters>;
  } {
    let inFlight = 0;
    let queued = 0;
    let streamBuffer = 0;
    for (const c of this.connections) {
      const s = c.stats;
      inFlight += s.inFlight;
      queued += s.queued;
      streamBuffer += s.streamBuffer;
    }
    return {
      state: this.state,
      connections: this.connections.size,
      handshakes: this.handshakes.size,
      inFlight,
      queued,
      streamBuffer,
      limit: this.limiter?.stats,
      ended: describeCounters(this.counters),
    };
  }

  /** Starts listening; resolves with the bound address. */
  async listen(address = this.options.address): Promise<Address> {
    if (this.state !== 'idle') throw new ClosedError(`server is ${this.state}`);
    this.transition('listening');
    try {
      const listener = await listen(parseAddress(address), { tls: this.options.tls });
      this.server = listener.server;
      this.bound = listener.address;
      if (listener.connectionEvent === 'secureConnection') {
        listener.server.on('connection', (raw: net.Socket) => this.admitHandshake(raw));
        listener.server.on('secureConnection', (socket: tls.TLSSocket) => this.secured(socket));
        listener.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => this.handshakes.failed(err, socket));
      } else {
        listener.server.on('connection', (socket: net.Socket) => this.accept(socket));
      }
      listener.server.on('error', (err) => this.options.logger.error(`listener error: ${err.message}`));
      this.startIdleSweep();
      if ((this.state as RpcServerState) !== 'listening') listener.server.close();
      return listener.address;
    } catch (err) {
      this.terminate(undefined);
      throw err;
    }
  }

  /** Held connections, handshakes in progress included: what maxConnections bounds. */
  private get held(): number {
    return this.connections.size + this.handshakes.size;
  }

  /** False (and the socket destroyed, the refusal logged) when `socket` may not be held. */
  private admit(socket: net.Socket): boolean {
    if (this.state !== 'listening') {
      socket.destroy();
      return false;
    }
    const max = this.options.maxConnections;
    if (max > 0 && this.held >= max) {
      this.refusals.note(RefusalCode.MaxConnections, `refusing connection from ${peerOf(socket)}: maxConnections ${max} reached`);
      socket.destroy();
      return false;
    }
    return true;
  }

  private accept(socket: net.Socket): void {
    if (!this.admit(socket)) return;
    this.serve(socket);
  }

  // ---- TLS: counted and timed from accept, not from the handshake ----------

  /** A raw TCP connection to the TLS listener (its handshake starts now). */
  private admitHandshake(raw: net.Socket): void {
    if (this.admit(raw)) this.handshakes.start(raw);
  }

  private secured(socket: tls.TLSSocket): void {
    // the raw socket was counted at accept; its place passes to the connection
    if (!this.handshakes.finish(socket) || this.state !== 'listening') {
      socket.destroy();
      return;
    }
    this.serve(socket);
  }

  // ---- idle connections --------------------------------------------------

  private startIdleSweep(): void {
    const timeout = this.options.idleTimeout;
    if (timeout === 0 || this.idleSweep !== undefined) return;
    const every = Math.max(10, Math.min(1_000, Math.floor(timeout / 4)));
    this.idleSweep = this.options.clock.setInterval(() => this.sweepIdle(timeout), every);
  }

  private sweepIdle(timeout: number): void {
    if (this.state !== 'listening') return;
    const now = this.options.clock.now();
    for (const c of this.connections) {
      if (c.quietFor(now) >= TRIM_AFTER_IDLE) c.trim();
      const idle = c.idleFor(now);
      if (idle < timeout) continue;
      this.refusals.note(RefusalCode.IdleTimeout, `closing idle connection ${c.describe()}: nothing in flight and nothing received for ${idle} ms (idleTimeout ${timeout})`, 'log');
      c.drain();
    }
  }

  private stopListening(): void {
    this.server?.close();
    this.options.clock.clear(this.idleSweep);
    this.idleSweep = undefined;
    this.handshakes.destroyAll();
  }

  private serve(socket: net.Socket): void {
    const conn = new ServerConnection(this.nextId++, socket, this.dispatcher, this.options, this.host);
    this.connections.add(conn);
    this.emit('connection', conn);
  }

  private forget(conn: ServerConnection): void {
    if (this.connections.delete(conn)) this.emit('disconnect', conn);
    if (this.connections.size === 0) this.emit('gone');
    this.checkDrained();
  }

  /** Closing, and nothing is owed: no connection left, no event still running. */
  private checkDrained(): void {
    if (this.state === 'closing' && this.connections.size === 0 && this.handshakes.size === 0 && this.orphanEvents === 0) this.emit('drained');
  }

  /**
   * Graceful close (`close()`): stop accepting; every connection drains
   * (GOAWAY, keeps reading what its peer already sent, answers everything
   * owed, ends open streams after `streamCloseGrace`, see
   * ServerConnection.beginClose); resolves as soon as every connection is
   * gone, and after `closeWait` ms at most (connections still busy then
   * are destroyed, their handlers cancelled).
   */
  protected async beginClose(): Promise<void> {
    this.stopListening();
    for (const c of this.connections) c.drain();
    if (this.connections.size === 0 && this.orphanEvents === 0) return;
    const wait = sleep(this.options.clock, this.options.closeWait);
    const drained = new Promise<void>((resolve) => this.once('drained', resolve));
    const timedOut = await Promise.race([drained.then(() => false), wait.promise.then(() => true)]);
    wait.cancel();
    if (!timedOut) return;
    this.options.logger.warn(`closeWait ${this.options.closeWait} ms elapsed: destroying ${this.connections.size} connection(s)`);
    await this.abortConnections(new ClosedError(`closeWait ${this.options.closeWait} ms elapsed`));
  }

  /** Immediate close: every connection is destroyed; resolves once they are gone. Idempotent. */
  override destroy(): Promise<void> {
    if (this.state !== 'closed') {
      if (this.state !== 'closing') this.transition('closing');
      void this.abortConnections(new ClosedError('server destroyed')).then(() => this.terminate(undefined));
    }
    return this.whenClosed();
  }

  protected abort(err: OccamsError): void {
    this.stopListening();
    for (const c of this.connections) c.destroy(err);
  }

  private abortConnections(reason: OccamsError): Promise<void> {
    this.stopListening();
    if (this.connections.size === 0) return Promise.resolve();
    const gone = new Promise<void>((resolve) => this.once('gone', resolve));
    for (const c of this.connections) c.destroy(reason);
    return gone;
  }

  toString(): string {
    return `RpcServer(${this.bound ? formatAddress(this.bound) : 'unbound'})`;
  }
}
