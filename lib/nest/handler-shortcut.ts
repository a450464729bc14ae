import { STATIC_CONTEXT } from '@nestjs/core/internal';
import { RpcContextCreator } from '@nestjs/microservices/context/rpc-context-creator.js';
import { DEFAULT_CALLBACK_METADATA } from '@nestjs/microservices/context/rpc-metadata-constants.js';
import { RpcParamtype } from '@nestjs/microservices/enums/rpc-paramtype.enum.js';
import { isObservable, type Observable, catchError } from 'rxjs';

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

type CreateArgs = [instance: any, callback: (...args: unknown[]) => unknown, moduleKey: string, methodName: string, contextId?: unknown, inquirerId?: string, defaultCallMetadata?: unknown, reportUnhandledErrors?: boolean];

interface Recipe {
  creator: any;
  args: CreateArgs;
}

const PATCHED = Symbol.for('nestjs-occams.rpc-context-creator.recipes');
type Patched = { [PATCHED]?: WeakMap<object, Recipe> };

/** Wraps `RpcContextCreator#create` once per process, so that handlers can be described later. */
function recipes(): WeakMap<object, Recipe> | undefined {
  const proto = RpcContextCreator.prototype as unknown as Patched & { create: (...args: unknown[]) => unknown };
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

// Installed when this module loads: before any Nest application registers its handlers.
recipes();

/** The shortcut for `handler`, or null when anything applies to it (or it cannot be told). */
export function handlerShortcut<S>(handler: object, context: ContextMaker<S>): HandlerShortcut<S> | null {
  const recipe = recipes()?.get(handler);
  if (recipe === undefined) return null;
  try {
    return describe(recipe, context);
  } catch {
    return null; // a Nest whose internals read otherwise: the usual path
  }
}

function describe<S>({ creator, args }: Recipe, context: ContextMaker<S>): HandlerShortcut<S> | null {
  const [instance, callback, moduleKey, methodName, contextId = STATIC_CONTEXT, inquirerId, defaultCallMetadata = DEFAULT_CALLBACK_METADATA, reportUnhandledErrors] = args;
  if (contextId !== STATIC_CONTEXT || inquirerId !== undefined || reportUnhandledErrors === true) return null;
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
  const takesContext = params.length === 0 || params.some((p) => p.type !== RpcParamtype.PAYLOAD);
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
