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
}

/** The peer of `socket`, named by `dialled` when the client knows where it dialled. */
export function peerInfo(socket: Socket, dialled: Address | undefined): PeerInfo {
  const peerAddress = socket.remoteAddress ?? undefined;
  const peerPort = socket.remotePort ?? undefined;
  if (dialled !== undefined) {
    if (isUnixAddress(dialled)) return { address: dialled.path, port: undefined, peerAddress, peerPort, transport: 'unix' };
    return { address: dialled.host, port: dialled.port, peerAddress, peerPort, transport: 'tcp' };
  }
  return { address: peerAddress, port: peerPort, peerAddress, peerPort, transport: peerAddress === undefined ? 'unix' : 'tcp' };
}

/** `host:port` (or `unix:/path`) of `dialled`, else of the socket's peer (`unix` when it has none). */
export function peerText(socket: Socket, dialled: Address | undefined): string {
  if (dialled !== undefined) return formatAddress(dialled);
  const host = socket.remoteAddress;
  if (host === undefined) return 'unix';
  return formatAddress({ host, port: socket.remotePort ?? 0 });
}
