import { DecodeError, ErrorCode, type OccamsError, ReflectionOffError } from '../errors.js';
import type { ServerDescription } from '../protocol/description.js';
import { ACTION_DESCRIBE } from '../protocol/extensions.js';
import type { Caller, CallOptions } from './call.js';

/**
 * Asks a server what it serves (server reflection, docs/PROTOCOL.md): its
 * patterns, typed services, events, features and version. Fails with
 * ReflectionOffError when the server has reflection off (or is a plain v1
 * peer), with DecodeError when the answer is not a description, and with
 * the call's own error (unreachable, timeout) otherwise.
 */
export async function describeServer(caller: Pick<Caller, 'request'>, options?: Omit<CallOptions, 'event' | 'flow'>): Promise<ServerDescription> {
  let answer: unknown;
  try {
    answer = await caller.request(ACTION_DESCRIBE, undefined, { ...options, retry: options?.retry ?? true, idempotent: true });
  } catch (err) {
    const code = (err as OccamsError).code;
    if (code === ErrorCode.MethodNotFound || code === ErrorCode.ServiceNotFound || code === ErrorCode.UserError || code === ErrorCode.UserErrno) {
      throw new ReflectionOffError(undefined, { cause: err });
    }
    throw err;
  }
  const d = answer as Partial<ServerDescription> | null;
  if (d === null || typeof d !== 'object' || !Array.isArray(d.patterns) || !Array.isArray(d.services) || typeof d.version !== 'string') {
    throw new DecodeError('the answer to DESCRIBE is not a server description');
  }
  return { protocol: 1, extensions: 0, features: 0, server: 'unknown', events: [], ...d } as ServerDescription;
}
