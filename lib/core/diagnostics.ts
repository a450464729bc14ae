import dc from 'node:diagnostics_channel';

/**
 * `node:diagnostics_channel` channels, in undici's style: created once, at
 * load; every publish is guarded by `hasSubscribers`, so a channel nobody
 * listens to costs one getter call and builds no message.
 *
 *   import diagnosticsChannel from 'node:diagnostics_channel';
 *   diagnosticsChannel.subscribe('occams:client:call:start', (msg) => { ... });
 *
 * Messages are plain objects; the objects they point to (calls, requests,
 * connections, pools) are the library's own: read them, do not change them
 * (metadata included: the call is already on its way).
 *
 * The types below are structural on purpose: this file sits under the
 * client and server layers and names what they publish without importing
 * them. Each field says which class the object is.
 */
export const CHANNELS = {
  /** a call begins: once per call, on the Caller it was made on (stream, pool or failover pool) */
  clientCallStart: 'occams:client:call:start',
  /** a call's request was written to a connection: once per attempt (a retried call is sent again) */
  clientCallSent: 'occams:client:call:sent',
  /** a call ended with its final value */
  clientCallResponse: 'occams:client:call:response',
  /** a call ended with an error (a cancel by its caller included: `rpc_cancelled`) */
  clientCallError: 'occams:client:call:error',
  /** a request is handed to the server's Dispatch */
  serverRequestStart: 'occams:server:request:start',
  /** a dispatched request ended with an error (the handler's, or the stream layer's: cancel, deadline, disconnect...) */
  serverRequestError: 'occams:server:request:error',
  /** a dispatched request is over: its answer written (or abandoned) and its slot free */
  serverRequestEnd: 'occams:server:request:end',
  /** a connection was set up (client: before its handshake; server: at accept, after TLS) */
  connectionOpen: 'occams:connection:open',
  /** a connection is gone, with the reason (undefined when it ended cleanly) */
  connectionClose: 'occams:connection:close',
  /** a ClientPool changed state (idle, connecting, ready, unhealthy, closing, closed) */
  poolState: 'occams:pool:state',
  /** GOAWAY: a client read one, or a server sent one (its graceful close began) */
  goaway: 'occams:goaway',
  /** the server's concurrency limit moved (a sampling window closed, a probe began or ended) */
  serverLimit: 'occams:server:limit',
  /** a request was answered without being run: refused past the concurrency limit and its queue, or taken out of a queue as it could no longer start before its deadline */
  serverRequestRefused: 'occams:server:request:refused',
} as const;

export type ChannelName = (typeof CHANNELS)[keyof typeof CHANNELS];

/** What a client call is, in messages (the object is the library's CallProbe). */
export interface ClientCallInfo {
  /** the action: the pattern string, or a numeric action */
  readonly action: string | number;
  /** the value sent (do not change it) */
  readonly value: unknown;
  /** the metadata sent with it (trace context included when tracing is on); undefined when none */
  readonly meta: Record<string, unknown> | undefined;
  /** fire-and-forget (`emit()`) */
  readonly event: boolean;
  /** stream items received so far */
  readonly items: number;
}

/** A connection, in messages: a ClientStream on the client, a ServerConnection on the server. */
export interface ConnectionInfo {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly state: string;
}

/** A server request, in messages: the stream layer's ServerRequest. */
export interface ServerRequestInfo {
  readonly action: string | number;
  readonly seq: number;
  /** the decoded message */
  readonly msg: unknown;
  /** metadata the client sent (extension), else undefined */
  readonly meta: Record<string, unknown> | undefined;
  readonly isEvent: boolean;
  /** epoch ms of the caller's deadline (extension), else undefined */
  readonly deadline: number | undefined;
  readonly connection: ConnectionInfo;
}

/** `occams:client:call:start` */
export interface ClientCallStartMessage {
  call: ClientCallInfo;
}
/** `occams:client:call:sent` */
export interface ClientCallSentMessage {
  call: ClientCallInfo;
  /** the ClientStream it was written to */
  connection: ConnectionInfo;
  /** its seq on that connection */
  seq: number;
  /** the address that connection was dialled at (`host:port`, `unix:/path`), or its peer's */
  address: string;
}
/** `occams:client:call:response` */
export interface ClientCallResponseMessage {
  call: ClientCallInfo;
  /** the final value (undefined for a stream's end, or no value) */
  value: unknown;
}
/** `occams:client:call:error` */
export interface ClientCallErrorMessage {
  call: ClientCallInfo;
  /** an OccamsError: `code` says which (`rpc_timeout`, `user_error`, `rpc_cancelled`...) */
  error: Error & { readonly code: string };
}
/** `occams:server:request:start` */
export interface ServerRequestStartMessage {
  request: ServerRequestInfo;
}
/** `occams:server:request:error` */
export interface ServerRequestErrorMessage {
  request: ServerRequestInfo;
  /** what the client is told (a RemoteErrnoError, RemoteError or `rpc_*` error), or why it was ended */
  error: Error & { readonly code: string };
}
/** `occams:server:request:end` */
export interface ServerRequestEndMessage {
  request: ServerRequestInfo;
  /** as in `occams:server:request:error`; undefined when it succeeded */
  error: (Error & { readonly code: string }) | undefined;
}
/** `occams:connection:open` */
export interface ConnectionOpenMessage {
  side: 'client' | 'server';
  connection: ConnectionInfo;
}
/** `occams:connection:close` */
export interface ConnectionCloseMessage {
  side: 'client' | 'server';
  connection: ConnectionInfo;
  /** why it closed; undefined when it ended cleanly (a graceful close, the peer's FIN) */
  reason: Error | undefined;
}
/** `occams:pool:state` */
export interface PoolStateMessage {
  /** the ClientPool */
  pool: object;
  /** its address (`host:port`, `unix:/path`) */
  address: string;
  state: string;
  previous: string;
}
/** `occams:goaway` */
export interface GoawayMessage {
  /** client: GOAWAY was read; server: GOAWAY was sent */
  side: 'client' | 'server';
  connection: ConnectionInfo;
}

/** `occams:server:limit` */
export interface ServerLimitMessage {
  /** 'gradient', 'aimd' or 'static' */
  algorithm: string;
  /** handlers the server runs at once now (pinned low while `probing`) */
  limit: number;
  /** the limit before this change */
  previous: number;
  /** median handler latency of the last window, ms (0 until one closed) */
  latency: number;
  /** handler latency without queueing, ms (0 until measured) */
  minLatency: number;
  /** handlers counted now */
  running: number;
  /** requests waiting for the limit */
  queued: number;
  /** the limit is held low to measure minLatency */
  probing: boolean;
}
/** `occams:server:request:refused` */
export interface ServerRequestRefusedMessage {
  request: ServerRequestInfo;
  /**
   * 'limit': past the concurrency limit, its queue full or its expected wait past maxQueueWait;
   * 'deadline': could not start before its deadline; 'expired': taken out of a queue unrun
   * (its deadline passed, or it waited past maxQueueWait)
   */
  reason: 'limit' | 'deadline' | 'expired';
  /** what the client was answered: `rpc_overloaded`, or `rpc_unreachable` for a peer without that feature */
  code: string;
}

export const clientCallStart = dc.channel(CHANNELS.clientCallStart);
export const clientCallSent = dc.channel(CHANNELS.clientCallSent);
export const clientCallResponse = dc.channel(CHANNELS.clientCallResponse);
export const clientCallError = dc.channel(CHANNELS.clientCallError);
export const serverRequestStart = dc.channel(CHANNELS.serverRequestStart);
export const serverRequestError = dc.channel(CHANNELS.serverRequestError);
export const serverRequestEnd = dc.channel(CHANNELS.serverRequestEnd);
export const connectionOpen = dc.channel(CHANNELS.connectionOpen);
export const connectionClose = dc.channel(CHANNELS.connectionClose);
export const poolState = dc.channel(CHANNELS.poolState);
export const goaway = dc.channel(CHANNELS.goaway);
export const serverLimit = dc.channel(CHANNELS.serverLimit);
export const serverRequestRefused = dc.channel(CHANNELS.serverRequestRefused);
