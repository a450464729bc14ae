import { actionSet } from '../core/validate.js';
import { ErrorCode, type OccamsError } from '../errors.js';
import type { CallOptions } from './call.js';

export const DEFAULT_RETRY_LIMIT = 2;

/**
 * The pool's answer to "may this call run twice": every call, none, a list
 * of actions, or a predicate (`'true'` / `'false'` from config, too). A
 * call's own `idempotent`, then its method's definition, come first
 * (README, Retries); when none says, a call is not idempotent.
 */
export type IdempotentOption = boolean | readonly string[] | ((action: string) => boolean);

/** What to do with a failed attempt. */
export const enum RetryVerdict {
  /** give the error to the caller */
  Fail,
  /** the call never left this process: try another server, free of charge */
  Move,
  /** the server may have run it: try another server, counted against `retryLimit` */
  Retry,
}

/** How far one attempt got (after grpc-js retrying-call: NOT_STARTED vs PROCESSED). */
export interface Attempt {
  /** handed to a connection's socket: the server may have run it */
  sent: boolean;
  /** streamed items already reached the caller: a retry would repeat them */
  delivered: boolean;
  /** retries (not moves) made so far */
  retries: number;
  /** moves made so far; bounded so that a call cannot circle forever */
  moves: number;
}

/**
 * The one rule for retrying, read by FailoverPool:
 * - a call that was never sent (refused by a pool that is down, closed or
 *   full, or waiting in a pool that lost its connection) moves to another
 *   server: always safe, not counted against `retryLimit`;
 * - a call that was sent is retried only after a retriable error
 *   (`rpc_unreachable`, `rpc_io_err`, `rpc_timeout`), only when it is
 *   idempotent (per call `idempotent`, else the `idempotent` option; default
 *   not), never when `retry: false`, never once streamed items reached the
 *   caller, and at most `retryLimit` times; an error that says the server
 *   never started it (`rpc_overloaded`, `neverRan`) is retried whether or
 *   not the call is idempotent, within the same `retryLimit`;
 * - user errors and every other framework error reach the caller as they are.
 */
export class RetryPolicy {
  private readonly isIdempotent: (action: string) => boolean;

  constructor(
    readonly retryLimit: number,
    idempotent: IdempotentOption = false,
    /** moves allowed per call; a few laps of the server list */
    readonly moveLimit = 8,
  ) {
    this.isIdempotent = actionSet(idempotent, 'idempotent', true);
  }

  idempotent(action: string | number, options: CallOptions | undefined): boolean {
    return options?.idempotent ?? this.isIdempotent(String(action));
  }

  verdict(err: OccamsError, attempt: Attempt, action: string | number, options: CallOptions | undefined): RetryVerdict {
    if (!attempt.sent) {
      if (!MOVABLE.has(err.code) || attempt.moves >= this.moveLimit) return RetryVerdict.Fail;
      return RetryVerdict.Move;
    }
    if (!err.retriable || attempt.delivered || options?.retry === false) return RetryVerdict.Fail;
    if (attempt.retries >= this.retryLimit || (!err.neverRan && !this.idempotent(action, options))) return RetryVerdict.Fail;
    return RetryVerdict.Retry;
  }
}

/** Errors of a call that never left: the route failed, not the call. */
const MOVABLE: ReadonlySet<string> = new Set([ErrorCode.Unreachable, ErrorCode.Io, ErrorCode.Timeout, ErrorCode.Closed, ErrorCode.QueueFull]);
