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
