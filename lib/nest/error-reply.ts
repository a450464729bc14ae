import { ErrorCode } from '../errors.js';
import { ErrnoReply, ErrorReply, type ServerRequest } from '../server/index.js';
import { replyWithUserError } from '../server/internal.js';

/** What Nest's BaseRpcExceptionFilter emits for an exception it does not know. */
const UNKNOWN_EXCEPTION_MESSAGE = 'Internal server error';

/**
 * Settles `req` with what a Nest handler's Observable errored with. By then
 * Nest's exception filters have turned exceptions into plain values:
 *   RpcException('msg')            -> { status: 'error', message: 'msg' } -> error bytes (UTF-8 message)
 *   RpcException({ errno: 22 })    -> { errno: 22 }                      -> errno form (flag 1)
 *   RpcException({ errno: 22, message: 'm' }) (OccamsErrnoException(22, 'm'))
 *                                  -> errno and message (flag 6 to clients that speak it, else flag 1)
 *   RpcException({ any: 'object' })-> the object                         -> encoded with the codec
 *   any other thrown error         -> { status: 'error', message: 'Internal server error' } -> rpc_internal_err
 *   a method's declared error      -> ErrnoReply / ErrorReply (by @OccamsService's filter) -> its wire form
 * A custom filter may emit anything; strings go as messages, the rest is encoded.
 */
export function replyWithError(req: ServerRequest, err: unknown): void {
  if (err instanceof ErrnoReply || err instanceof ErrorReply) {
    replyWithUserError(req, err);
    return;
  }
  if (typeof err === 'string') {
    req.error(err);
    return;
  }
  if (err !== null && typeof err === 'object') {
    const o = err as { status?: unknown; message?: unknown; errno?: unknown };
    const keys = Object.keys(o);
    if (isErrno(o.errno) && keys.every((k) => k === 'errno' || k === 'message' || k === 'status')) {
      req.errno(o.errno, typeof o.message === 'string' ? o.message : undefined);
      return;
    }
    if (o.status === 'error' && typeof o.message === 'string' && keys.length === 2) {
      if (o.message === UNKNOWN_EXCEPTION_MESSAGE) req.internal(ErrorCode.Internal);
      else req.error(o.message);
      return;
    }
    if (err instanceof Error) {
      // reached us without going through a filter: never leak its message (the span and diagnostics keep it)
      req.handlerThrew(err);
      req.internal(ErrorCode.Internal);
      return;
    }
  }
  req.errorValue(err);
}

function isErrno(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
}
