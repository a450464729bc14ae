import { ErrorCode } from '../errors.js';
import type { Dispatch } from './dispatch.js';
import { type RpcLogger, consoleLogger } from './logger.js';
import type { ServerRequest } from './server-request.js';
import { ServiceIndex } from './service-index.js';

/**
 * Throw from a MethodDispatch handler to answer with a numeric user error
 * (flag 1; with `reason`, flag 6 to clients that speak it).
 */
export class ErrnoReply extends Error {
  constructor(
    readonly errno: number,
    readonly reason?: string,
  ) {
    super(reason ?? `errno ${errno}`);
  }
}

/** Throw from a MethodDispatch handler to answer with a user error: a string goes as UTF-8, anything else through the codec. */
export class ErrorReply extends Error {
  constructor(readonly error: unknown) {
    super(typeof error === 'string' ? error : 'user error');
  }
}

export type MethodHandler = (msg: any, req: ServerRequest) => unknown;

/**
 * A Dispatch from a plain table of functions, for the stream layer without
 * Nest: `new MethodDispatch({ 'Calc.add': ([a, b]) => a + b })`. Handlers
 * return a value, a promise, or an AsyncIterable (an async generator:
 * streamed, pulled as the client takes it); unknown actions get
 * `rpc_method_notfound`, or `rpc_service_notfound` for a `Service.method` of
 * a service with no method here (see ServiceIndex). `req.signal` aborts when
 * the request is cancelled.
 */
export class MethodDispatch implements Dispatch {
  private readonly methods = new Map<string | number, MethodHandler>();
  private readonly services = new ServiceIndex(() => this.methods.keys());

  constructor(
    methods: Record<string, MethodHandler> = {},
    private readonly logger: RpcLogger = consoleLogger,
  ) {
    for (const [name, fn] of Object.entries(methods)) this.methods.set(name, fn);
  }

  add(action: string | number, fn: MethodHandler): this {
    this.methods.set(action, fn);
    this.services.clear();
    return this;
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
    if (err instanceof ErrnoReply) req.errno(err.errno, err.reason);
    else if (err instanceof ErrorReply) {
      if (typeof err.error === 'string' || err.error instanceof Uint8Array) req.error(err.error);
      else req.errorValue(err.error);
    } else {
      const e = err as Error;
      this.logger.error(`method ${String(req.action)} failed: ${e?.message ?? String(err)}`, e?.stack);
      req.handlerThrew(err);
      req.internal(ErrorCode.Internal);
    }
  }
}

/** True for async generators, Node Readables and anything else with Symbol.asyncIterator. */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}
