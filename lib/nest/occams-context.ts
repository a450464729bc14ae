import type { PeerCertificate } from 'node:tls';

import { BaseRpcContext } from '@nestjs/microservices';

import type { ServerRequest } from '../server/index.js';

type OccamsContextArgs = [pattern: string, request: ServerRequest];

/**
 * What an Occams handler can learn about its request (`@Ctx() ctx: OccamsContext`).
 */
export class OccamsContext extends BaseRpcContext<OccamsContextArgs> {
  constructor(args: OccamsContextArgs) {
    super(args);
  }
  /** The pattern, as the action string it arrived as. */
  getPattern(): string {
    return this.args[0];
  }
  /** The stream-layer request (seq, raw blob, settle methods). */
  getRequest(): ServerRequest {
    return this.args[1];
  }
  /** The request's sequence number on its connection. */
  getSeq(): number {
    return this.args[1].seq;
  }
  /** The id the client process writes in every request. */
  getClientId(): number {
    return this.args[1].clientId;
  }
  /** Remote IP address (undefined over a Unix socket). */
  getRemoteAddress(): string | undefined {
    return this.args[1].connection.remoteAddress;
  }
  /** Metadata set on the client with `setOnDispatchHook` (or per call). */
  getMetadata(): Record<string, string> | undefined {
    return this.args[1].meta as Record<string, string> | undefined;
  }
  /** Epoch ms after which the caller stops waiting, if it sent a deadline. */
  getDeadline(): number | undefined {
    return this.args[1].deadline;
  }
  /** ms left before the caller's deadline (Infinity without one). */
  getTimeLeft(): number {
    return this.args[1].timeLeft;
  }
  /** The raw blob that followed the message (empty when none). */
  getBlob(): Buffer {
    return this.args[1].blob;
  }
  /** The client's TLS certificate when the server requires one (mutual TLS). */
  getPeerCertificate(): PeerCertificate | undefined {
    return this.args[1].connection.peerCertificate;
  }
  /**
   * Aborts when the request is cancelled by the client (unsubscribe, or its
   * timeout), passes its deadline or the server's `handlerTimeout`, or its
   * connection goes away: hand it to a query or an outgoing `fetch` to stop
   * them. Created on first use.
   */
  get signal(): AbortSignal {
    return this.args[1].signal;
  }
  /** Same as `signal`. */
  getSignal(): AbortSignal {
    return this.args[1].signal;
  }
  /** True for `emit()`ted events (no response is sent). */
  isEvent(): boolean {
    return this.args[1].isEvent;
  }
}
