import type { Codec } from '../codec/codec.js';
import { msgpackCodec } from '../codec/msgpack-codec.js';
import { optionNames, rejectUnknownKeys } from '../core/validate.js';
import type { OccamsError } from '../errors.js';
import { fromWireError } from '../service/error-wire.js';
import type { MethodDefinition, ServiceDefinition, StreamDefinition } from '../service/service-definition.js';
import { type Caller, type CallOptions, type ErrorMapper, PromiseHandler } from './call.js';
import { type StreamCallOptions, StreamIterator } from './stream-iterator.js';

/** Options of `serviceClient()`. */
export interface ServiceClientOptions {
  /** the codec the caller's connections use, to decode value-form errors; default msgpack */
  codec?: Codec;
}

export const SERVICE_CLIENT_OPTIONS = optionNames<ServiceClientOptions>({ codec: true });

/** Per-call options of a typed method: the stream layer's, without the ones the definition decides. */
export type ServiceCallOptions = Omit<CallOptions, 'event' | 'flow'>;

/** A typed call's parameters: the argument (optional when its type is void), then the per-call options. */
export type ServiceCallArgs<A, O> = [...([A] extends [void] ? [arg?: A] : [arg: A]), options?: O];

/**
 * The stream layer's typed client of a service definition: each method
 * returns a Promise of its result, each stream a StreamIterator of its
 * items (`for await`, paced by the loop). A declared error rejects as an
 * instance of its class; every other failure is an OccamsError, as with
 * `request()`.
 */
export type ServiceClient<D extends ServiceDefinition> = {
  readonly [K in keyof D['methods']]: D['methods'][K] extends StreamDefinition<infer A, infer I, any>
    ? (...args: ServiceCallArgs<A, StreamCallOptions>) => StreamIterator<I>
    : D['methods'][K] extends MethodDefinition<infer A, infer R, any>
      ? (...args: ServiceCallArgs<A, ServiceCallOptions>) => Promise<R>
      : never;
};

/**
 * One method of a definition, ready to call: what both typed clients (this
 * one and the Nest client's) need per call, computed once per client.
 */
export interface MethodBinding {
  readonly key: string;
  readonly kind: 'method' | 'stream';
  /** the action string, `Service.method` */
  readonly action: string;
  /** the definition's `idempotent`, when it says */
  readonly idempotent: boolean | undefined;
  /** makes the declared error class's instance of a failure, when the method declares one */
  readonly mapError: ErrorMapper | undefined;
}

/** The bindings of every method of `def`; value-form errors are decoded with `codec`. */
export function bindMethods(def: ServiceDefinition, codec: Codec): MethodBinding[] {
  return Object.entries(def.methods).map(([key, m]) => {
    const cls = m.errors;
    return {
      key,
      kind: m.kind,
      action: def.patterns[key]!,
      idempotent: m.idempotent,
      mapError: cls === undefined ? undefined : (err: OccamsError) => fromWireError(cls, err, codec),
    };
  });
}

/** An omitted argument travels as nil (Rust's `()`): a v1 request always carries a value. */
export function wireArg(arg: unknown): unknown {
  return arg === undefined ? null : arg;
}

/** The per-call options with the definition's `idempotent` when the call does not say. */
export function withDefinition<O extends { idempotent?: boolean }>(binding: MethodBinding, options: O | undefined): O | undefined {
  if (binding.idempotent === undefined || options?.idempotent !== undefined) return options;
  return { ...(options as O), idempotent: binding.idempotent };
}

/**
 * A typed client of `def` over any stream-layer caller (a ClientStream, a
 * ClientPool, a FailoverPool):
 *
 *   const calc = serviceClient(pool, Calculator);
 *   await calc.add([1, 2]);                       // 3
 *   for await (const n of calc.count(3)) { ... }  // 1, 2, 3
 *   await calc.div([1, 0]).catch((e) => e instanceof DivError); // true
 */
export function serviceClient<D extends ServiceDefinition>(caller: Pick<Caller, 'call'>, def: D, options?: ServiceClientOptions): ServiceClient<D> {
  rejectUnknownKeys(options, SERVICE_CLIENT_OPTIONS, 'serviceClient');
  const client: Record<string, unknown> = {};
  for (const b of bindMethods(def, options?.codec ?? msgpackCodec)) {
    client[b.key] =
      b.kind === 'stream'
        ? (arg?: unknown, o?: StreamCallOptions) => new StreamIterator(caller, b.action, wireArg(arg), withDefinition(b, o), b.mapError)
        : (arg?: unknown, o?: ServiceCallOptions) =>
            new Promise((resolve, reject) => void caller.call(b.action, wireArg(arg), new PromiseHandler(resolve, reject, b.mapError), withDefinition(b, o)));
  }
  return Object.freeze(client) as ServiceClient<D>;
}
