import type net from 'node:net';
import { type Address, formatAddress, parseAddress } from '../transport/address.js';
import { listen } from '../transport/listen.js';
import { sleep } from '../core/clock.js';
import { Lifecycle } from '../core/lifecycle.js';
import { ClosedError } from '../errors.js';
import type { Dispatch } from './dispatch.js';
import { ServerConnection } from './server-connection.js';
import { type ConnectionHost, type ServerCounters, describeCounters, newCounters } from './server-counters.js';
import { type NormalizedRpcServerOptions, type RpcServerOptions, normalizeRpcServerOptions } from './server-options.js';

export type RpcServerState = 'idle' | 'listening' | 'closing' | 'closed';

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
  /** events still running whose connection is gone (a graceful close waits for them) */
  private orphanEvents = 0;
  private readonly host: ConnectionHost = {
    counters: this.counters,
    forget: (c) => this.forget(c),
    adoptEvent: () => void this.orphanEvents++,
    eventDone: () => {
      this.orphanEvents--;
      this.checkDrained();
    },
  };
  private server: net.Server | undefined;
  private bound: Address | undefined;
  private nextId = 1;

  constructor(dispatcher: Dispatch, options: RpcServerOptions = {}) {
    super('server', TRANSITIONS, 'idle');
    this.dispatcher = dispatcher;
    this.options = normalizeRpcServerOptions(options);
  }

  /** The bound address (port 0 resolved); undefined before `listen`. */
  get address(): Address | undefined {
    return this.bound;
  }
  /**
   * `inFlight`: handlers running now (dispatched, not settled); `queued`:
   * requests read past the cap, waiting; `streamBuffer`: bytes pushed
   * streams hold now; `ended`: requests the stream layer ended itself, by
   * reason, since the server started (cancel, deadline, handler timeout,
   * disconnect, overflow, shutdown), and requests it refused.
   */
  get stats(): {
    state: RpcServerState;
    connections: number;
    inFlight: number;
    queued: number;
    streamBuffer: number;
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
    return { state: this.state, connections: this.connections.size, inFlight, queued, streamBuffer, ended: describeCounters(this.counters) };
  }

  /** Starts listening; resolves with the bound address. */
  async listen(address = this.options.address): Promise<Address> {
    if (this.state !== 'idle') throw new ClosedError(`server is ${this.state}`);
    this.transition('listening');
    try {
      const listener = await listen(parseAddress(address), { tls: this.options.tls });
      this.server = listener.server;
      this.bound = listener.address;
      listener.server.on(listener.connectionEvent, (socket: net.Socket) => this.accept(socket));
      listener.server.on('tlsClientError', (err: Error) => this.options.logger.warn(`TLS handshake refused: ${err.message}`));
      listener.server.on('error', (err) => this.options.logger.error(`listener error: ${err.message}`));
      if ((this.state as RpcServerState) !== 'listening') listener.server.close();
      return listener.address;
    } catch (err) {
      this.terminate(undefined);
      throw err;
    }
  }

  private accept(socket: net.Socket): void {
    if (this.state !== 'listening') {
      socket.destroy();
      return;
    }
    const max = this.options.maxConnections;
    if (max > 0 && this.connections.size >= max) {
      this.options.logger.warn(`refusing connection from ${socket.remoteAddress ?? 'unix'}: maxConnections ${max} reached`);
      socket.destroy();
      return;
    }
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
    if (this.state === 'closing' && this.connections.size === 0 && this.orphanEvents === 0) this.emit('drained');
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
    this.server?.close();
    for (const c of this.connections) c.drain();
    if (this.connections.size === 0 && this.orphanEvents === 0) return;
    const wait = sleep(this.options.clock, this.options.closeWait);
    const drained = new Promise<void>((resolve) => this.once('drained', resolve));
    const timedOut = await Promise.race([drained.then(() => false), wait.promise.then(() => true)]);
    wait.cancel();
    if (!timedOut) return;
    this.options.logger.warn(`closeWait ${this.options.closeWait} ms elapsed: destroying ${this.connections.size} connection(s)`);
    await this.abortConnections();
  }

  /** Immediate close: every connection is destroyed; resolves once they are gone. Idempotent. */
  override destroy(): Promise<void> {
    if (this.state !== 'closed') {
      if (this.state !== 'closing') this.transition('closing');
      void this.abortConnections().then(() => this.terminate(undefined));
    }
    return this.whenClosed();
  }

  protected abort(): void {
    this.server?.close();
    for (const c of this.connections) c.destroy();
  }

  private abortConnections(): Promise<void> {
    this.server?.close();
    if (this.connections.size === 0) return Promise.resolve();
    const gone = new Promise<void>((resolve) => this.once('gone', resolve));
    for (const c of this.connections) c.destroy();
    return gone;
  }

  toString(): string {
    return `RpcServer(${this.bound ? formatAddress(this.bound) : 'unbound'})`;
  }
}
