import type net from 'node:net';
import type tls from 'node:tls';
import type { TimerHandle } from '../core/clock.js';
import { type Address, formatAddress, parseAddress } from '../transport/address.js';
import { listen } from '../transport/listen.js';
import { sleep } from '../core/clock.js';
import { Lifecycle } from '../core/lifecycle.js';
import { ClosedError } from '../errors.js';
import { describeTlsError } from '../transport/dial.js';
import type { Dispatch } from './dispatch.js';
import { ServerConnection } from './server-connection.js';
import { type ConnectionHost, type ServerCounters, describeCounters, newCounters } from './server-counters.js';
import { RefusalCode, RefusalLog } from './refusal-log.js';
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
  /**
   * TLS connections accepted whose handshake is not done: raw socket ->
   * its handshake timer. They count against maxConnections with
   * `connections`; `handshaking` finds one by `remoteAddress:remotePort`
   * (the TLS socket's address is its raw socket's).
   */
  private readonly pending = new Map<net.Socket, TimerHandle>();
  private readonly handshaking = new Map<string, net.Socket>();
  private readonly refusals: RefusalLog;
  /** who a raw TLS socket is, for the log after it is gone */
  private readonly labels = new WeakMap<net.Socket, string>();
  /** one coarse sweep for idle connections, while listening (never a timer per connection) */
  private idleSweep: TimerHandle | undefined;

  constructor(dispatcher: Dispatch, options: RpcServerOptions = {}) {
    super('server', TRANSITIONS, 'idle');
    this.dispatcher = dispatcher;
    this.options = normalizeRpcServerOptions(options);
    this.refusals = new RefusalLog(this.options.logger, this.options.clock);
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
    /** TLS handshakes under way (they count against maxConnections too) */
    handshakes: number;
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
    return { state: this.state, connections: this.connections.size, handshakes: this.pending.size, inFlight, queued, streamBuffer, ended: describeCounters(this.counters) };
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
        listener.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => this.handshakeFailed(err, socket));
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
    return this.connections.size + this.pending.size;
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
    if (!this.admit(raw)) return;
    const limit = this.options.maxPendingHandshakes;
    if (this.pending.size >= limit) {
      this.refusals.note(RefusalCode.MaxPendingHandshakes, `refusing connection from ${peerOf(raw)}: ${limit} TLS handshakes already under way (maxPendingHandshakes)`);
      raw.destroy();
      return;
    }
    const timeout = this.options.handshakeTimeout;
    const timer = this.options.clock.setTimeout(() => {
      this.refusals.note(RefusalCode.HandshakeTimeout, `closing connection from ${peerOf(raw)}: TLS handshake not done within handshakeTimeout ${timeout} ms`);
      raw.destroy();
    }, timeout);
    const key = peerKey(raw);
    this.labels.set(raw, peerOf(raw));
    this.pending.set(raw, timer);
    if (key !== undefined) this.handshaking.set(key, raw);
    raw.once('close', () => this.handshakeOver(raw, key));
  }

  private handshakeOver(raw: net.Socket, key: string | undefined): boolean {
    const timer = this.pending.get(raw);
    if (timer === undefined) return false;
    this.options.clock.clear(timer);
    this.pending.delete(raw);
    if (key !== undefined && this.handshaking.get(key) === raw) this.handshaking.delete(key);
    if (this.state === 'closing') this.checkDrained();
    return true;
  }

  private secured(socket: tls.TLSSocket): void {
    const key = peerKey(socket);
    // Unix sockets have no peer address: Node's wrapper keeps its raw socket as `_parent`
    const raw = key !== undefined ? this.handshaking.get(key) : (socket as { _parent?: net.Socket })._parent;
    // the raw socket was counted at accept; its place passes to the connection
    if (raw === undefined || !this.handshakeOver(raw, key) || this.state !== 'listening') {
      socket.destroy();
      return;
    }
    this.serve(socket);
  }

  /**
   * A TLS peer refused: a failed handshake, or (TLS 1.3) a client
   * certificate found bad once the handshake was done, which Node reports
   * as a hang-up with `authorizationError` set.
   */
  private handshakeFailed(err: NodeJS.ErrnoException, socket: tls.TLSSocket): void {
    const verify = (socket as { authorizationError?: string | Error }).authorizationError;
    const verifyCode = typeof verify === 'string' ? verify : (verify as NodeJS.ErrnoException | undefined)?.code;
    const code = verifyCode ?? err.code ?? 'ERR_TLS';
    const why = verifyCode !== undefined ? `client certificate refused: ${certificateError(verifyCode)}` : describeTlsError(err);
    const raw = (socket as { _parent?: net.Socket })._parent;
    this.refusals.note(RefusalCode.HandshakeFailed, `TLS handshake refused from ${this.labels.get(raw ?? socket) ?? peerOf(socket)}: ${why} (${code})`, 'warn', code);
    socket.destroy();
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
    for (const raw of [...this.pending.keys()]) raw.destroy();
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
    if (this.state === 'closing' && this.connections.size === 0 && this.pending.size === 0 && this.orphanEvents === 0) this.emit('drained');
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
    this.stopListening();
    for (const c of this.connections) c.destroy();
  }

  private abortConnections(): Promise<void> {
    this.stopListening();
    if (this.connections.size === 0) return Promise.resolve();
    const gone = new Promise<void>((resolve) => this.once('gone', resolve));
    for (const c of this.connections) c.destroy();
    return gone;
  }

  toString(): string {
    return `RpcServer(${this.bound ? formatAddress(this.bound) : 'unbound'})`;
  }
}

function peerOf(socket: net.Socket): string {
  return socket.remoteAddress !== undefined ? `${socket.remoteAddress}:${socket.remotePort ?? ''}` : 'unix';
}

/** Identifies a TCP connection on this server (undefined for Unix sockets: TLS there is not counted by peer). */
function peerKey(socket: net.Socket): string | undefined {
  return socket.remoteAddress !== undefined && socket.remotePort !== undefined ? `${socket.remoteAddress}|${socket.remotePort}` : undefined;
}

/** OpenSSL's words for the certificate errors a client certificate meets (Node keeps only the code). */
const CERTIFICATE_ERRORS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  UNABLE_TO_GET_ISSUER_CERT: 'unable to get issuer certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  CERT_REVOKED: 'certificate revoked',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  INVALID_PURPOSE: 'unsupported certificate purpose',
};

function certificateError(code: string): string {
  return CERTIFICATE_ERRORS[code] ?? code;
}
