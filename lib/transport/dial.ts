import net from 'node:net';
import tls from 'node:tls';

import { UnreachableError } from '../errors.js';
import { type Address, formatAddress, isUnixAddress } from './address.js';

/**
 * The timers dial needs: core's Clock has them (a transport knows nothing
 * of the layers above it; a fake clock passes as it is).
 */
export interface DialTimers {
  setTimeout(fn: () => void, ms: number): object | number;
  clear(handle: object | number | undefined): void;
}

const SYSTEM_TIMERS: DialTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface DialOptions {
  /** TLS client options; when set the connection is TLS (verification on unless you turn it off). */
  tls?: tls.ConnectionOptions;
  /** ms to wait for the connection (and TLS handshake); 0 = no limit */
  connectTimeout?: number;
  /** timers for connectTimeout (default: the process's) */
  clock?: DialTimers;
}

/**
 * Opens a connection. Every failure (refused, unreachable, timeout, TLS
 * handshake) becomes `rpc_unreachable` with the cause kept.
 */
export function dial(address: Address, options: DialOptions = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const where = isUnixAddress(address) ? { path: address.path } : { host: address.host, port: address.port };
    let socket: net.Socket;
    const readyEvent = options.tls ? 'secureConnect' : 'connect';
    if (options.tls) {
      const servername = options.tls.servername ?? (!isUnixAddress(address) && net.isIP(address.host) === 0 ? address.host : undefined);
      socket = tls.connect({ ...options.tls, ...where, ...(servername ? { servername } : {}) });
    } else {
      socket = net.connect(where);
    }
    const clock = options.clock ?? SYSTEM_TIMERS;
    let timer: object | number | undefined;
    const fail = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(new UnreachableError(`cannot connect to ${formatAddress(address)}: ${describeConnectError(err, options.tls !== undefined)}`, { cause: err }));
    };
    const ok = (): void => {
      cleanup();
      socket.setNoDelay(true);
      resolve(socket);
    };
    const cleanup = (): void => {
      clock.clear(timer);
      socket.off('error', fail);
      socket.off(readyEvent, ok);
    };
    socket.once('error', fail);
    socket.once(readyEvent, ok);
    if (options.connectTimeout && options.connectTimeout > 0) {
      timer = clock.setTimeout(() => {
        const what = options.tls && !socket.connecting ? 'TLS handshake timed out' : 'connect timed out';
        fail(Object.assign(new Error(`${what} after ${options.connectTimeout} ms`), { code: options.tls && !socket.connecting ? 'ERR_TLS_HANDSHAKE_TIMEOUT' : 'ETIMEDOUT' }));
      }, options.connectTimeout);
    }
  });
}

/** Plain words for the socket errors a user meets when connecting. */
const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (nothing listens there)',
  ECONNRESET: 'connection reset by the server',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  ENOENT: 'no such socket file',
  EACCES: 'permission denied',
};

/**
 * What went wrong when connecting, in words a user can act on: the
 * certificate check's own words ("certificate has expired", "unable to get
 * local issuer certificate"), "connection refused", "TLS handshake timed
 * out", a TLS alert's name; never OpenSSL's file and line.
 */
export function describeConnectError(err: Error, tls: boolean): string {
  if (tls && /before secure TLS connection was established/.test(err.message)) {
    return 'the server closed the connection during the TLS handshake (is it a plain, non-TLS server?)';
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && SOCKET_ERRORS[code] !== undefined) return SOCKET_ERRORS[code];
  return describeTlsError(err);
}

/** An OpenSSL error string cut to its reason ("tlsv13 alert certificate required"); other messages unchanged. */
export function describeTlsError(err: Error): string {
  const reason = /SSL routines:[^:]*:([^:]+)/.exec(err.message)?.[1];
  if (reason === undefined) return err.message;
  const alert = /alert (.+)$/.exec(reason)?.[1];
  if (alert === 'certificate required') return 'the server requires a client certificate (TLS alert: certificate required)';
  if (alert !== undefined) return `the server refused the TLS handshake (TLS alert: ${alert})`;
  if (reason === 'wrong version number') return 'the peer does not speak TLS (wrong version number)';
  return `TLS: ${reason}`;
}
