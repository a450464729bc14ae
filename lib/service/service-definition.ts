import { optionNames, rejectUnknownKeys } from '../core/validate.js';
import { InvalidOptionError } from '../errors.js';
import { checkErrorClass, type ErrorClass } from './error-class.js';

/**
 * A service written once and imported by both sides, as a gRPC service or
 * a tarpc / occams `#[service]` trait: its name and its methods, each with
 * its argument type, its result type (one value, or a stream of items) and
 * its error type.
 *
 *   export const Calculator = defineService('Calculator', {
 *     add: method<[number, number], number>(),
 *     div: method<[number, number], number, DivError>({ errors: DivError }),
 *     count: stream<number, number>(),
 *   });
 *
 * On the wire a method is the action string `Service.method`
 * (`Calculator.add`), so plain v1 peers, the Rust crate's services and
 * hand-written `@MessagePattern('Calculator.add')` handlers interoperate
 * unchanged. The argument is one value (a tuple for several).
 */

/** Carries a definition's types; never present at run time. */
declare const signature: unique symbol;

/** Options of `method()` and `stream()`. */
export interface MethodOptions<E extends Error = Error> {
  /** the method's name on the wire when it differs from its key (a Rust peer's `snake_case` name) */
  name?: string;
  /** the method's declared error type (see ErrorClass); other failures stay OccamsErrors */
  errors?: ErrorClass<E>;
  /** safe to run twice: clients may retry it on another server after a timeout (per-call `idempotent` overrides) */
  idempotent?: boolean;
}

/** Every option of `method()` / `stream()`; any other key is refused by name. */
export const METHOD_OPTIONS = optionNames<MethodOptions>({ name: true, errors: true, idempotent: true });

interface DefinitionBase {
  /** the wire name given in the options, if any (else the key) */
  readonly name: string | undefined;
  readonly errors: ErrorClass | undefined;
  readonly idempotent: boolean | undefined;
}

/** A method that answers one value of type R (or fails with E). */
export interface MethodDefinition<A = any, R = any, E extends Error = never> extends DefinitionBase {
  readonly kind: 'method';
  readonly [signature]?: { arg: A; result: R; error: E };
}

/** A method that answers a stream of I items (or fails with E, before or between items). */
export interface StreamDefinition<A = any, I = any, E extends Error = never> extends DefinitionBase {
  readonly kind: 'stream';
  readonly [signature]?: { arg: A; item: I; error: E };
}

export type AnyMethodDefinition = MethodDefinition<any, any, any> | StreamDefinition<any, any, any>;

export type ServiceMethods = { readonly [key: string]: AnyMethodDefinition };

export interface ServiceDefinition<N extends string = string, M extends ServiceMethods = ServiceMethods> {
  readonly name: N;
  readonly methods: M;
  /** each method's pattern, `Service.method`: the action string it travels as */
  readonly patterns: { readonly [K in keyof M]: string };
}

/** The argument type of a method or stream definition. */
export type ArgOf<M> = M extends MethodDefinition<infer A, any, any> ? A : M extends StreamDefinition<infer A, any, any> ? A : never;
/** The result type of a method definition, the item type of a stream definition. */
export type ResultOf<M> = M extends MethodDefinition<any, infer R, any> ? R : M extends StreamDefinition<any, infer I, any> ? I : never;
/** The declared error type of a method or stream definition (never when it declares none). */
export type ErrorOf<M> = M extends MethodDefinition<any, any, infer E> ? E : M extends StreamDefinition<any, any, infer E> ? E : never;

/** With an error type argument, `errors` must be given, and be that class. */
type OptionsFor<E extends Error> = [E] extends [never] ? [options?: MethodOptions] : [options: MethodOptions<E> & { errors: ErrorClass<E> }];

/*
 * The type arguments are never inferred from where the definition is used
 * (NoInfer): `method()` inside `defineService` is void to void with no
 * declared error, as it is anywhere else, not `any`.
 */

/** A method answering one value: `method<[number, number], number, DivError>({ errors: DivError })`. */
export function method<A = void, R = void, E extends Error = never>(...[options]: OptionsFor<E>): MethodDefinition<NoInfer<A>, NoInfer<R>, NoInfer<E>> {
  return Object.freeze({ kind: 'method' as const, ...checkOptions(options) });
}

/** A method answering a stream of items: `stream<number, number>()` (an Observable or AsyncIterable on both sides). */
export function stream<A = void, I = unknown, E extends Error = never>(...[options]: OptionsFor<E>): StreamDefinition<NoInfer<A>, NoInfer<I>, NoInfer<E>> {
  return Object.freeze({ kind: 'stream' as const, ...checkOptions(options) });
}

function checkOptions(options: MethodOptions | undefined): DefinitionBase {
  rejectUnknownKeys(options, METHOD_OPTIONS, 'method()');
  const { name, errors, idempotent } = options ?? {};
  if (name !== undefined && (typeof name !== 'string' || name === '')) throw new InvalidOptionError('name', `expected a non-empty string, got ${String(name)}`);
  if (idempotent !== undefined && typeof idempotent !== 'boolean') throw new InvalidOptionError('idempotent', `expected a boolean, got ${String(idempotent)}`);
  return { name, errors: errors === undefined ? undefined : checkErrorClass(errors, 'errors'), idempotent };
}

/**
 * A service definition: `name` (no dot: the Rust crate splits an action at
 * its first dot into service and method) and its methods, built with
 * `method()` and `stream()`.
 */
export function defineService<const N extends string, M extends ServiceMethods>(name: N, methods: M): ServiceDefinition<N, M> {
  if (typeof name !== 'string' || name === '' || name.includes('.')) {
    throw new InvalidOptionError('name', `a service name is a non-empty string without '.', got ${JSON.stringify(name)}`);
  }
  const patterns: Record<string, string> = {};
  const seen = new Map<string, string>();
  for (const [key, def] of Object.entries(methods ?? {})) {
    if (def === null || typeof def !== 'object' || (def.kind !== 'method' && def.kind !== 'stream')) {
      throw new InvalidOptionError(`${name}.${key}`, 'expected method() or stream()');
    }
    const wire = def.name ?? key;
    const other = seen.get(wire);
    if (other !== undefined) throw new InvalidOptionError(`${name}.${key}`, `travels as ${name}.${wire}, as ${name}.${other} does`);
    seen.set(wire, key);
    patterns[key] = `${name}.${wire}`;
  }
  return Object.freeze({ name, methods: Object.freeze({ ...methods }), patterns: Object.freeze(patterns) }) as ServiceDefinition<N, M>;
}
