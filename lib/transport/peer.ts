import type { Socket } from 'node:net';

import { type Address, formatAddress, isUnixAddress } from './address.js';

/** Where the other side of a connection is, for spans and diagnostics. */
export interface PeerInfo {
  /** the host name or IP dialled (client), or the peer's IP (server); the path for Unix sockets */
  address: string | undefined;
  port: number | undefined;
  /** the socket's remote IP and port (TCP) */
  peerAddress: string | undefined;
  peerPort: number | undefined;
  transport: 'tcp' | 'unix';
  /** `host:port` or `unix:/path` (`unix` for a Unix socket whose path is not known) */
  text: string;
}

/** The peer of `socket`, named by `dialled` when the client knows where it dialled. */
export function peerInfo(socket: Socket, dialled: Address | undefined): PeerInfo {
  const peerAddress = socket.remoteAddress ?? undefined;
  const peerPort = socket.remotePort ?? undefined;
  if (dialled !== undefined) {
    const text = formatAddress(dialled);
    if (isUnixAddress(dialled)) return { address: dialled.path, port: undefined, peerAddress, peerPort, transport: 'unix', text };
    return { address: dialled.host, port: dialled.port, peerAddress, peerPort, transport: 'tcp', text };
  }
  if (peerAddress === undefined) return { address: undefined, port: undefined, peerAddress, peerPort, transport: 'unix', text: 'unix' };
  return { address: peerAddress, port: peerPort, peerAddress, peerPort, transport: 'tcp', text: formatAddress({ host: peerAddress, port: peerPort ?? 0 }) };
}
