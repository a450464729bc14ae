import { createRequire } from 'node:module';

import { catchError, isObservable, type Observable } from 'rxjs';

/**
 * A shorter path into a Nest message handler to which nothing applies.
 *
 * Nest runs every request through the same pipeline whatever applies to
 * the handler: `pipesFn` (even with no pipe, for the default `@Payload`
 * metadata), the guards and interceptors steps, `RpcProxy`: about seven
 * promises and ten microtask turns. When Nest's OWN resolution of the
 * handler's enhancers (the lists its context creators return, global and
 * local) finds no pipe, guard, interceptor or pre-request hook, no custom
 * parameter decorator and no parameter pipe, for a handler of static scope,
 * that pipeline does nothing but compute the arguments and catch errors.
 * The shortcut does exactly that: arguments from Nest's own extractors,
 * the method called on its instance, a throw, rejection or Observable
 * error handed to Nest's own exception handler for that handler (so
 * exception filters, global and local, still apply), through `RpcProxy`'s
 * own `handleError`. What differs is only when the method runs (in the
 * same turn instead of a few microtasks later).
 *
 * How the handler is known: a message handler Nest registers with a
 * transport is the function `RpcContextCreator#create` returns. That method
 * is wrapped once (prototype, idempotent) to remember its arguments by the
 * function it returned; nothing else changes for anyone. A handler the
 * wrapper did not see (request-scoped, an event handler, another copy of
 * Nest) has no shortcut and goes the usual way.
 *
 * The wrapper is installed when the first OccamsServer that may use it is
 * made (`installHandlerShortcuts`), before Nest registers its handlers,
 * never merely because the package was imported (an HTTP app that only
 * calls out leaves Nest as it is). Nest's internals it reads (not public
 * API) are loaded then, synchronously, in a try: should a Nest release move
 * them, there is no shortcut, and everything else works as before.
 */
export interface HandlerShortcut<S> {
  /**
   * Runs the handler as Nest would with nothing applied. Returns what Nest's
   * pipeline would have resolved to: a value, a promise of one, or an
   * Observable (errors already through the exception filters). Never throws.
   * The context is made from `source` only when a parameter takes it
   * (`@Ctx()`) or an exception filter is handed it.
   */
  invoke(data: unknown, source: S): unknown;
}

/** Makes the handler's context (Nest's second argument) for a request. */
export type ContextMaker<S> = (source: S) => unknown;

type CreateArgs = [
  instance: any,
  callback: (...args: unknown[]) => unknown,
  moduleKey: string,
  methodName: string,
  contextId?: unknown,
  inquirerId?: string,
  defaultCallMetadata?: unknown,
  reportUnhandledErrors?: boolean,
];

interface Recipe {
  creator: any;
  args: CreateArgs;
}

const PATCHED = Symbol.for('nestjs-occams.rpc-context-creator.recipes');
type Patched = { [PATCHED]?: WeakMap<object, Recipe> };

/** What the shortcut reads of Nest that Nest does not export publicly. */
interface NestInternals {
  STATIC_CONTEXT: unknown;
  RpcContextCreator: { prototype: object };
  DEFAULT_CALLBACK_METADATA: unknown;
  PAYLOAD: unknown;
}

/** Nest's internals, loaded once; null when they cannot be (then there is no shortcut). */
let internals: NestInternals | null | undefined;

function nestInternals(): NestInternals | null {
  if (internals !== undefined) return internals;
  try {
    const load = createRequire(import.meta.url);
    const core = load('@nestjs/core/internal') as { STATIC_CONTEXT?: unknown };
    const creator = load('@nestjs/microservices/context/rpc-context-creator.js') as { RpcContextCreator?: { prototype: object } };
    const metadata = load('@nestjs/microservices/context/rpc-metadata-constants.js') as { DEFAULT_CALLBACK_METADATA?: unknown };
    const paramtype = load('@nestjs/microservices/enums/rpc-paramtype.enum.js') as { RpcParamtype?: { PAYLOAD?: unknown } };
    const found = {
      STATIC_CONTEXT: core.STATIC_CONTEXT,
      RpcContextCreator: creator.RpcContextCreator,
      DEFAULT_CALLBACK_METADATA: metadata.DEFAULT_CALLBACK_METADATA,
      PAYLOAD: paramtype.RpcParamtype?.PAYLOAD,
    };
    internals = Object.values(found).every((v) => v !== undefined) ? (found as NestInternals) : null;
  } catch {
    internals = null;
  }
  return internals;
}

/**
 * Installs the wrapper of `RpcContextCreator#create` (once per process):
 * call before Nest registers the handlers that may take the shortcut (an
 * OccamsServer's constructor does). False when Nest's internals could not
 * be read: no shortcut, the usual path.
 */
export function installHandlerShortcuts(): boolean {
  return recipes() !== undefined;
}

/** Wraps `RpcContextCreator#create` once per process, so that handlers can be described later. */
function recipes(): WeakMap<object, Recipe> | undefined {
  const nest = nestInternals();
  if (nest === null) return undefined;
  const proto = nest.RpcContextCreator.prototype as unknown as Patched & { create: (...args: unknown[]) => unknown };
  let map = proto[PATCHED];
  if (map !== undefined) return map;
  const original = proto.create;
  if (typeof original !== 'function') return undefined;
  map = new WeakMap();
  const seen = map;
  proto.create = function create(this: unknown, ...args: unknown[]): unknown {
    const handler = original.apply(this, args);
    if (typeof handler === 'function') seen.set(handler, { creator: this, args: args as CreateArgs });
    return handler;
  };
  Object.defineProperty(proto, PATCHED, { value: map });
  return map;
}

/** The shortcut for `handler`, or null when anything applies to it (or it cannot be told). */
export function handlerShortcut<S>(handler: object, context: ContextMaker<S>): HandlerShortcut<S> | null {
  const nest = nestInternals();
  if (nest === null) return null;
  const recipe = (nest.RpcContextCreator.prototype as Patched)[PATCHED]?.get(handler); // only an OccamsServer installs it
  if (recipe === undefined) return null;
  try {
    return describe(recipe, context, nest);
  } catch {
    return null; // a Nest whose internals read otherwise: the usual path
  }
}

function describe<S>({ creator, args }: Recipe, context: ContextMaker<S>, nest: NestInternals): HandlerShortcut<S> | null {
  const [instance, callback, moduleKey, methodName, contextId = nest.STATIC_CONTEXT, inquirerId, defaultCallMetadata = nest.DEFAULT_CALLBACK_METADATA, reportUnhandledErrors] =
    args;
  if (contextId !== nest.STATIC_CONTEXT || inquirerId !== undefined || reportUnhandledErrors === true) return null;
  const config = creator.applicationConfig;
  for (const hooks of ['getGlobalPreRequestHooks', 'getGlobalRequestPipes', 'getGlobalRequestGuards', 'getGlobalRequestInterceptors']) {
    if (typeof config?.[hooks] !== 'function' || config[hooks]().length !== 0) return null;
  }
  for (const enhancers of [creator.pipesContextCreator, creator.guardsContextCreator, creator.interceptorsContextCreator]) {
    const applied: unknown = enhancers.create(instance, callback, moduleKey, contextId, inquirerId);
    if (!Array.isArray(applied) || applied.length !== 0) return null;
  }
  const { argsLength, getParamsMetadata } = creator.getMetadata(instance, methodName, defaultCallMetadata, 'rpc');
  const params: { index: number; extractValue: (...a: unknown[]) => unknown; type: unknown; pipes: unknown[] }[] = getParamsMetadata(moduleKey) ?? [];
  for (const p of params) {
    // a custom decorator's value may be a promise Nest awaits; a parameter pipe applies
    if (typeof p.type !== 'number' || !Array.isArray(p.pipes) || p.pipes.length !== 0 || typeof p.extractValue !== 'function') return null;
  }
  const exceptions = creator.exceptionFiltersContext.create(instance, callback, moduleKey, contextId, inquirerId);
  const proxy = creator.rpcProxy;
  if (typeof exceptions?.handle !== 'function' || typeof proxy?.handleError !== 'function') return null;
  const failed = (err: unknown, data: unknown, ctx: unknown): unknown => proxy.handleError(exceptions, [data, ctx], err, false);
  const settled = (value: unknown, data: unknown, ctx: unknown): unknown =>
    isObservable(value) ? (value as Observable<unknown>).pipe(catchError((err: unknown) => failed(err, data, ctx) as Observable<never>)) : value;
  const call = argumentsOf(params, argsLength as number, instance, callback);
  // no parameter metadata at all (Nest's default is the payload alone): the method is called with (data, ctx)
  const takesContext = params.length === 0 || params.some((p) => p.type !== nest.PAYLOAD);
  return {
    invoke(data: unknown, source: S): unknown {
      const ctx = takesContext ? context(source) : undefined;
      let result: unknown;
      try {
        result = call(data, ctx);
      } catch (err) {
        return failed(err, data, ctx ?? context(source));
      }
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
        return Promise.resolve(result).then(
          (value) => (isObservable(value) ? settled(value, data, ctx ?? context(source)) : value),
          (err: unknown) => failed(err, data, ctx ?? context(source)),
        );
      }
      return isObservable(result) ? settled(result, data, ctx ?? context(source)) : result;
    },
  };
}

/** The method called with the arguments Nest's extractors give (the payload alone, by default). */
function argumentsOf(
  params: { index: number; extractValue: (...a: unknown[]) => unknown }[],
  argsLength: number,
  instance: unknown,
  callback: (...args: unknown[]) => unknown,
): (data: unknown, ctx: unknown) => unknown {
  if (params.length === 0) return (data, ctx) => callback.call(instance, data, ctx);
  const only = params.length === 1 && argsLength === 1 && params[0]!.index === 0 ? params[0]!.extractValue : undefined;
  if (only !== undefined) return (data, ctx) => callback.call(instance, only(data, ctx));
  return (data, ctx) => {
    const args = new Array<unknown>(argsLength);
    for (let i = 0; i < argsLength; i++) args[i] = undefined;
    for (const p of params) args[p.index] = p.extractValue(data, ctx);
    return callback.apply(instance, args);
  };
}
