import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { InvalidMessageException } from '@nestjs/microservices/errors/invalid-message.exception.js';
import { config as rxjsConfig, Observable, Subscriber, type Subscription, type TeardownLogic } from 'rxjs';

import {
  type CallHandle,
  type CallOptions,
  type ClientPool,
  type ErrorMapper,
  FailoverPool,
  type FailoverPoolOptions,
  type PoolState,
  type ResponseHandler,
  StreamIterator,
} from '../client/index.js';
import { FAILOVER_POOL_OPTIONS, type MethodBinding, PromiseHandler, wireArg } from '../client/internal.js';
import { msgpackCodec } from '../codec/index.js';
import { actionSet, optionNames } from '../core/index.js';
import type { OccamsError } from '../errors.js';
import type { ServiceDefinition } from '../service/index.js';
import { addressFromParts, type AddressLike } from '../transport/index.js';
import type { OccamsCallOptions, OccamsStreamOptions } from './call-options.js';
import { DEFAULT_OCCAMS_HOST, DEFAULT_OCCAMS_PORT } from './defaults.js';
import { checkNestOptions } from './nest-options.js';
import { type OccamsServiceClient, occamsServiceClient } from './occams-service-client.js';

/**
 * OccamsClient's options: where the servers are, then every FailoverPool
 * option, flat, in the groups their interfaces give them (FailoverPoolOptions:
 * picking and retries, failing servers, finding servers; ClientPoolOptions:
 * how many connections, reconnecting; ClientStreamOptions: the window and a
 * call's timeout, connecting, a server that stops answering, rarely changed).
 * README, "Options of OccamsClient and OccamsServer", has them in one table.
 */
export interface OccamsClientOptions extends FailoverPoolOptions {
  // ---- where the servers are ----
  /** TCP host: a name or an IP address (a `host:port` is refused: the port goes in `port`); default 127.0.0.1 */
  host?: string;
  /** TCP port; default 7100; a string of digits is read as the number (env, ConfigService) */
  port?: number | string;
  /** a Unix socket path instead of host/port */
  path?: string;
  /** one address in any form (`host:port`, `unix:/path`, a host name to resolve) */
  address?: AddressLike;
  /** several servers: failover / round robin across them */
  addresses?: AddressLike[];
}

/** Every option OccamsClient takes (its own and the pool's); any other key is refused by name. */
export const OCCAMS_CLIENT_OPTIONS = optionNames<OccamsClientOptions>({
  ...FAILOVER_POOL_OPTIONS,
  host: true,
  port: true,
  path: true,
  address: true,
  addresses: true,
});

export type OccamsClientStatus = 'connected' | 'disconnected' | 'reconnecting';

export type OccamsClientEvents = {
  state: (pool: ClientPool, next: PoolState, prev: PoolState) => void;
  addresses: (list: unknown[]) => void;
  resolveError: (err: Error) => void;
  resolveRecovered: (err: Error) => void;
};

/**
 * The Nest client proxy for occams servers. `send()` returns a cold
 * Observable (each subscription is one request, with its own deadline and
 * its own run of the `setOnDispatchHook` hook, as Nest's ClientProxy;
 * unsubscribing cancels it, and streamed results arrive as many `next`s);
 * `emit()` sends an event at once (hot, as Nest's: the hook runs once).
 * Errors are OccamsError subclasses: `code`, `retriable`, and for handler
 * errors `errno` or the message / decoded `error` value.
 */
// The status parameter stays ClientProxy's `string` (its `_status$` is a
// ReplaySubject, invariant in it), so that `typeof OccamsClient` is a
// `Type<ClientProxy>`, as ClientsModule's `customClass` wants; `status`
// narrows it again.
export class OccamsClient extends ClientProxy<OccamsClientEvents> implements OnApplicationShutdown {
  private readonly addresses: AddressLike[];
  private readonly poolOptions: FailoverPoolOptions;
  /**
   * The connections, or undefined once closed: the next `send()`,
   * `connect()` or `unwrap()` opens a new pool (as Nest's own clients
   * reconnect after `close()`).
   */
  private pool: FailoverPool | undefined;
  /** listeners added with `on()`, attached to every pool this client opens */
  private readonly listeners: [keyof OccamsClientEvents, (...args: any[]) => void][] = [];
  private readonly isIdempotent: (pattern: string) => boolean;
  private wasConnected = false;
  private readonly logger = new Logger('OccamsClient');
  /** typed clients made by `service()`, one per definition */
  private readonly typed = new WeakMap<ServiceDefinition, unknown>();

  constructor(options: OccamsClientOptions = {}) {
    super();
    checkNestOptions(options, OCCAMS_CLIENT_OPTIONS, 'OccamsClient');
    const { host, port, path, address, addresses, idempotent, ...poolOptions } = options;
    this.addresses = addresses ?? [addressFromParts({ host, port, path, address }, DEFAULT_OCCAMS_HOST, DEFAULT_OCCAMS_PORT)];
    this.poolOptions = poolOptions;
    this.isIdempotent = actionSet(idempotent, 'idempotent', true);
    this.pool = this.open(); // bad addresses and pool options throw here, not at the first call
  }

  async connect(): Promise<FailoverPool> {
    const pool = this.pool ?? this.open();
    await pool.connect();
    this.updateStatus();
    return pool;
  }

  /** Closes the connections (graceful); a later `send()` or `connect()` opens new ones. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.wasConnected = false;
    if (pool !== undefined) await pool.close();
    if (this.pool === undefined) this._status$.next('disconnected');
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  /** `connected`, `disconnected` or `reconnecting`, each change once. */
  override get status(): Observable<OccamsClientStatus> {
    return super.status as Observable<OccamsClientStatus>;
  }

  override on<K extends keyof OccamsClientEvents>(event: K, callback: OccamsClientEvents[K]): void {
    this.listeners.push([event, callback as (...args: any[]) => void]);
    this.pool?.on(event, callback as (...args: any[]) => void);
  }

  unwrap<T = FailoverPool>(): T {
    return (this.pool ?? this.open()) as T;
  }

  override send<TResult = any, TInput = any>(pattern: any, data: TInput, options?: OccamsCallOptions): Observable<TResult> {
    if (pattern === null || pattern === undefined || data === null || data === undefined) {
      return new Observable((s) => s.error(new InvalidMessageException()));
    }
    return this.observe<TResult>(this.action(pattern), data, pattern, options, undefined);
  }

  /**
   * The typed client of a service definition: `client.service(Calculator).add([1, 2])`
   * is an Observable of 3; see OccamsServiceClient. One per definition and client.
   */
  service<D extends ServiceDefinition>(def: D): OccamsServiceClient<D> {
    let typed = this.typed.get(def) as OccamsServiceClient<D> | undefined;
    if (typed === undefined) {
      typed = occamsServiceClient(this, def, this.poolOptions.codec ?? msgpackCodec);
      this.typed.set(def, typed);
    }
    return typed;
  }

  /** @internal One typed method, as `send()`: an Observable of its result or items. */
  sendMethod<T>(b: MethodBinding, arg: unknown, options: OccamsCallOptions | undefined): Observable<T> {
    return this.observe<T>(b.action, wireArg(arg), b.action, options, b);
  }

  /** @internal One typed method, as `request()`. */
  requestMethod<T>(b: MethodBinding, arg: unknown, options: OccamsCallOptions | undefined): Promise<T> {
    const data = wireArg(arg);
    const callOptions = this.callOptions(b.action, data, b.action, options, false, undefined, b.idempotent);
    return new Promise((resolve, reject) => {
      void (this.pool ?? this.open()).call(b.action, data, new PromiseHandler(resolve as (v: unknown) => void, reject, b.mapError), callOptions);
    });
  }

  /** @internal One typed stream, as `stream()`. */
  streamMethod<T>(b: MethodBinding, arg: unknown, options: OccamsStreamOptions | undefined): AsyncIterableIterator<T> {
    const data = wireArg(arg);
    const callOptions = this.callOptions(b.action, data, b.action, options, false, undefined, b.idempotent);
    return new StreamIterator<T>(this.pool ?? this.open(), b.action, data, { ...callOptions, window: options?.window }, b.mapError);
  }

  /**
   * A cold Observable of one call per subscription. Nothing is computed
   * here: each subscription (a `retry()`, a `repeat()`, a second
   * `firstValueFrom`) is a new call, with its own deadline from `timeout`
   * and its own run of the dispatch hook, as Nest's ClientProxy publishes
   * per subscription.
   */
  private observe<T>(action: string, data: unknown, pattern: unknown, options: OccamsCallOptions | undefined, b: MethodBinding | undefined): Observable<T> {
    return new CallObservable<T>(this, action, data, pattern, options, b);
  }

  /** @internal The CallOptions of one subscription of `send()`: the dispatch hook runs and the deadline starts now. */
  subscriptionOptions(action: string, data: unknown, pattern: unknown, options: OccamsCallOptions | undefined, b: MethodBinding | undefined): CallOptions | undefined {
    return this.callOptions(action, data, pattern, options, false, undefined, b?.idempotent);
  }

  /** @internal The caller for `send()`'s subscriptions (opened on first use). */
  caller(): FailoverPool {
    return this.pool ?? this.open();
  }

  /**
   * A streamed result as an async iterator, paced by its consumer:
   * `for await (const v of client.stream('ticks', 10)) { ... }`. Credit goes
   * back to the server as items are taken, so at most `window` items are
   * ever buffered; leaving the loop early cancels the handler on the server.
   */
  stream<TResult = any>(pattern: any, data: unknown, options?: OccamsStreamOptions): AsyncIterableIterator<TResult> {
    const action = this.action(pattern);
    const callOptions = this.callOptions(action, data, pattern, options, false);
    return new StreamIterator<TResult>(this.pool ?? this.open(), action, data, { ...callOptions, window: options?.window });
  }

  /** Promise form of `send` for single-valued patterns (skips RxJS). */
  request<TResult = any>(pattern: any, data: unknown, options?: OccamsCallOptions): Promise<TResult> {
    const action = this.action(pattern);
    return (this.pool ?? this.open()).request(action, data, this.callOptions(action, data, pattern, options, false)) as Promise<TResult>;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const action = this.action(packet.pattern);
    const handler: ResponseHandler = {
      onItem: (response) => callback({ response }),
      onResult: (response) => callback({ response, isDisposed: true }),
      onError: (err) => callback({ err }),
    };
    const handle = (this.pool ?? this.open()).call(action, packet.data, handler, this.callOptions(action, packet.data, packet.pattern, undefined, false, packet));
    return () => handle.cancel();
  }

  protected async dispatchEvent<T = any>(packet: ReadPacket): Promise<T> {
    const action = this.action(packet.pattern);
    return (await (this.pool ?? this.open()).request(action, packet.data, this.callOptions(action, packet.data, packet.pattern, undefined, true, packet))) as T;
  }

  /** The action string for a pattern: strings verbatim, objects in Nest's normalized form. */
  private action(pattern: unknown): string {
    return typeof pattern === 'string' ? pattern : this.normalizePattern(pattern as never);
  }

  private callOptions(
    action: string,
    data: unknown,
    pattern: unknown,
    options: OccamsCallOptions | undefined,
    event: boolean,
    packet?: ReadPacket,
    definedIdempotent?: boolean,
  ): CallOptions | undefined {
    let meta: Record<string, unknown> | undefined;
    if (this.onDispatchHook !== undefined) {
      const p: ReadPacket = packet ?? { pattern, data };
      if (packet === undefined) this.onDispatchHook(p);
      meta = p.metadata;
    } else if (packet?.metadata !== undefined) {
      meta = packet.metadata;
    }
    if (options?.metadata !== undefined) meta = { ...meta, ...options.metadata };
    const idempotent = options?.idempotent ?? definedIdempotent ?? this.isIdempotent(action);
    if (options === undefined && meta === undefined && !event && !idempotent) return undefined;
    const out: CallOptions = { event, idempotent };
    if (meta !== undefined) out.meta = meta;
    if (options?.retry === false) out.retry = false;
    if (options?.deadline !== undefined) {
      out.deadline = options.deadline;
      out.timeout = Math.max(1, options.deadline - Date.now());
    } else if (options?.timeout !== undefined) {
      out.timeout = options.timeout;
      out.deadline = Date.now() + options.timeout;
    }
    return out;
  }

  private open(): FailoverPool {
    const pool = new FailoverPool(this.addresses, this.poolOptions);
    pool.on('state', () => this.updateStatus());
    // the pool reports a lookup failure once per change of reason; so does the log
    pool.on('resolveError', (err: Error) => this.logger.warn(pool.members.length > 0 ? `${err.message}; the last good address list stays in use` : err.message));
    pool.on('resolveRecovered', (err: Error) => this.logger.log(`name lookup works again (after: ${err.message})`));
    for (const [event, callback] of this.listeners) pool.on(event, callback);
    this.pool = pool;
    return pool;
  }

  private updateStatus(): void {
    const pools = this.pool?.members ?? [];
    if (pools.some((p) => p.state === 'ready')) {
      this.wasConnected = true;
      this._status$.next('connected');
    } else if (this.wasConnected && pools.some((p) => p.state === 'connecting' || p.state === 'unhealthy')) {
      this._status$.next('reconnecting');
    } else {
      this._status$.next('disconnected');
    }
  }
}

/**
 * What `send()` returns: cold, each subscription one call. A subclass
 * rather than `new Observable(fn)`: no closure per call on the hot path.
 * It is also the handler and teardown of its first subscription (the usual
 * one: `firstValueFrom`, `lastValueFrom`, a single `subscribe`), so such a
 * call costs one object here; any later subscription gets a CallObservable
 * of its own.
 */
class CallObservable<T> extends Observable<T> implements ResponseHandler {
  private subscriber: Subscriber<any> | undefined;
  private handle: CallHandle | undefined;
  private done = false;
  private readonly mapError: ErrorMapper | undefined;
  /** `options` are the caller's, unread until a subscription: its CallOptions (deadline, hook metadata) are made then */
  constructor(
    private readonly client: OccamsClient,
    private readonly action: string,
    private readonly data: unknown,
    private readonly pattern: unknown,
    private readonly options: OccamsCallOptions | undefined,
    private readonly binding: MethodBinding | undefined,
  ) {
    super();
    this.mapError = binding?.mapError;
  }
  /**
   * What Observable.subscribe does when handed a Subscriber (firstValueFrom,
   * every operator in a pipe), without the closure it makes per
   * subscription; anything else, and rxjs's deprecated synchronous error
   * mode, go through rxjs's own.
   */
  override subscribe(...args: any[]): Subscription {
    const subscriber = args[0];
    if (!(subscriber instanceof Subscriber) || rxjsConfig.useDeprecatedSynchronousErrorHandling) return super.subscribe(...args);
    try {
      this._subscribe(subscriber);
    } catch (err) {
      subscriber.error(err);
    }
    return subscriber;
  }

  // rxjs calls it for each subscription (internal in its typings, stable since rxjs 5); the
  // teardown is registered here (tellOnUnsubscribe), so nothing is returned for rxjs to add
  protected _subscribe(subscriber: Subscriber<T>): TeardownLogic {
    if (subscriber.closed) return; // unsubscribed already: nothing would see the call
    // a later subscription is a call of its own: a fresh CallObservable serves it
    const owner = this.subscriber === undefined ? this : new CallObservable<T>(this.client, this.action, this.data, this.pattern, this.options, this.binding);
    owner.subscriber = subscriber;
    tellOnUnsubscribe(subscriber, owner);
    // per subscription: the deadline counts from now and the dispatch hook runs again
    const options = this.client.subscriptionOptions(this.action, this.data, this.pattern, this.options, this.binding);
    owner.handle = this.client.caller().call(this.action, this.data, owner, options);
  }

  // the ResponseHandler of its subscription, and its teardown (unsubscribe before the end cancels the call)
  onItem(value: unknown): void {
    this.subscriber!.next(value);
  }
  onResult(value: unknown): void {
    this.done = true;
    if (value !== undefined) this.subscriber!.next(value);
    this.subscriber!.complete();
  }
  onError(err: OccamsError): void {
    this.done = true;
    this.subscriber!.error(this.mapError === undefined ? err : this.mapError(err));
  }
  unsubscribe(): void {
    if (!this.done) {
      this.done = true;
      this.handle?.cancel();
    }
  }
  /** What rxjs calls on the parents of a subscriber that unsubscribes (see tellOnUnsubscribe). */
  remove(subscriber: unknown): void {
    if (subscriber === this.subscriber) this.unsubscribe();
  }
}

/** The part of rxjs 7's Subscription that tellOnUnsubscribe uses (internal in its typings). */
interface SubscriptionParents {
  _parentage?: unknown;
  _addParent?: (parent: { remove(s: unknown): void }) => void;
}

/**
 * Makes `subscriber.unsubscribe()` reach `owner`, allocating nothing when
 * it can. `subscriber.add(owner)` would put the owner in an array rxjs's
 * Subscription.add makes for each subscriber, from one array literal for the
 * whole process; such arrays live as long as the call, and V8 can mark that
 * literal's allocation site "tenure" (pretenuring: 85 % of them seen alive
 * at a scavenge), after which every one is born in the old generation and
 * dies there: until the next mark-compact each dead one is a root for every
 * scavenge, keeping its call's objects (the subscriber, the call, and so
 * on) through two scavenges into the old generation. That was the Nest
 * client's slow mode at small x64 (bench/results/send-gc.md: 2.4 MB
 * promoted at every scavenge, twice the CPU per call). A subscriber with no
 * parent yet (firstValueFrom, lastValueFrom, a plain subscribe) instead
 * gets the owner as its one parent: rxjs keeps a single parent in the
 * `_parentage` field itself and calls `parent.remove(subscriber)` when it
 * unsubscribes. Any other subscriber (an operator's, which has a parent),
 * or an rxjs without that field, takes the owner the public way.
 */
function tellOnUnsubscribe(subscriber: Subscriber<unknown>, owner: CallObservable<unknown>): void {
  const s = subscriber as unknown as SubscriptionParents;
  if (s._parentage === null && typeof s._addParent === 'function') s._addParent(owner);
  else subscriber.add(owner);
}
