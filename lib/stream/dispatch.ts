import type { ServerRequest } from './server-request.js';

/**
 * The seam between the stream layer and whatever serves requests (the Nest
 * strategy, or `MethodDispatch`). `dispatch` must settle `req` exactly once
 * through its methods (`ok`, `item`+`end`, `errno`, `error`, `errorValue`,
 * `internal`). A synchronous throw or a rejected promise is answered
 * `rpc_internal_err` and logged; the message never reaches the client.
 */
export interface Dispatch {
  dispatch(req: ServerRequest): void | Promise<void>;
}

/** Where the server writes what goes wrong (Nest's Logger fits). */
export interface RpcLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, stack?: string): void;
}

export const consoleLogger: RpcLogger = {
  log: (m) => console.log(`[occams] ${m}`),
  warn: (m) => console.warn(`[occams] ${m}`),
  error: (m, stack) => console.error(`[occams] ${m}${stack ? `\n${stack}` : ''}`),
};

export const silentLogger: RpcLogger = { log() {}, warn() {}, error() {} };
