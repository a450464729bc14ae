import { isAsyncIterable } from '../core/async-iterable.js';
import { ErrorCode } from '../errors.js';
import type { ErrorClass } from '../service/error-class.js';
import type { MethodDefinition, ServiceDefinition, StreamDefinition } from '../service/service-definition.js';
import type { Dispatch } from './dispatch.js';
import { consoleLogger, type RpcLogger } from './logger.js';
import { type Describable, describeMethod, type DispatchDescription, mergeServices, type MethodDescription, sortedPatterns } from './reflection.js';
import type { ServerRequest } from './server-request.js';
import { ServiceIndex } from './service-index.js';
import { declaredReply, ErrnoReply, ErrorReply, replyWithUserError } from './user-replies.js';

export type MethodHandler = (msg: any, req: ServerRequest) => unknown;

/**
 * An implementation of a service definition for `MethodDispatch.addService`:
 * each method a function of its argument (and the request) giving its
 * result or a promise of it; each stream one giving an AsyncIterable (an
 * async generator). The compiler checks every method is there, with its types.
 */
export type ServiceHandlers<D extends ServiceDefinition> = {
  readonly [K in keyof D['methods']]: D['methods'][K] extends StreamDefinition<infer A, infer I, any>
    ? (arg: A, req: ServerRequest) => AsyncIterable<I>
    : D['methods'][K] extends MethodDefinition<infer A, infer R, any>
      ? (arg: A, req: ServerRequest) => R | Promise<R>
      : never;
};

/**
 * A Dispatch from a plain table of functions, for the stream layer without
 * Nest: `new MethodDispatch({ 'Calc.add': ([a, b]) => a + b })`. Handlers
 * return a value, a promise, or an AsyncIterable (an async generator:
 * streamed, pulled as the client takes it); unknown actions get
 * `rpc_method_notfound`, or `rpc_service_notfound` for a `Service.method` of
 * a service with no method here (see ServiceIndex). `req.signal` aborts when
 * the request is cancelled.
 */
export class MethodDispatch implements Dispatch, Describable {
  private readonly methods = new Map<string | number, MethodHandler>();
  /** each action served by addService, as reflection tells it (dropped when `add` replaces it) */
  private readonly described = new Map<string | number, { service: string; method: MethodDescription }>();
  private readonly services = new ServiceIndex(() => this.methods.keys());
  /** the declared error class of each action that has one (addService) */
  private readonly declared = new Map<string | number, ErrorClass>();

  constructor(
    methods: Record<string, MethodHandler> = {},
    private readonly logger: RpcLogger = consoleLogger,
  ) {
    for (const [name, fn] of Object.entries(methods)) this.methods.set(name, fn);
  }

  add(action: string | number, fn: MethodHandler): this {
    this.methods.set(action, fn);
    this.declared.delete(action);
    this.described.delete(action);
    this.services.clear();
    return this;
  }

  /**
   * Serves every method of `def` under its pattern (`Service.method`) with
   * `implementation`'s function of that name (called on it, so a class
   * instance works). A thrown instance of a method's declared error class
   * is answered in that class's wire form.
   */
  addService<D extends ServiceDefinition>(def: D, implementation: ServiceHandlers<D>): this {
    const impl = implementation as unknown as Record<string, (arg: unknown, req: ServerRequest) => unknown>;
    for (const key of Object.keys(def.methods)) {
      if (typeof impl[key] !== 'function') throw new TypeError(`MethodDispatch.addService(${def.name}): the implementation has no method ${key}`);
    }
    for (const [key, m] of Object.entries(def.methods)) {
      const action = def.patterns[key]!;
      this.add(action, (msg: unknown, req: ServerRequest) => impl[key]!(msg, req));
      if (m.errors !== undefined) this.declared.set(action, m.errors);
      this.described.set(action, { service: def.name, method: describeMethod(def, key) });
    }
    return this;
  }

  /** Reflection: every action served, and the typed services among them. */
  describe(): DispatchDescription {
    return {
      patterns: sortedPatterns(this.methods.keys()),
      events: [],
      services: mergeServices([...this.described.values()].map(({ service, method }) => ({ name: service, methods: [method] }))),
    };
  }

  dispatch(req: ServerRequest): void | Promise<void> {
    const fn = this.methods.get(req.action);
    if (fn === undefined) {
      req.internal(this.services.notFoundCode(req.action));
      return;
    }
    let result: unknown;
    try {
      result = fn(req.msg, req);
    } catch (err) {
      this.fail(req, err);
      return;
    }
    if (result !== null && typeof result === 'object') {
      if (typeof (result as Promise<unknown>).then === 'function') {
        return (result as Promise<unknown>).then(
          (value) => void req.ok(value),
          (err: unknown) => this.fail(req, err),
        );
      }
      if (isAsyncIterable(result)) {
        void req.streamFrom(result, (err) => this.fail(req, err));
        return;
      }
    }
    req.ok(result);
  }

  private fail(req: ServerRequest, err: unknown): void {
    if (err instanceof ErrnoReply || err instanceof ErrorReply) {
      replyWithUserError(req, err);
      return;
    }
    const declared = this.declared.get(req.action);
    if (declared !== undefined && err instanceof declared) {
      try {
        replyWithUserError(req, declaredReply(declared, err));
        return;
      } catch (e) {
        err = e; // toWire() gave what its form cannot carry: a bug, logged below
      }
    }
    const e = err as Error;
    this.logger.error(`method ${String(req.action)} failed: ${e?.message ?? String(err)}`, e?.stack);
    req.handlerThrew(err);
    req.internal(ErrorCode.Internal);
  }
}
