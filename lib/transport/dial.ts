import net from 'node:net';
import tls from 'node:tls';
import { type Clock, type TimerHandle, systemClock } from '../core/clock.js';
import { UnreachableError } from '../errors.js';
import { type Address, formatAddress, isUnixAddress } from './address.js';

export interface DialOptions {
  /** TLS client options; when set the connection is TLS (verification on unless you turn it off). */
  tls?: tls.ConnectionOptions;
  /** ms to wait for the connection (and TLS handshake); 0 = no limit */
  connectTimeout?: number;
  clock?: Clock;
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
      const servername =
        options.tls.servername ?? (!isUnixAddress(address) && net.isIP(address.host) === 0 ? address.host : undefined);
      socket = tls.connect({ ...options.tls, ...where, ...(servername ? { servername } : {}) });
    } else {
      socket = net.connect(where);
    }
    const clock = options.clock ?? systemClock;
    let timer: TimerHandle | undefined;
    const fail = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(new UnreachableError(`cannot connect to ${formatAddress(address)}: ${err.message}`, { cause: err }));
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
      timer = clock.setTimeout(() => fail(new Error(`connect timeout after ${options.connectTimeout} ms`)), options.connectTimeout);
    }
  });
}
