import { EncodeError, ErrorCode, type OccamsError } from '../errors.js';

/**
 * How a request ends when its handler does not end it: the vocabulary that
 * the request, its stream, its connection and the server's counters share.
 * A leaf: it knows none of them.
 */

/** Internal codes a server may answer with (ASCII, flag 2). */
export type WireErrorCode =
  | typeof ErrorCode.MethodNotFound
  | typeof ErrorCode.ServiceNotFound
  | typeof ErrorCode.Decode
  | typeof ErrorCode.Encode
  | typeof ErrorCode.Internal
  | typeof ErrorCode.InvalidVersion;

/** Codes that tell the client a request was never run: `rpc_overloaded` to peers that negotiated it, else `rpc_unreachable`. */
export type NotRunCode = typeof ErrorCode.Overloaded | typeof ErrorCode.Unreachable;

/** Codes the stream layer itself ends a request with. */
export type EndCode = WireErrorCode | NotRunCode | typeof ErrorCode.Timeout | typeof ErrorCode.Io | typeof ErrorCode.StreamOverflow | typeof ErrorCode.GoingAway;

/** Why the stream layer ended a request the handler had not settled (counted in the server's stats). */
export const enum EndReason {
  /** the client sent CANCEL */
  Cancel,
  /** the caller's deadline passed */
  Deadline,
  /** no deadline, and the handler ran past `handlerTimeout` */
  HandlerTimeout,
  /** the connection closed */
  Disconnect,
  /** a pushed stream outran its buffer */
  Overflow,
  /** a stream still open after the graceful close's grace */
  Shutdown,
  /** an item could not be encoded */
  Encode,
}

const wireBytes = new Map<string, Buffer>();
/** The ASCII bytes of an `rpc_*` code, encoded once. */
export function codeBytes(code: string): Buffer {
  let b = wireBytes.get(code);
  if (b === undefined) wireBytes.set(code, (b = Buffer.from(code, 'latin1')));
  return b;
}

/** Ends an iterator we stop reading; its own failure is of no interest. */
export function returnQuietly(it: AsyncIterator<unknown>): void {
  try {
    const r = it.return?.();
    if (r !== undefined && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(undefined, () => {});
  } catch {
    /* ignore */
  }
}

/** Encoding a stream item failed. */
export function encodeFailure(err: unknown): OccamsError {
  return new EncodeError(`cannot encode stream item: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
