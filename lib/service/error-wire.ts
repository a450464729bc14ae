import type { Codec } from '../codec/codec.js';
import { type OccamsError, RemoteErrnoError, RemoteError } from '../errors.js';
import { markDeclaredRemoteError } from './declared-error.js';
import type { ErrorClass } from './error-class.js';

/**
 * A declared error's two crossings, side by side so that they stay each
 * other's inverse: `toWireError` on the server (a thrown instance to its
 * wire form), `fromWireError` on the client (the error a response carried
 * back to an instance of the declared class).
 */

/** A declared error in its wire form, as the server sends it. */
export type WireError =
  | { readonly form: 'errno'; readonly errno: number; readonly message: string | undefined }
  | { readonly form: 'message'; readonly message: string }
  | { readonly form: 'value'; readonly value: unknown };

/** Flag-2 bytes starting with this are the framework's (`rpc_timeout`, ...): a user message may not. */
const RESERVED_PREFIX = 'rpc_';

/**
 * Server side: `err`, an instance of `cls`, in `cls`'s wire form. An errno
 * takes the error's message along (to clients that read it). Throws a
 * TypeError when `toWire()` gives what the form cannot carry: an errno that
 * is not a u32, a message that is not a string or starts with `rpc_`.
 */
export function toWireError(cls: ErrorClass, err: Error): WireError {
  const wire: unknown = (err as Error & { toWire(): unknown }).toWire();
  switch (cls.wire) {
    case 'errno':
      if (typeof wire !== 'number' || !Number.isInteger(wire) || wire < 0 || wire > 0xffff_ffff) {
        throw new TypeError(`${cls.name}.toWire() must give an integer from 0 to 2^32 - 1 (errno form), gave ${String(wire)}`);
      }
      return { form: 'errno', errno: wire, message: typeof err.message === 'string' && err.message !== '' ? err.message : undefined };
    case 'message':
      if (typeof wire !== 'string') throw new TypeError(`${cls.name}.toWire() must give a string (message form), gave ${typeof wire}`);
      if (wire.startsWith(RESERVED_PREFIX)) throw new TypeError(`${cls.name}.toWire() gave ${JSON.stringify(wire)}: the rpc_ prefix is reserved for framework errors`);
      return { form: 'message', message: wire };
    case 'value':
      return { form: 'value', value: wire };
  }
}

/**
 * Client side: the declared class's instance for a user error in its form
 * (`fromWire` of the errno, of the UTF-8 message, of the value decoded with
 * `codec`), with the remote error as its `cause` (unless `fromWire` set
 * one). `err` itself when it is a framework error (`rpc_*`), a user error
 * in another form, or one `fromWire` refused (threw, or gave something that
 * is not an instance of `cls`): an OccamsError stays an OccamsError.
 *
 * Error bytes are decoded from `data` whichever flag carried them: a
 * nestjs-occams server sends a value as flag 4, a plain v1 server (the
 * Rust crate) as flag 2, with the same bytes.
 */
export function fromWireError(cls: ErrorClass, err: OccamsError, codec: Codec): Error {
  let decoded: unknown;
  try {
    if (cls.wire === 'errno') {
      if (!(err instanceof RemoteErrnoError)) return err;
      decoded = cls.fromWire(err.errno, err.reason);
    } else {
      if (!(err instanceof RemoteError)) return err;
      decoded = cls.wire === 'message' ? cls.fromWire(err.data.toString('utf8')) : cls.fromWire(codec.decode(err.data));
    }
  } catch {
    return err;
  }
  if (!(decoded instanceof cls)) return err;
  if (!Object.hasOwn(decoded, 'cause')) Object.defineProperty(decoded, 'cause', { value: err, writable: true, configurable: true, enumerable: false });
  markDeclaredRemoteError(decoded);
  return decoded;
}
