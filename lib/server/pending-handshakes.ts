import type net from 'node:net';
import type tls from 'node:tls';

import type { Clock, TimerHandle } from '../core/clock.js';
import { describeTlsError } from '../transport/dial.js';
import { RefusalCode, type RefusalLog } from './refusal-log.js';

/**
 * TLS connections accepted whose handshake is not done. Each is timed from
 * accept (`tlsHandshakeTimeout`, on the injected clock) and their number is
 * bounded (`maxPendingHandshakes`); the server counts them against
 * `maxConnections` with its connections.
 *
 *   raw socket accepted ─► start(): timer ─┬─► 'secureConnection': finish() ─► served
 *                                          ├─► 'tlsClientError': failed() (logged with its reason)
 *                                          └─► timer: closed [tls_handshake_timeout]
 *
 * Invariant: `pending` holds exactly the raw sockets accepted and neither
 * finished nor closed; `byPeer` finds them by `address|port` (the TLS
 * socket's address is its raw socket's).
 */
export class PendingHandshakes {
  private readonly pending = new Map<net.Socket, TimerHandle>();
  private readonly byPeer = new Map<string, net.Socket>();
  /** who a raw socket was, for the log line written after it is gone */
  private readonly labels = new WeakMap<net.Socket, string>();

  constructor(
    private readonly options: { clock: Clock; tlsHandshakeTimeout: number; maxPendingHandshakes: number },
    private readonly refusals: RefusalLog,
    /** one handshake is over (finished, failed or timed out) */
    private readonly onSettled: () => void,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** Times a new raw connection's handshake; false (it is closed) past maxPendingHandshakes. */
  start(raw: net.Socket): boolean {
    const limit = this.options.maxPendingHandshakes;
    if (this.pending.size >= limit) {
      this.refusals.note(RefusalCode.MaxPendingHandshakes, `refusing connection from ${peerOf(raw)}: ${limit} TLS handshakes already under way (maxPendingHandshakes)`);
      raw.destroy();
      return false;
    }
    const timeout = this.options.tlsHandshakeTimeout;
    const timer = this.options.clock.setTimeout(() => {
      this.refusals.note(RefusalCode.HandshakeTimeout, `closing connection from ${peerOf(raw)}: TLS handshake not done within tlsHandshakeTimeout ${timeout} ms`);
      raw.destroy();
    }, timeout);
    const key = peerKey(raw);
    this.labels.set(raw, peerOf(raw));
    this.pending.set(raw, timer);
    if (key !== undefined) this.byPeer.set(key, raw);
    raw.once('close', () => this.over(raw, key));
    return true;
  }

  /** The handshake of `socket` is done: true when it was pending (its place passes to the connection). */
  finish(socket: tls.TLSSocket): boolean {
    const key = peerKey(socket);
    // Unix sockets have no peer address: Node's wrapper keeps its raw socket as `_parent`
    const raw = key !== undefined ? this.byPeer.get(key) : (socket as { _parent?: net.Socket })._parent;
    return raw !== undefined && this.over(raw, key);
  }

  /**
   * A TLS peer refused: a failed handshake, or (TLS 1.3) a client
   * certificate found bad once the handshake was done, which Node reports
   * as a hang-up with `authorizationError` set.
   */
  failed(err: NodeJS.ErrnoException, socket: tls.TLSSocket): void {
    const verify = (socket as { authorizationError?: string | Error }).authorizationError;
    const verifyCode = typeof verify === 'string' ? verify : (verify as NodeJS.ErrnoException | undefined)?.code;
    const code = verifyCode ?? err.code ?? 'ERR_TLS';
    const why = verifyCode !== undefined ? `client certificate refused: ${certificateError(verifyCode)}` : describeTlsError(err);
    const raw = (socket as { _parent?: net.Socket })._parent;
    this.refusals.note(RefusalCode.HandshakeFailed, `TLS handshake refused from ${this.labels.get(raw ?? socket) ?? peerOf(socket)}: ${why} (${code})`, 'warn', code);
    socket.destroy();
  }

  destroyAll(): void {
    for (const raw of [...this.pending.keys()]) raw.destroy();
  }

  private over(raw: net.Socket, key: string | undefined): boolean {
    const timer = this.pending.get(raw);
    if (timer === undefined) return false;
    this.options.clock.clear(timer);
    this.pending.delete(raw);
    if (key !== undefined && this.byPeer.get(key) === raw) this.byPeer.delete(key);
    this.onSettled();
    return true;
  }
}

export function peerOf(socket: net.Socket): string {
  return socket.remoteAddress !== undefined ? `${socket.remoteAddress}:${socket.remotePort ?? ''}` : 'unix';
}

/** Identifies a TCP connection on this server (undefined for Unix sockets). */
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
