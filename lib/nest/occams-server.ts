import { Logger, type LoggerService } from '@nestjs/common';
import { type CustomTransportStrategy, type MessageHandler, RpcException, Server } from '@nestjs/microservices';
import { isObservable, type Observable, Subscription } from 'rxjs';

import { flag, isAsyncIterable, optionNames } from '../core/index.js';
import { ErrorCode } from '../errors.js';
import type { DispatchDescription } from '../protocol/index.js';
import { type Describable, type Dispatch, type RpcLogger, RpcServer, type RpcServerOptions, type ServerRequest } from '../server/index.js';
import { declaredReply, mergeServices, replyWithUserError, returnQuietly, RPC_SERVER_OPTIONS, ServiceIndex, sortedPatterns } from '../server/internal.js';
import type { ErrorClass } from '../service/index.js';
import { type Address, addressFromParts, type AddressLike } from '../transport/index.js';
import { DEFAULT_OCCAMS_HOST, DEFAULT_OCCAMS_PORT } from './defaults.js';
import { replyWithError } from './error-reply.js';
import { type HandlerShortcut, handlerShortcut, installHandlerShortcuts } from './handler-shortcut.js';
import { checkNestOptions } from './nest-options.js';
import { OccamsContext } from './occams-context.js';
import { DECLARED_ERRORS_EXTRA, SERVICE_METHOD_EXTRA, type ServiceMethodExtra } from './occams-service.js';
import { OCCAMS_TRANSPORT } from './occams-transport.js';
import { ResponseObserver } from './response-observer.js';

/** Distinct action strings whose handler lookup is cached. */
const MAX_CACHED_ROUTES = 10_000;

/**
 * OccamsServer's options: where it listens and its Nest-only ones, then
 * every RpcServerOptions option but `address` and `logger`, flat, in that
 * interface's groups (where and how it speaks, what one connection may hold,
 * connections, timeouts of a slow peer or handler, graceful close, the
 * concurrency limit, rarely changed). README, "Options of OccamsClient and
 * OccamsServer", has them in one table.
 */
export interface OccamsServerOptions extends Omit<RpcServerOptions, 'address' | 'logger'> {
  // ---- where it listens ----
  /** TCP host: a name or an IP address (a `host:port` is refused: the port goes in `port`); default 127.0.0.1 */
  host?: string;
  /** TCP port; 0 picks a free one; default 7100; a string of digits is read as the number; checked when constructed */
  port?: number | string;
  /** listen on a Unix socket path instead of TCP */
  path?: string;
  /** any address form (overrides host/port/path) */
  address?: AddressLike;
  // ---- Nest ----
  /** where the transport logs; default a Nest Logger named OccamsServer */
  logger?: LoggerService;
  /**
   * Calls handlers to which no pipe, guard, interceptor, pre-request hook
   * or custom parameter decorator applies by a shorter path than Nest's
   * per-request pipeline (same arguments, same exception filters; see
   * handler-shortcut.ts). Default true; false always takes Nest's pipeline.
   */
  fastPath?: boolean;
}

/** A pattern's handler, and its shortcut when nothing applies to it. */
interface Route {
  handler: MessageHandler;
  shortcut: HandlerShortcut<ServerRequest> | null;
}

/** The context a handler of `req` gets (`@Ctx()`), made only when it is asked for on the fast path. */
function contextOf(req: ServerRequest): OccamsContext {
  return new OccamsContext([typeof req.action === 'string' ? req.action : String(req.action), req]);
}

/** Every option OccamsServer takes; any other key is refused by name. */
export const OCCAMS_SERVER_OPTIONS = optionNames<OccamsServerOptions>({ ...RPC_SERVER_OPTIONS, host: true, port: true, path: true, fastPath: true });

export type OccamsServerStatus = 'listening' | 'draining' | 'closed';

export type OccamsServerEvents = {
  connection: (conn: unknown) => void;
  disconnect: (conn: unknown) => void;
  close: () => void;
};

/**
 * The Nest transport strategy:
 * `NestFactory.createMicroservice(AppModule, { strategy: new OccamsServer({ port }) })`.
 * Each request's action string is the Nest pattern; the handler lookup is
 * cached per action string, so the hot path is one Map lookup.
 */
export class OccamsServer extends Server<OccamsServerEvents, OccamsServerStatus> implements CustomTransportStrategy, Dispatch, Describable {
  override transportId = OCCAMS_TRANSPORT;
  private readonly options: OccamsServerOptions;
  private readonly fastPath: boolean;
  /** where to listen, from `address` / `path` / `host` and `port` (checked when constructed) */
  private readonly where: AddressLike;
  private readonly rpcLogger: RpcLogger;
  private rpc: RpcServer | undefined;
  private readonly routes = new Map<string, Route | null>();
  /** rpc_service_notfound vs rpc_method_notfound for misses; cleared with `routes`. */
  private readonly services = new ServiceIndex(() => this.messageHandlers.keys());
  private readonly pendingListeners: [string, (...args: any[]) => void][] = [];
  private readonly defaultStartHook = this.onProcessingStartHook;
  private readonly streamFailedBound = (req: ServerRequest, err: unknown): void => this.streamFailed(req, err);

  constructor(options: OccamsServerOptions = {}) {
    super();
    checkNestOptions(options, OCCAMS_SERVER_OPTIONS, 'OccamsServer');
    this.options = options;
    // a bad host or port is refused here, where it was written, not at listen()
    this.where = addressFromParts(options, DEFAULT_OCCAMS_HOST, DEFAULT_OCCAMS_PORT);
    this.fastPath = flag(options.fastPath, true, 'fastPath');
    // before Nest registers the handlers (createMicroservice / connectMicroservice take the strategy first)
    if (this.fastPath) installHandlerShortcuts();
    const logger = options.logger ?? new Logger('OccamsServer');
    (this as unknown as { logger: LoggerService }).logger = logger;
    this.rpcLogger = {
      log: (m) => logger.log(m),
      warn: (m) => logger.warn(m),
      error: (m, stack) => logger.error(m, stack),
    };
  }

  /** The bound address once listening (port 0 resolved). */
  get address(): Address | undefined {
    return this.rpc?.address;
  }

  listen(callback: (err?: unknown, ...optionalParams: unknown[]) => void): void {
    const { host: _host, port: _port, path: _path, address: _address, logger: _logger, fastPath: _fastPath, ...rest } = this.options;
    const where = this.where;
    const rpc = new RpcServer(this, { ...rest, logger: this.rpcLogger });
    this.rpc = rpc;
    for (const [event, cb] of this.pendingListeners) rpc.on(event, cb);
    this.pendingListeners.length = 0;
    rpc.on('close', () => this._status$.next('closed'));
    rpc.listen(where).then(
      () => {
        this._status$.next('listening');
        callback();
      },
      (err: unknown) => {
        this.logger.error(`cannot listen on ${JSON.stringify(where)}: ${(err as Error).message}`);
        callback(err);
      },
    );
  }

  /** Graceful: stops accepting, answers what is in flight (bounded by closeWait), then closes. */
  async close(): Promise<void> {
    if (!this.rpc) return;
    this._status$.next('draining');
    await this.rpc.close();
  }

  on<K extends keyof OccamsServerEvents>(event: K, callback: OccamsServerEvents[K]): void {
    if (this.rpc) this.rpc.on(event, callback as (...args: any[]) => void);
    else this.pendingListeners.push([event, callback as (...args: any[]) => void]);
  }

  unwrap<T = RpcServer>(): T {
    if (!this.rpc) throw new Error('Not initialized. Please call the "listen"/"startAllMicroservices" method before accessing the server.');
    return this.rpc as T;
  }

  override addHandler(pattern: any, callback: MessageHandler, isEventHandler = false, extras: Record<string, any> = {}): void {
    super.addHandler(pattern, callback, isEventHandler, extras);
    this.routes.clear();
    this.services.clear();
  }

  /** Dispatch: one request from the stream layer. */
  dispatch(req: ServerRequest): void {
    const pattern = typeof req.action === 'string' ? req.action : String(req.action);
    const route = this.route(pattern);
    if (req.isEvent || route?.handler.isEventHandler) {
      this.runEvent(pattern, route?.handler ?? null, req, contextOf(req));
      return;
    }
    if (!route) {
      req.internal(this.services.notFoundCode(pattern));
      return;
    }
    const handler = route.handler;
    if (this.onProcessingStartHook === this.defaultStartHook && this.onProcessingEndHook === undefined) {
      if (route.shortcut !== null) this.runShortcut(route.shortcut, req);
      else void this.runRequest(handler, req, contextOf(req), undefined);
    } else {
      const ctx = contextOf(req);
      this.runWithProcessingHooks(ctx, (runEndHook) => this.runRequest(handler, req, ctx, runEndHook));
    }
  }

  private route(pattern: string): Route | null {
    let route = this.routes.get(pattern);
    if (route === undefined) {
      const handler = this.getHandlerByPattern(pattern);
      const shortcut = handler !== null && !handler.isEventHandler && this.fastPath ? handlerShortcut(handler, contextOf) : null;
      route = handler === null ? null : { handler, shortcut };
      if (this.routes.size < MAX_CACHED_ROUTES) this.routes.set(pattern, route);
    }
    return route;
  }

  /**
   * Reflection (the `reflection` option): the patterns of the handlers Nest
   * registered, answered or as events, and the typed services
   * (`@OccamsService`) among them.
   */
  describe(): DispatchDescription {
    const patterns: string[] = [];
    const events: string[] = [];
    const services: { name: string; methods: ServiceMethodExtra['method'][] }[] = [];
    for (const [pattern, handler] of this.messageHandlers) {
      (handler.isEventHandler ? events : patterns).push(pattern);
      const described = (handler.extras as Record<symbol, ServiceMethodExtra | undefined> | undefined)?.[SERVICE_METHOD_EXTRA];
      if (described !== undefined && !handler.isEventHandler) services.push({ name: described.service, methods: [described.method] });
    }
    return { patterns: sortedPatterns(patterns), events: sortedPatterns(events), services: mergeServices(services) };
  }

  /** True when requests for `pattern` take the shortcut past Nest's pipeline (nothing applies to its handler). */
  isFastPath(pattern: string): boolean {
    return this.route(pattern)?.shortcut != null;
  }

  /** A handler with nothing applied: its result settles `req` in this very turn when it is a plain value. */
  private runShortcut(shortcut: HandlerShortcut<ServerRequest>, req: ServerRequest): void {
    const result = shortcut.invoke(req.msg, req);
    if (result instanceof Promise) {
      result.then((value: unknown) => this.settleResult(req, value, undefined));
      return;
    }
    this.settleResult(req, result, undefined);
  }

  /**
   * Runs a handler and settles `req` with what it returns: a value (or a
   * promise of one), an Observable (subscribed; unsubscribed if the request
   * is cancelled, times out or its connection goes away), or an
   * AsyncIterable (pulled as the client takes items; `return()`ed on cancel).
   */
  private async runRequest(handler: MessageHandler, req: ServerRequest, ctx: OccamsContext, endHook: (() => void) | undefined): Promise<void> {
    let result: unknown;
    try {
      result = await handler(req.msg, ctx);
    } catch (err) {
      replyWithError(req, err);
      endHook?.();
      return;
    }
    this.settleResult(req, result, endHook);
  }

  /** What a handler returned (awaited), settling `req`. */
  private settleResult(req: ServerRequest, result: unknown, endHook: (() => void) | undefined): void {
    if (req.settled) {
      // ended while the handler ran (cancel, deadline, disconnect): start nothing
      if (isAsyncIterable(result) && !isObservable(result)) returnQuietly(result[Symbol.asyncIterator]());
      endHook?.();
      return;
    }
    if (isObservable(result)) {
      const observer = new ResponseObserver(req, endHook, this.streamFailedBound);
      const teardown = new Subscription();
      req.onCancel(() => teardown.unsubscribe());
      teardown.add((result as Observable<unknown>).subscribe(observer));
      observer.subscribed();
      return;
    }
    if (isAsyncIterable(result)) {
      void req.streamFrom(result, (err) => this.streamFailed(req, err)).then(endHook);
      return;
    }
    req.ok(result);
    endHook?.();
  }

  /**
   * An AsyncIterable threw: no exception filter saw it, so an RpcException
   * is shaped the way Nest's filter would (its message or errno reaches the
   * client), an instance of the method's declared error class (@OccamsService)
   * goes in its wire form; anything else is logged and answered rpc_internal_err.
   */
  private streamFailed(req: ServerRequest, err: unknown): void {
    if (err instanceof RpcException) {
      const e = err.getError();
      replyWithError(req, e !== null && typeof e === 'object' ? e : { status: 'error', message: e });
      return;
    }
    const extras = this.route(String(req.action))?.handler.extras as Record<symbol, ErrorClass | undefined> | undefined;
    const declared = extras?.[DECLARED_ERRORS_EXTRA];
    if (declared !== undefined && err instanceof declared) {
      try {
        replyWithUserError(req, declaredReply(declared, err));
        return;
      } catch (wrongForm) {
        err = wrongForm; // toWire() gave what its form cannot carry: logged below
      }
    }
    const e = err as Error;
    this.logger.error(`stream of ${String(req.action)} failed: ${e?.message ?? String(err)}`, e?.stack);
    req.handlerThrew(err);
    req.internal(ErrorCode.Internal);
  }

  private runEvent(pattern: string, handler: MessageHandler | null, req: ServerRequest, ctx: OccamsContext): void {
    if (!handler) {
      this.logger.error(`There is no matching event handler defined in the remote service. Event pattern: ${pattern}`);
      req.ok();
      return;
    }
    this.handleEvent(pattern, { pattern, data: req.msg, metadata: req.meta as Record<string, string> | undefined }, ctx).then(
      () => req.ok(),
      (err: unknown) => {
        this.logger.error(`event handler for ${pattern} failed: ${(err as Error)?.message ?? String(err)}`);
        req.ok();
      },
    );
  }
}
