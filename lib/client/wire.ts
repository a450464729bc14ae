import type { Codec } from '../codec/codec.js';
import { decodeReceived } from '../codec/decode-received.js';
import {
  DecodeError,
  ErrorCode,
  errorFromWireBytes,
  MethodNotFoundError,
  type OccamsError,
  ownedBytes,
  ProtocolError,
  RemoteErrnoError,
  RemoteError,
  ServiceNotFoundError,
} from '../errors.js';
import { FLAG_ERRNO, FLAG_ERROR_BYTES } from '../protocol/constants.js';
import { FEATURE_CREDIT, FEATURE_DEADLINE, FEATURE_META, FLAG_ERRNO_MESSAGE, FLAG_ERROR_VALUE, MAX_DEADLINE_LEFT, type RequestExtHeader } from '../protocol/extensions.js';
import type { CallOptions } from './call.js';

// What a client puts on and reads off the wire beyond the frame itself:
// the request's extension header, and the error a failed response carries.

/**
 * The ms left until `deadline` (epoch ms) at `now`, as a request's ext
 * header carries it: a whole number, at least 0, at most MAX_DEADLINE_LEFT.
 */
export function msLeft(deadline: number, now: number): number {
  const left = Math.round(deadline - now);
  return left <= 0 ? 0 : left < MAX_DEADLINE_LEFT ? left : MAX_DEADLINE_LEFT;
}

/**
 * The extension header for a call's options, or undefined when there is
 * nothing to say. Its deadline is the options' `deadline`, else `expiresAt`
 * (when the call times out here; 0 for an event, which has no caller
 * waiting for it).
 */
export function extHeader(options: CallOptions, features: number, now: number, expiresAt: number): RequestExtHeader | undefined {
  if (features === 0) return undefined;
  let header: RequestExtHeader | undefined;
  if (options.meta !== undefined && (features & FEATURE_META) !== 0) header = { m: options.meta };
  const deadline = options.deadline ?? (expiresAt > 0 ? expiresAt : undefined);
  if (deadline !== undefined && (features & FEATURE_DEADLINE) !== 0) (header ??= {}).d = msLeft(deadline, now);
  if (options.flow !== undefined && (features & FEATURE_CREDIT) !== 0) (header ??= {}).c = options.flow.window;
  return header;
}

/**
 * The error of a response whose flag is not ok. Bytes are copied out of the
 * receive buffer: an error may be kept (and logged) long after the buffer
 * is reused. A flag the peer had no right to send is a protocol violation.
 * A not-found answer names the call's `action` (the wire carries only the code).
 */
export function responseError(flag: number, msgLen: number, blob: Buffer, codec: Codec, features: number, action: string | number): OccamsError {
  switch (flag) {
    case FLAG_ERRNO:
      return new RemoteErrnoError(msgLen);
    case FLAG_ERROR_BYTES:
      return notFoundNamed(errorFromWireBytes(blob), action);
  }
  if (features !== 0 && flag === FLAG_ERRNO_MESSAGE) return new RemoteErrnoError(msgLen, blob.toString('utf8'));
  if (features !== 0 && flag === FLAG_ERROR_VALUE) {
    const data = ownedBytes(blob); // decoded values may be views into it
    let value: unknown;
    try {
      value = codec.decode(data);
    } catch {
      value = undefined;
    }
    return new RemoteError(data, value);
  }
  throw new ProtocolError(`unknown response flag ${flag}`);
}

/** `msg` decoded with `codec`, or the DecodeError saying what (`what`) could not be. */
export function decodeValue(codec: Codec, msg: Uint8Array, what: string): unknown {
  try {
    return decodeReceived(codec, msg);
  } catch (err) {
    return new DecodeError(`cannot decode ${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** `rpc_method_notfound` / `rpc_service_notfound` with the pattern that was not found, and what to check. */
function notFoundNamed(err: OccamsError, action: string | number): OccamsError {
  if (err.code !== ErrorCode.MethodNotFound && err.code !== ErrorCode.ServiceNotFound) return err;
  const pattern = typeof action === 'string' ? `'${action}'` : `action ${action}`;
  if (err.code === ErrorCode.MethodNotFound) {
    return new MethodNotFoundError(`method not found: the server has no handler for ${pattern} (check the pattern against its @MessagePattern handlers)`);
  }
  const dot = typeof action === 'string' ? action.indexOf('.') : -1;
  const prefix = dot > 0 ? ` (no handler's pattern starts with '${(action as string).slice(0, dot + 1)}')` : '';
  return new ServiceNotFoundError(`service not found: the server has no service for ${pattern}${prefix}`);
}
