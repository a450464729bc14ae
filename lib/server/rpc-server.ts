import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { type Address, formatAddress, parseAddress } from '../transport/address.js';
import { listen } from '../transport/listen.js';
import { ClosedError } from '../errors.js';
import type { Dispatch } from './dispatch.js';
import { ServerConnection } from './server-connection.js';
import { type NormalizedRpcServerOptions, type RpcServerOptions, normalizeRpcServerOptions } from './server-options.js';

export type RpcServerState = 'idle' | 'listening' | 'closing' | 'closed';

/**
 * Serves occams requests on TCP, TLS or a Unix socket, handing each to a
 * Dispatch. Events: 'connection' (ServerConnection), 'disconnect'
 * (ServerConnection), 'close'.
 */
export class RpcServer extends EventEmitter {
  readonly options: NormalizedRpcServerOptions;
  private readonly dispatcher: Dispatch;
  private readonly connections = new Set<ServerConnection>();
  private server: net.Server | undefined;
  private bound: Address | undefined;
  private nextId = 1;
  private _state: RpcServerState = 'idle';
  private closing: Promise<void> | undefined;

  constructor(dispatcher: Dispatch, options: RpcServerOptions = {}) {
    super();
    this.dispatcher = dispatcher;
    this.options = normalizeRpcServerOptions(options);
  }

  get state(): RpcServerState {
    return this._state;
  }
  /** The bound address (port 0 resolved); undefined before `listen`. */
  get address(): Address | undefined {
    return this.bound;
  }
  get stats(): { state: RpcServerState; connections: number; inFlight: number } {
    let inFlight = 0;
    for (const c of this.connections) inFlight += c.stats.inFlight;
    return { state: this._state, connections: this.connections.size, inFlight };
  }

  /** Starts listening; resolves with the bound address. */
  async listen(address = this.options.address): Promise<Address> {
    if (this._state !== 'idle') throw new ClosedError(`server is ${this._state}`);
    this._state = 'listening';
    try {
      const listener = await listen(parseAddress(address), { tls: this.options.tls });
      this.server = listener.server;
      this.bound = listener.address;
      listener.server.on(listener.connectionEvent, (socket: net.Socket) => this.accept(socket));
      listener.server.on('tlsClientError', (err: Error) => this.options.logger.warn(`TLS handshake refused: ${err.message}`));
      listener.server.on('error', (err) => this.options.logger.error(`listener error: ${err.message}`));
      if (this._state !== 'listening') listener.server.close();
      return listener.address;
    } catch (err) {
      this._state = 'closed';
      throw err;
    }
  }

  private accept(socket: net.Socket): void {
    if (this._state !== 'listening') {
      socket.destroy();
      return;
    }
    const max = this.options.maxConnections;
    if (max > 0 && this.connections.size >= max) {
      this.options.logger.warn(`refusing connection from ${socket.remoteAddress ?? 'unix'}: maxConnections ${max} reached`);
      socket.destroy();
      return;
    }
    const conn = new ServerConnection(this.nextId++, socket, this.dispatcher, this.options, (c) => this.forget(c));
    this.connections.add(conn);
    this.emit('connection', conn);
  }

  private forget(conn: ServerConnection): void {
    if (this.connections.delete(conn)) this.emit('disconnect', conn);
    if (this._state === 'closing' && this.connections.size === 0) this.finishClose();
  }

  /**
   * Graceful close: stop accepting, stop reading, send every response still
   * owed, then close; connections still busy after `closeWait` ms are
   * destroyed. Idempotent.
   */
  close(): Promise<void> {
    if (this._state === 'closed') return Promise.resolve();
    if (this.closing) return this.closing;
    this.closing = new Promise((resolve) => this.once('close', resolve));
    this._state = 'closing';
    this.server?.close();
    const wait = this.options.closeWait;
    const timer = setTimeout(() => {
      if (this.connections.size > 0) {
        this.options.logger.warn(`closeWait ${wait} ms elapsed: destroying ${this.connections.size} connection(s)`);
      }
      for (const c of this.connections) c.destroy();
    }, wait);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
    for (const c of this.connections) c.drain();
    if (this.connections.size === 0) this.finishClose();
    return this.closing;
  }

  /** Immediate close: every connection is destroyed. Idempotent. */
  destroy(): Promise<void> {
    if (this._state === 'closed') return Promise.resolve();
    const done = this.closing ?? new Promise<void>((resolve) => this.once('close', resolve));
    this.closing = done;
    this._state = 'closing';
    this.server?.close();
    for (const c of this.connections) c.destroy();
    if (this.connections.size === 0) this.finishClose();
    return done;
  }

  private finishClose(): void {
    if (this._state === 'closed') return;
    this._state = 'closed';
    this.emit('close');
  }

  toString(): string {
    return `RpcServer(${this.bound ? formatAddress(this.bound) : 'unbound'})`;
  }
}
