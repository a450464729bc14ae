// The server side of the stream layer.
export type { Dispatch } from './dispatch.js';
export { type RpcLogger, consoleLogger, silentLogger } from './logger.js';
export { MethodDispatch, type MethodHandler, type ServiceHandlers } from './method-dispatch.js';
export { ErrnoReply, ErrorReply } from './user-replies.js';
export { RefusalCode } from './refusal-log.js';
export { RpcServer, type RpcServerState } from './rpc-server.js';
export type { ServerConnection, ServerConnectionState } from './server-connection.js';
export {
  DEFAULT_CLOSE_WAIT,
  DEFAULT_CONCURRENCY_LIMIT,
  DEFAULT_DRAIN_GRACE,
  DEFAULT_HANDLER_TIMEOUT,
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_SERVER_IDLE_TIMEOUT,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_CONCURRENCY_LIMIT,
  DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
  DEFAULT_SERVER_MAX_QUEUED,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_MAX_QUEUED_PER_CONNECTION,
  DEFAULT_MIN_CONCURRENCY_LIMIT,
  DEFAULT_READ_TIMEOUT,
  DEFAULT_SERVER_ADDRESS,
  DEFAULT_SERVER_TIMER_RESOLUTION,
  DEFAULT_STREAM_BUFFER,
  DEFAULT_STREAM_CLOSE_GRACE,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT,
  DEFAULT_WRITE_TIMEOUT,
  type RpcServerOptions,
} from './server-options.js';
export type { ServerRequest, WireErrorCode } from './server-request.js';
export { type Describable, describeService } from './reflection.js';
