import type { Socket } from 'node:net';

import type { OccamsError } from '../errors.js';
import type { Address } from '../transport/address.js';
import { type PeerInfo, peerInfo } from '../transport/peer.js';
import { connectionClose, connectionOpen } from './diagnostics.js';
import { type EndState, Lifecycle, type Transitions } from './lifecycle.js';

/**
 * One socket to a peer, either end (ClientStream, ServerConnection): its
 * lifecycle, where the other side is, and its announcements on the
 * diagnostics channels (open once made, close with the reason).
 */
export abstract class Connection<S extends string> extends Lifecycle<S> {
  private _peer: PeerInfo | undefined = undefined;

  protected constructor(
    what: string,
    table: Transitions<S | EndState>,
    initial: S,
    protected readonly socket: Socket,
    private readonly side: 'client' | 'server',
    /** where it was dialled (client ends), else undefined */
    readonly address: Address | undefined,
  ) {
    super(what, table, initial);
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress ?? undefined;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort ?? undefined;
  }
  /** Where the other side is: the dialled address, else the socket's peer (built on first use). */
  get peer(): PeerInfo {
    return (this._peer ??= peerInfo(this.socket, this.address));
  }

  /** Announces the connection (call once the subclass is built). */
  protected announce(): void {
    if (connectionOpen.hasSubscribers) connectionOpen.publish({ side: this.side, connection: this });
  }

  protected override onClosed(reason: OccamsError | undefined): void {
    if (connectionClose.hasSubscribers) connectionClose.publish({ side: this.side, connection: this, reason });
  }
}
