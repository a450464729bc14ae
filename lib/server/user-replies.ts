import type { ErrorClass } from '../service/error-class.js';
import { toWireError } from '../service/error-wire.js';
import type { ServerRequest } from './server-request.js';

// A handler's refusal in wire form, thrown from a MethodDispatch handler
// (and, made from a declared error, by the Nest adapter's filter): the
// stream layer answers it as a user error, never as `rpc_internal_err`.

/**
 * Throw from a MethodDispatch handler to answer with a numeric user error
 * (flag 1; with `reason`, flag 6 to clients that speak it).
 */
export class ErrnoReply extends Error {
  override readonly name = 'ErrnoReply';
  constructor(
    readonly errno: number,
    readonly reason?: string,
  ) {
    super(reason ?? `errno ${errno}`);
  }
}

/**
 * Throw from a MethodDispatch handler to answer with a user error: a string
 * goes as UTF-8 and bytes as they are (flag 2), anything else through the
 * codec; `{ encode: true }` sends strings and bytes through the codec too.
 */
export class ErrorReply extends Error {
  override readonly name = 'ErrorReply';
  /** true: `error` goes through the codec (flag 4, or flag 2 to v1 peers); false: as UTF-8 / raw bytes (flag 2) */
  readonly encode: boolean;
  constructor(
    readonly error: unknown,
    options?: { encode?: boolean },
  ) {
    super(typeof error === 'string' ? error : 'user error');
    this.encode = options?.encode ?? !(typeof error === 'string' || error instanceof Uint8Array);
  }
}

/** Settles `req` with a user error reply. */
export function replyWithUserError(req: ServerRequest, reply: ErrnoReply | ErrorReply): void {
  if (reply instanceof ErrnoReply) req.errno(reply.errno, reply.reason);
  else if (reply.encode) req.errorValue(reply.error);
  else req.error(reply.error as string | Uint8Array);
}

/**
 * The reply for `err`, an instance of the declared error class `cls`, in
 * that class's wire form (see toWireError; throws as it does).
 */
export function declaredReply(cls: ErrorClass, err: Error): ErrnoReply | ErrorReply {
  const wire = toWireError(cls, err);
  switch (wire.form) {
    case 'errno':
      return new ErrnoReply(wire.errno, wire.message);
    case 'message':
      return new ErrorReply(wire.message, { encode: false });
    case 'value':
      return new ErrorReply(wire.value, { encode: true });
  }
}
