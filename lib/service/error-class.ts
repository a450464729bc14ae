import { InvalidOptionError } from '../errors.js';

/**
 * How a declared error type crosses the wire: the three forms of occams v1
 * (the Rust crate's `RpcErrCodec`), which every v1 peer reads.
 *
 * | form      | response                                   | a Rust peer decodes it as          |
 * |-----------|--------------------------------------------|------------------------------------|
 * | `errno`   | flag 1, the u32 in `msg_len`               | a number, an errno, a `repr` enum  |
 * | `message` | flag 2, the UTF-8 bytes                    | a `String`                         |
 * | `value`   | flag 2, the value encoded with the codec   | a serde type, with its codec       |
 *
 * (Between two nestjs-occams peers an errno may carry its message along,
 * flag 6, and a value goes as flag 4; plain v1 peers get the forms above.)
 */
export type ErrorWireForm = 'errno' | 'message' | 'value';

/** The wire forms, for checks and messages. */
export const ERROR_WIRE_FORMS: readonly ErrorWireForm[] = ['errno', 'message', 'value'];

type ErrorConstructor<E> = abstract new (...args: any[]) => E;

/**
 * An error class declared for a method, in the errno form: instances say
 * their number (`toWire(): number`, a u32), the class makes one back
 * (`static fromWire(errno, message?)`; `message` is the handler's message,
 * which only a nestjs-occams server sends along).
 */
export type ErrnoErrorClass<E extends Error = Error> = ErrorConstructor<E & { toWire(): number }> & {
  readonly wire: 'errno';
  fromWire(errno: number, message?: string): E;
};

/** An error class in the message form: `toWire(): string` (UTF-8 on the wire), `static fromWire(message)`. */
export type MessageErrorClass<E extends Error = Error> = ErrorConstructor<E & { toWire(): string }> & {
  readonly wire: 'message';
  fromWire(message: string): E;
};

/** An error class in the value form: `toWire()` gives a value the codec encodes, `static fromWire(value)` takes it decoded. */
export type ValueErrorClass<E extends Error = Error> = ErrorConstructor<E & { toWire(): unknown }> & {
  readonly wire: 'value';
  fromWire(value: any): E;
};

/**
 * A method's declared error type: a class with a static `wire` (its form),
 * a static `fromWire` and an instance `toWire`. For example:
 *
 *   class DivError extends Error {
 *     static readonly wire = 'errno';
 *     static fromWire(errno: number) { return new DivError(errno === 1 ? 'divide_by_zero' : 'overflow'); }
 *     constructor(readonly kind: 'divide_by_zero' | 'overflow') { super(kind); }
 *     toWire() { return this.kind === 'divide_by_zero' ? 1 : 2; }
 *   }
 *
 * The server sends a thrown instance in its form; the client raises
 * `fromWire(...)`'s instance, so `err instanceof DivError` holds there too.
 */
export type ErrorClass<E extends Error = Error> = ErrnoErrorClass<E> | MessageErrorClass<E> | ValueErrorClass<E>;

/** Refuses, naming `where`, an `errors` entry that does not follow the ErrorClass protocol (JavaScript callers, casts). */
export function checkErrorClass(cls: unknown, where: string): ErrorClass {
  if (typeof cls !== 'function') throw new InvalidOptionError(where, 'expected an error class (static wire, static fromWire(), toWire())');
  const c = cls as unknown as { wire?: unknown; fromWire?: unknown; prototype?: { toWire?: unknown }; name: string };
  const name = c.name || 'the class';
  if (!ERROR_WIRE_FORMS.includes(c.wire as ErrorWireForm)) {
    throw new InvalidOptionError(where, `${name} needs a static wire of ${ERROR_WIRE_FORMS.map((f) => `'${f}'`).join(', ')}, has ${String(c.wire)}`);
  }
  if (typeof c.fromWire !== 'function') throw new InvalidOptionError(where, `${name} needs a static fromWire()`);
  if (typeof c.prototype?.toWire !== 'function') throw new InvalidOptionError(where, `${name} needs a toWire() method`);
  return cls as ErrorClass;
}
