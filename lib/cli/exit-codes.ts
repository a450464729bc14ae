import { ErrorCode, OccamsError } from '../stream/index.js';

/**
 * The CLI's exit codes, one per class of failure, so scripts can tell them
 * apart (`nestjs-occams call ... || case $? in 3) ...`).
 */
export const ExitCode = {
  Ok: 0,
  /** the server answered an error: the handler's (user_error, user_errno) or its own (rpc_method_notfound, rpc_decode, ...) */
  RemoteError: 1,
  /** bad command line or bad JSON: nothing was sent */
  Usage: 2,
  /** no server could be reached, or the connection was lost (rpc_unreachable, rpc_io_err, TLS refused) */
  Unreachable: 3,
  /** no answer in time (rpc_timeout) */
  Timeout: 4,
  /** the server does not answer reflection (list, describe) */
  NoReflection: 5,
  /** stopped by Ctrl-C (SIGINT): 128 + 2, as shells report it */
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A command line the CLI refuses before sending anything. */
export class UsageError extends Error {}

/** The exit code for what a command failed with. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof UsageError) return ExitCode.Usage;
  if (!(err instanceof OccamsError)) return ExitCode.Unreachable; // a socket or TLS error outside a call
  switch (err.code) {
    case ErrorCode.Timeout:
      return ExitCode.Timeout;
    case ErrorCode.Unreachable:
    case ErrorCode.Io:
    case ErrorCode.Closed:
    case ErrorCode.GoingAway:
      return ExitCode.Unreachable;
    case ErrorCode.InvalidOption:
      return ExitCode.Usage;
    case ErrorCode.ReflectionOff:
      return ExitCode.NoReflection;
    default:
      return ExitCode.RemoteError;
  }
}
