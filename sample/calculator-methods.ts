/**
 * The Calculator of the occams README as stream-layer handlers (no Nest),
 * shared by `stream-demo.ts` and `stream-server.ts`.
 */
import { ErrnoReply, ErrorReply, type MethodHandler } from '../lib/index.js';

/** errno for an invalid argument, as in <errno.h>. */
const EINVAL = 22;

export const calculatorMethods: Record<string, MethodHandler> = {
  'Calculator.add': ([a, b]: [number, number]) => a + b,
  /** Integer quotient (truncated); dividing by zero is a user error string. */
  'Calculator.div': ([a, b]: [number, number]) => {
    if (b === 0) throw new ErrorReply('division by zero');
    return Math.trunc(a / b);
  },
  /** v * 2, or errno 22 (EINVAL) when v < 0. */
  'Calculator.might_fail_with_errno': (v: number) => {
    if (v < 0) throw new ErrnoReply(EINVAL);
    return v * 2;
  },
};
