import type { Observable } from 'rxjs';

import type { ServiceCallArgs } from '../client/index.js';
import { bindMethods, type MethodBinding } from '../client/internal.js';
import type { Codec } from '../codec/index.js';
import type { MethodDefinition, ServiceDefinition, StreamDefinition } from '../service/index.js';
import type { OccamsCallOptions, OccamsStreamOptions } from './call-options.js';

/**
 * What a typed client needs of its OccamsClient (`sendMethod`,
 * `requestMethod`, `streamMethod`): a port, so that this file and
 * occams-client.ts do not import each other.
 */
export interface MethodCaller {
  sendMethod<T>(b: MethodBinding, arg: unknown, options: OccamsCallOptions | undefined): Observable<T>;
  requestMethod<T>(b: MethodBinding, arg: unknown, options: OccamsCallOptions | undefined): Promise<T>;
  streamMethod<T>(b: MethodBinding, arg: unknown, options: OccamsStreamOptions | undefined): AsyncIterableIterator<T>;
}

/** A typed method: `calc.add([1, 2])` is a cold Observable of the result; `calc.add.request([1, 2])` a Promise of it. */
export interface OccamsMethodCall<A, R> {
  (...args: ServiceCallArgs<A, OccamsCallOptions>): Observable<R>;
  /** The Promise form (as `client.request()`). */
  request(...args: ServiceCallArgs<A, OccamsCallOptions>): Promise<R>;
}

/**
 * A typed stream: `calc.count(3)` is a cold Observable of the items;
 * `calc.count.stream(3)` an async iterator paced by its loop (as `client.stream()`).
 */
export interface OccamsStreamCall<A, I> {
  (...args: ServiceCallArgs<A, OccamsCallOptions>): Observable<I>;
  /** The pull form: at most `window` items buffered, leaving the loop early cancels the call. */
  stream(...args: ServiceCallArgs<A, OccamsStreamOptions>): AsyncIterableIterator<I>;
}

/**
 * The typed client of a service definition (`occamsClient.service(Calculator)`,
 * or injected: `@InjectOccamsService('CALC', Calculator)`). Calls go through
 * the OccamsClient as `send()` does (same pool, retries, dispatch hook,
 * per-call options). A method's declared error arrives as an instance of its
 * class (`err instanceof DivError`, the remote error as its `cause`); every
 * other failure stays an OccamsError.
 */
export type OccamsServiceClient<D extends ServiceDefinition> = {
  readonly [K in keyof D['methods']]: D['methods'][K] extends StreamDefinition<infer A, infer I, any>
    ? OccamsStreamCall<A, I>
    : D['methods'][K] extends MethodDefinition<infer A, infer R, any>
      ? OccamsMethodCall<A, R>
      : never;
};

/** Builds the typed client of `def` over `client` (see OccamsClient.service). */
export function occamsServiceClient<D extends ServiceDefinition>(client: MethodCaller, def: D, codec: Codec): OccamsServiceClient<D> {
  const typed: Record<string, unknown> = {};
  for (const b of bindMethods(def, codec)) typed[b.key] = b.kind === 'stream' ? streamCall(client, b) : methodCall(client, b);
  return Object.freeze(typed) as OccamsServiceClient<D>;
}

function methodCall(client: MethodCaller, b: MethodBinding): OccamsMethodCall<unknown, unknown> {
  const call = (arg?: unknown, options?: OccamsCallOptions) => client.sendMethod(b, arg, options);
  call.request = (arg?: unknown, options?: OccamsCallOptions) => client.requestMethod(b, arg, options);
  return call;
}

function streamCall(client: MethodCaller, b: MethodBinding): OccamsStreamCall<unknown, unknown> {
  const call = (arg?: unknown, options?: OccamsCallOptions) => client.sendMethod(b, arg, options);
  call.stream = (arg?: unknown, options?: OccamsStreamOptions) => client.streamMethod(b, arg, options);
  return call;
}
