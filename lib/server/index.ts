// The server side of the stream layer.
export type { ConnectionView } from './connection-view.js';
export type { Dispatch } from './dispatch.js';
export { consoleLogger, type RpcLogger, silentLogger } from './logger.js';
export { MethodDispatch, type MethodHandler, type ServiceHandlers } from './method-dispatch.js';
export { type Describable, describeService } from './reflection.js';
export { RefusalCode } from './refusal-log.js';
export type { WireErrorCode } from './request-end.js';
export { RpcServer, type RpcServerState } from './rpc-server.js';
export type { ServerConnection, ServerConnectionState } from './server-connection.js';
export { type RpcServerOptions } from './server-options.js';
export type { ServerRequest } from './server-request.js';
export { ErrnoReply, ErrorReply } from './user-replies.js';
