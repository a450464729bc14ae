import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

import { type Address, isUnixAddress } from './address.js';

export interface ListenOptions {
  /** TLS server options (key, cert, ca, requestCert...); when set the server is TLS. */
  tls?: tls.TlsOptions;
  backlog?: number;
}

/** A listening server and the address it actually bound (port 0 resolved). */
export interface Listener {
  server: net.Server;
  address: Address;
  /** 'connection' for TCP/Unix, 'secureConnection' for TLS */
  connectionEvent: 'connection' | 'secureConnection';
}

/**
 * Listens on TCP host:port (port 0 picks a free port) or a Unix socket path
 * (a stale socket file nobody listens on is removed first).
 */
export async function listen(address: Address, options: ListenOptions = {}): Promise<Listener> {
  const server = options.tls ? tls.createServer(options.tls) : net.createServer();
  if (isUnixAddress(address)) await removeStaleSocket(address.path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (isUnixAddress(address)) server.listen({ path: address.path, backlog: options.backlog }, done);
    else server.listen({ host: address.host, port: address.port, backlog: options.backlog }, done);
  });
  let bound: Address = address;
  const info = server.address();
  if (info && typeof info === 'object') bound = { host: info.address, port: info.port };
  return { server, address: bound, connectionEvent: options.tls ? 'secureConnection' : 'connection' };
}

async function removeStaleSocket(path: string): Promise<void> {
  if (!fs.existsSync(path)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (!alive) fs.rmSync(path, { force: true });
}
