import { type Clock, systemClock } from '../core/clock.js';
import { Lifecycle } from '../core/lifecycle.js';
import { nonNegativeInt, oneOf, positiveInt, rejectUnknownKeys } from '../core/validate.js';
import { ClosedError, ErrorCode, InvalidOptionError, type OccamsError, UnreachableError } from '../errors.js';
import { type Address, type AddressLike, formatAddress, parseAddress } from '../transport/address.js';
import { AddressResolver, DEFAULT_RESOLVE_INTERVAL, dnsResolver, fromResolver, isLiteral, type ResolvedAddress, type Resolver } from './address-resolver.js';
import { type Caller, type CallHandle, type CallOptions, deliverError, PromiseHandler, type ResponseHandler } from './call.js';
import { callsObserved, observeCall } from './call-probe.js';
import { DEFAULT_TIMEOUT } from './client-options.js';
import { ClientPool, type ClientPoolOptions, type PoolState } from './client-pool.js';
import { DEFAULT_DNS_MIN_INTERVAL, DnsLookup } from './dns-lookup.js';
import { FailoverCall } from './failover-call.js';
import { DEFAULT_FAILOVER_STRATEGY, FAILOVER_POOL_OPTIONS, type FailoverPoolOptions } from './failover-options.js';
import { type LatencyView, OutlierEjection, type SlowEjection } from './outlier-ejection.js';
import { createPicker, FAILOVER_STRATEGIES, type FailoverStrategy, type Picker, type PickFilter } from './pickers.js';
import { RetryBackoff, RetryBudget } from './retry-budget.js';
import { DEFAULT_RETRY_LIMIT, type IdempotentOption, RetryPolicy, RetryVerdict } from './retry-policy.js';

/** Most calls kept waiting for the first name lookup. */
const MAX_WAITING_FOR_LOOKUP = 4096;

/**
 * One ClientPool per address; picks a pool per call (ready pools first, see
 * pickers.ts) and applies the retry policy (retry-policy.ts) to failures.
 * Host names are resolved to every address they name (address-resolver.ts).
 * Retries spend a budget (retry-budget.ts) after a jittered wait; a server
 * failing call after call, or much slower than the others, is ejected
 * from picking (outlier-ejection.ts).
 * A replica gone from the records drains (no new call, calls in flight
 * finish); a new one is connected before it is picked (pickers prefer
 * ready pools). Events: 'addresses' (Address[]), 'resolveError' (Error,
 * once per change of reason), 'resolveRecovered' (the error a good lookup
 * ended), 'state' (pool, next, prev), 'eject' (pool, the error that
 * ejected it, or for a server much slower than the others an Error saying so).
 */
export class FailoverPool extends Lifecycle<'open'> implements Caller {
  private readonly options: FailoverPoolOptions;
  private readonly picker: Picker;
  private readonly policy: RetryPolicy;
  private readonly budget: RetryBudget | undefined;
  private readonly backoff: RetryBackoff;
  private readonly ejection: OutlierEjection<ClientPool> | undefined;
  /** reused for every pick (one pick runs at a time) */
  private readonly filter: PickFilter = { tried: undefined, ejected: undefined };
  private readonly isEjected = (p: ClientPool): boolean => this.ejection!.isEjected(p);
  private readonly latencyView: LatencyView<ClientPool> = { ready: (p) => p.ready, load: (p) => p.load };
  /** attempts are timed (a load-aware picker or ejection learns from them) */
  private readonly learns: boolean;
  private readonly timeout: number;
  private readonly clock: Clock;
  private readonly resolver: AddressResolver | undefined;
  /** pools in selection order; `byKey` holds the same pools */
  private pools: ClientPool[] = [];
  private readonly byKey = new Map<string, ClientPool>();
  /** calls made before the first lookup finished */
  private waiting: FailoverCall[] = [];
  /** pools are told to connect on first use, all of them, so that picking sees every ready one */
  private warm = false;

  constructor(addresses: AddressLike[], options: FailoverPoolOptions = {}) {
    super('failover pool', { open: ['closing', 'closed'], closing: ['closed'], closed: [] }, 'open');
    rejectUnknownKeys(options, FAILOVER_POOL_OPTIONS, 'FailoverPool');
    if (!Array.isArray(addresses) || addresses.length === 0) throw new InvalidOptionError('addresses', 'at least one address is required');
    this.options = options;
    const configured = addresses.map((a) => parseAddress(a, 'addresses'));
    this.timeout = positiveInt(options.timeout, DEFAULT_TIMEOUT, 'timeout');
    const clock = (this.clock = options.clock ?? systemClock);
    if (options.random !== undefined && typeof options.random !== 'function') throw new InvalidOptionError('random', 'expected a function returning [0, 1)');
    const random = options.random ?? Math.random;
    this.picker = createPicker(oneOf(options.strategy, FAILOVER_STRATEGIES, DEFAULT_FAILOVER_STRATEGY, 'strategy'), random, () => clock.now());
    this.policy = new RetryPolicy(nonNegativeInt(options.retryLimit, DEFAULT_RETRY_LIMIT, 'retryLimit'), options.idempotent);
    this.budget = options.retryBudget === false ? undefined : new RetryBudget(options.retryBudget ?? {}, clock);
    this.backoff = new RetryBackoff(options.retryBackoff ?? {}, random);
    this.ejection = options.outlierEjection === false ? undefined : new OutlierEjection(options.outlierEjection ?? {});
    this.learns = this.picker.observes || this.ejection !== undefined;
    const interval = nonNegativeInt(options.resolveInterval, DEFAULT_RESOLVE_INTERVAL, 'resolveInterval');
    if (configured.every(isLiteral)) {
      this.updateResolved(configured.map((address) => ({ address })));
      return;
    }
    if (options.dns !== undefined && options.resolver !== undefined) throw new InvalidOptionError('resolver', 'give either `resolver` or `dns`, not both');
    const lookup = options.dns === undefined ? undefined : new DnsLookup(options.dns);
    const source = lookup === undefined ? fromResolver(options.resolver ?? dnsResolver) : (host: string, port: number) => lookup.lookup(host, port);
    const schedule = { interval, minInterval: lookup?.minInterval ?? DEFAULT_DNS_MIN_INTERVAL, ttl: lookup !== undefined };
    const resolver = new AddressResolver(configured, source, schedule, this.clock, options.backoff);
    resolver.on('addresses', (list: ResolvedAddress[]) => this.updateResolved(list));
    resolver.on('resolveError', (err: UnreachableError) => this.lookupFailed(err));
    resolver.on('resolveRecovered', (err: UnreachableError) => this.emit('resolveRecovered', err));
    this.resolver = resolver;
  }

  /** The pools, in selection order. */
  get members(): readonly ClientPool[] {
    return this.pools;
  }
  get stats(): { pools: { address: string; state: string; inFlight: number; queued: number }[] } {
    return { pools: this.pools.map((p) => ({ address: formatAddress(p.address), ...p.stats })) };
  }
  get healthy(): boolean {
    return this.pools.some((p) => p.healthy);
  }

  /** Resolves names (if any) and connects every pool; resolves once one pool is ready. */
  async connect(): Promise<void> {
    if (this.ending) throw new ClosedError('pool is closed');
    this.warm = true;
    await this.lookedUp();
    await Promise.any(this.pools.map((p) => p.connect())).catch((err: AggregateError) => {
      const first = (err.errors?.[0] as Error | undefined) ?? err;
      const cause = err.errors?.length > 1 ? err : first;
      throw new UnreachableError(`no server reachable among ${this.pools.map((p) => formatAddress(p.address)).join(', ')}: ${first.message}`, { cause });
    });
  }

  call(action: string | number, value: unknown, handler: ResponseHandler, options?: CallOptions): CallHandle {
    if (callsObserved() && options?.probe === undefined) return observeCall(this, action, value, handler, options);
    // One address: no other pool to go to, so no journey to track.
    if (this.pools.length === 1 && this.state === 'open') return this.pools[0]!.call(action, value, handler, options);
    const fc = new FailoverCall(this, action, value, handler, options, this.clock.now() + (options?.timeout ?? this.timeout));
    this.budget?.deposit();
    this.attempt(fc);
    return fc;
  }

  request(action: string | number, value?: unknown, options?: CallOptions): Promise<unknown> {
    return new Promise((resolve, reject) => void this.call(action, value, new PromiseHandler(resolve, reject), options));
  }

  /** Replaces the address list: kept pools are reused, removed ones drain and close, new ones are created. */
  updateAddresses(list: AddressLike[]): void {
    this.updateResolved(list.map((a) => ({ address: parseAddress(a, 'addresses') })));
  }

  // ---- lifecycle -------------------------------------------------------------

  protected async beginClose(): Promise<void> {
    this.resolver?.stop();
    this.failWaiting(new ClosedError('pool is closed'));
    await Promise.all([...this.byKey.values()].map((p) => p.close()));
  }

  protected abort(err: OccamsError): void {
    this.resolver?.stop();
    this.failWaiting(err);
    for (const p of this.byKey.values()) p.destroy(err);
  }

  // ---- attempts (FailoverCall reports here) -----------------------------------

  /**
   * @internal An attempt of `fc` that went out ended: `err` undefined (or a
   * user's error) counts as an answer, a framework failure against the
   * server; a load-aware picker learns its latency.
   */
  attemptEnded(fc: FailoverCall, err: OccamsError | undefined): void {
    const pool = fc.pool;
    if (!this.learns || pool === undefined) return;
    const now = this.clock.now();
    if (this.picker.observes) this.picker.observe(pool, now, now - fc.startedAt);
    const ejection = this.ejection;
    if (ejection === undefined) return;
    ejection.answered(pool, now, now - fc.startedAt);
    if (err === undefined || !serverFailure(err)) ejection.succeeded(pool);
    else if (ejection.failed(pool, now, this.pools.length)) this.emit('eject', pool, err);
  }

  /** @internal An attempt of `fc` failed: move, retry or give up, per the policy and the retry budget. */
  attemptFailed(fc: FailoverCall, err: OccamsError): void {
    const sent = fc.sent;
    if (sent) this.attemptEnded(fc, err);
    let verdict = this.ending ? RetryVerdict.Fail : this.policy.verdict(err, fc, fc.action, fc.options);
    if (verdict === RetryVerdict.Retry && this.budget !== undefined && !this.budget.tryRetry()) verdict = RetryVerdict.Fail;
    if (verdict === RetryVerdict.Fail) {
      fc.done = true;
      deliverError(fc.handler, err);
      return;
    }
    if (verdict === RetryVerdict.Move) fc.moves++;
    else fc.retries++;
    if (fc.pool !== undefined) (fc.tried ??= new Set()).add(fc.pool);
    if (verdict === RetryVerdict.Move) return this.attempt(fc, false, err);
    const delay = this.backoff.delay(fc.retries);
    if (delay === 0) return this.attempt(fc, true, err);
    // the wait keeps `inner` (sent stays true); a cancel meanwhile sets done and the attempt stops there
    this.clock.setTimeout(() => this.attempt(fc, true, err), delay);
  }

  private attempt(fc: FailoverCall, fresh = false, last?: OccamsError): void {
    if (fc.done) return;
    if (this.ending) return this.give(fc, this.closeError ?? new ClosedError('pool is closed'));
    if (this.resolver !== undefined && !this.resolver.resolved) {
      if (this.resolver.lastError !== undefined) return this.give(fc, this.resolver.lastError);
      if (this.waiting.length >= MAX_WAITING_FOR_LOOKUP) return this.give(fc, new UnreachableError(`too many calls waiting for the lookup of ${this.resolver.names}`));
      this.resolver.start();
      this.waiting.push(fc);
      return;
    }
    if (!this.warm) this.warmUp();
    const pool = this.pick(fc.tried);
    if (pool === undefined) {
      return this.give(fc, this.noHealthyServer(last));
    }
    let options = fc.options;
    if (fc.attempts > 0 && !fresh) {
      options = { ...options, timeout: Math.max(1, fc.deadline - this.clock.now()), statedTimeout: options?.statedTimeout ?? options?.timeout ?? this.timeout };
    }
    const n = ++fc.attempts;
    fc.pool = pool;
    fc.inner = undefined;
    if (this.learns) fc.startedAt = this.clock.now();
    const handle = pool.call(fc.action, fc.value, fc, options);
    if (fc.attempts === n) fc.inner = handle;
  }

  /**
   * The picker's choice avoiding pools the call failed on and ejected ones;
   * then ejected ones too; then any usable pool.
   */
  private pick(tried: ReadonlySet<ClientPool> | undefined): ClientPool | undefined {
    const f = this.filter;
    const ejection = this.ejection;
    if (ejection !== undefined) {
      const now = this.clock.now();
      if (ejection.ejected > 0) ejection.release(now);
      const slow = ejection.sweep(now, this.pools, this.latencyView);
      if (slow !== undefined) for (const s of slow) this.emit('eject', s.key, slowError(s));
    }
    f.ejected = ejection !== undefined && ejection.ejected > 0 ? this.isEjected : undefined;
    f.tried = tried;
    let pool = this.picker.pick(this.pools, f);
    if (pool === undefined && f.ejected !== undefined) {
      f.ejected = undefined;
      pool = this.picker.pick(this.pools, f);
    }
    if (pool === undefined && tried !== undefined) {
      f.tried = undefined;
      pool = this.picker.pick(this.pools, f);
    }
    f.tried = undefined;
    return pool;
  }

  /** Starts every idle pool connecting (as gRPC's balancers leave idle on first use). */
  private warmUp(): void {
    this.warm = true;
    for (const p of this.pools) if (p.state === 'idle') p.connect().catch(() => {});
  }

  private give(fc: FailoverCall, err: OccamsError): void {
    fc.done = true;
    deliverError(fc.handler, err);
  }

  /**
   * "no healthy server among N address(es): <first reason>", with the last
   * connect/handshake error of every address that has one as its cause (one
   * error, or an AggregateError of them in address order).
   */
  private noHealthyServer(last: OccamsError | undefined): UnreachableError {
    const errors: Error[] = [];
    for (const p of this.pools) if (p.lastError !== undefined) errors.push(p.lastError);
    if (errors.length === 0 && last !== undefined) errors.push(last);
    const head = `no healthy server among ${this.pools.length} address(es)`;
    if (errors.length === 0) return new UnreachableError(head);
    const first = errors[0]!;
    const cause = errors.length === 1 ? first : new AggregateError(errors, errors.map((e) => e.message).join('; '));
    return new UnreachableError(`${head}: ${first.message}`, { cause });
  }

  // ---- members ---------------------------------------------------------------

  private updateResolved(list: ResolvedAddress[]): void {
    if (this.ending) return;
    const keys = new Set(list.map((r) => formatAddress(r.address)));
    for (const [key, pool] of this.byKey) {
      if (!keys.has(key)) {
        this.byKey.delete(key);
        this.picker.forget(pool);
        this.ejection?.forget(pool);
        void pool.close();
      }
    }
    this.pools = list.map(({ address, servername }) => {
      const key = formatAddress(address);
      let pool = this.byKey.get(key);
      if (pool === undefined) {
        pool = this.createPool(address, servername);
        this.byKey.set(key, pool);
      }
      return pool;
    });
    this.emit(
      'addresses',
      list.map((r) => r.address),
    );
    if (this.warm) this.warmUp();
    const waiting = this.waiting;
    this.waiting = [];
    for (const fc of waiting) this.attempt(fc);
  }

  private lookupFailed(err: UnreachableError): void {
    this.emit('resolveError', err);
    if (this.resolver?.resolved === false) this.failWaiting(err);
  }

  private failWaiting(err: OccamsError): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const fc of waiting) this.give(fc, err);
  }

  /** Waits for the first lookup (at once when there is nothing to look up). */
  private lookedUp(): Promise<void> {
    const resolver = this.resolver;
    if (resolver === undefined || resolver.resolved) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const ok = (): void => {
        resolver.off('resolveError', ko);
        resolve();
      };
      const ko = (err: Error): void => {
        resolver.off('addresses', ok);
        reject(err);
      };
      resolver.once('addresses', ok);
      resolver.once('resolveError', ko);
      resolver.start();
    });
  }

  /**
   * A member changed state. While some pool is ready, calls waiting in a
   * pool without a ready connection move (they were never sent).
   */
  private memberState(pool: ClientPool, next: PoolState, prev: PoolState): void {
    this.emit('state', pool, next, prev);
    if (this.pools.length < 2 || !this.pools.some((p) => p.ready)) return;
    for (const p of this.pools) {
      if (!p.ready && p.queued > 0) p.releaseQueued(new UnreachableError(`no ready connection to ${formatAddress(p.address)}; moved to a ready server`));
    }
  }

  private createPool(address: Address, servername: string | undefined): ClientPool {
    const { strategy, retryLimit, retryBudget, retryBackoff, outlierEjection, random, idempotent, resolveInterval, resolver, dns, poolFactory, ...poolOptions } = this.options;
    const options: ClientPoolOptions = servername !== undefined && poolOptions.tls ? { ...poolOptions, tls: { servername, ...poolOptions.tls } } : poolOptions;
    const pool = poolFactory ? poolFactory(address, options) : new ClientPool(address, options);
    pool.on('state', (next: PoolState, prev: PoolState) => this.memberState(pool, next, prev));
    if (servername !== undefined) {
      // a replica that fails or announces its drain may have been replaced: look again (gRPC's re-resolution)
      const refresh = (): void => this.resolver?.refresh();
      pool.on('connectError', refresh);
      pool.on('disconnect', refresh);
      pool.on('goaway', refresh);
    }
    return pool;
  }
}

/** What 'eject' carries for a server ejected as slow. */
function slowError(s: SlowEjection<ClientPool>): Error {
  return new Error(`${formatAddress(s.key.address)} answered in ${Math.round(s.latency)} ms on average, the others' median is ${Math.round(s.median)} ms`);
}

/** Failures that count against a server for ejection: the framework's, not a handler's. */
function serverFailure(err: OccamsError): boolean {
  return err.retriable || err.code === ErrorCode.Internal;
}

export {
  DEFAULT_FAILOVER_STRATEGY,
  DEFAULT_RESOLVE_INTERVAL,
  DEFAULT_RETRY_LIMIT,
  dnsResolver,
  type FailoverPoolOptions,
  type FailoverStrategy,
  type IdempotentOption,
  type Resolver,
};
