import type { PeerCertificate } from 'node:tls';

import type { PeerInfo } from '../transport/peer.js';

/**
 * What a handler may know of the connection its request came on
 * (`req.connection`): who and where the client is. Read-only: a handler
 * settles its request, it does not reach into the connection (to refuse a
 * client, a guard throws; the server closes connections itself).
 */
export interface ConnectionView {
  /** the connection's number on its server (as in its log lines) */
  readonly id: number;
  /** the client's IP (undefined over a Unix socket) */
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** where the client is, for logs and spans */
  readonly peer: PeerInfo;
  /** the client's TLS certificate under mutual TLS, else undefined */
  readonly peerCertificate: PeerCertificate | undefined;
  /** the extension features the client negotiated (0: a plain v1 peer) */
  readonly features: number;
  /** 'open', 'closing' (the graceful drain) or 'closed' */
  readonly state: string;
  /** the id the client writes in its requests (informative) */
  readonly clientId: number;
}

/**
 * The read-only face of a connection (ServerConnection) that handlers get:
 * the fields above, read through, and nothing else of it.
 */
export class ReadOnlyConnection implements ConnectionView {
  readonly #conn: ConnectionView & { describe(): string };
  constructor(conn: ConnectionView & { describe(): string }) {
    this.#conn = conn;
  }
  get id(): number {
    return this.#conn.id;
  }
  get remoteAddress(): string | undefined {
    return this.#conn.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.#conn.remotePort;
  }
  get peer(): PeerInfo {
    return this.#conn.peer;
  }
  get peerCertificate(): PeerCertificate | undefined {
    return this.#conn.peerCertificate;
  }
  get features(): number {
    return this.#conn.features;
  }
  get state(): string {
    return this.#conn.state;
  }
  get clientId(): number {
    return this.#conn.clientId;
  }
  toString(): string {
    return `connection ${this.#conn.describe()}`;
  }
}
