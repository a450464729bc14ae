/**
 * The Calculator of the occams README as a service definition, written once
 * and imported by both sides: the microservice implements it
 * (`calculator/calculator.controller.ts`), the gateway calls it
 * (`gateway/gateway.controller.ts`). On the wire its methods are the
 * patterns `Calculator.add`, `Calculator.div`, ..., so any occams v1 client
 * (the Rust crate included) calls them too.
 */
import { defineService, method, stream } from '../lib/index.js';

/** errno for an invalid argument, as in <errno.h>. */
export const EINVAL = 22;

const DIV_MESSAGES = { divide_by_zero: 'division by zero', overflow: 'quotient out of range' } as const;
export type DivErrorKind = keyof typeof DIV_MESSAGES;

/**
 * `div`'s error, in the message form: a Rust client reads it as a `String`
 * ("division by zero"); ours gets a DivError back, with its `kind`.
 */
export class DivError extends Error {
  static readonly wire = 'message';
  static fromWire(message: string): DivError {
    const kind = (Object.keys(DIV_MESSAGES) as DivErrorKind[]).find((k) => DIV_MESSAGES[k] === message);
    if (kind === undefined) throw new TypeError(`not a DivError message: ${message}`); // the caller gets the RemoteError as it came
    return new DivError(kind);
  }
  constructor(readonly kind: DivErrorKind) {
    super(DIV_MESSAGES[kind]);
  }
  toWire(): string {
    return this.message;
  }
}

/**
 * `mightFail`'s error, in the errno form: plain v1 peers get errno 22 alone,
 * nestjs-occams clients the message too.
 */
export class InvalidArgument extends Error {
  static readonly wire = 'errno';
  static fromWire(errno: number, message?: string): InvalidArgument {
    if (errno !== EINVAL) throw new TypeError(`not EINVAL: ${errno}`);
    return new InvalidArgument(message ?? 'invalid argument');
  }
  readonly errno = EINVAL;
  toWire(): number {
    return EINVAL;
  }
}

export const Calculator = defineService('Calculator', {
  add: method<[number, number], number>({ idempotent: true }),
  /** integer quotient (truncated) */
  div: method<[number, number], number, DivError>({ errors: DivError, idempotent: true }),
  /** v * 2, or InvalidArgument when v < 0; `might_fail_with_errno` on the wire, as in the Rust crate's example */
  mightFail: method<number, number, InvalidArgument>({ name: 'might_fail_with_errno', errors: InvalidArgument }),
  /** 1..n, one value every 10 ms (a plain v1 client gets only n) */
  count: stream<number, number>(),
  /** the events `Calculator.log` received so far */
  events: method<void, unknown[]>(),
});
