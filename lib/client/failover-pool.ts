import dns from 'node:dns';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { ClosedError, ErrorCode, type OccamsError, UnreachableError } from '../errors.js';
import { type Address, type AddressLike, formatAddress, isUnixAddress, parseAddress } from '../transport/address.js';
import { type CallHandle, type CallOptions, type Caller, PromiseHandler, type ResponseHandler } from './call.js';
import { ClientPool, type ClientPoolOptions } from './client-pool.js';
import { nonNegativeInt, rejectUnknownKeys } from '../core/validate.js';
import { FAILOVER_POOL_OPTIONS } from './option-names.js';
import { InvalidOptionError } from '../errors.js';

export const DEFAULT_RETRY_LIMIT = 2;
export const DEFAULT_RESOLVE_INTERVAL = 30_000;

export type FailoverStrategy = 'first' | 'round-robin';

/** Resolves a host name to addresses; injectable for tests. */
export type Resolver = (host: string) => Promise<string[]>;

export const dnsResolver: Resolver = async (host) => (await dns.promises.lookup(host, { all: true })).map((a) => a.address);

export interface FailoverPoolOptions extends ClientPoolOptions {
  /** 'first' healthy in list order (default), or 'round-robin' over healthy pools */
  strategy?: FailoverStrategy;
  /** extra attempts on another server after a retriable error; default 2 */
  retryLimit?: number;
  /** also retry after rpc_timeout (may run a handler twice); default false; per call: `idempotent: true` */
  retryTimeouts?: boolean;
  /** re-resolve host names this often, ms; 0 = only at start; default 30 000 */
  resolveInterval?: number;
  resolver?: Resolver;
  /** builds the pool for one address; injectable for tests */
  poolFactory?: (address: Address, options: ClientPoolOptions) => ClientPool;
}

/** One request's journey across pools, retrying on retriable errors. */
class FailoverCall implements CallHandle, ResponseHandler {
  attempts = 0;
  generation = 0;
  pool: ClientPool | undefined;
  inner: CallHandle | undefined;
  done = false;
  constructor(
    readonly owner: FailoverPool,
    readonly action: string | number,
    readonly value: unknown,
    readonly handler: ResponseHandler,
    readonly options: CallOptions | undefined,
  ) {}
  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.inner?.cancel();
  }
  onItem(value: unknown): void {
    if (!this.done) this.handler.onItem?.(value);
  }
  onResult(value: unknown, blob: Buffer): void {
    if (this.done) return;
    this.done = true;
    this.handler.onResult(value, blob);
  }
  onError(err: OccamsError): void {
    if (this.done) return;
    if (this.owner.shouldRetry(this, err)) return this.owner.retry(this);
    this.done = true;
    this.handler.onError(err);
  }
}

/**
 * One ClientPool per address; picks a healthy one per request and retries
 * retriable failures (unreachable, io; timeouts only when allowed) on
 * another. Host names are resolved to every address they name, at start
 * and every `resolveInterval`. Events: 'addresses' (Address[]),
 * 'resolveError' (Error), 'state' (pool, next, prev).
 */
export class FailoverPool extends EventEmitter implements Caller {
  private readonly options: FailoverPoolOptions;
  private readonly strategy: FailoverStrategy;
  private readonly retryLimit: number;
  private readonly retryTimeouts: boolean;
  private readonly resolver: Resolver;
  private readonly configured: Address[];
  /** pools in selection order; `byKey` holds the same pools */
  private pools: ClientPool[] = [];
  private readonly byKey = new Map<string, ClientPool>();
  /** TLS server name to use per resolved address key */
  private readonly serverNames = new Map<string, string>();
  private generation = 0;
  private next = 0;
  private resolveTimer: NodeJS.Timeout | undefined;
  private started = false;
  private starting: Promise<void> | undefined;
  private closed = false;

  constructor(addresses: AddressLike[], options: FailoverPoolOptions = {}) {
    super();
    rejectUnknownKeys(options, FAILOVER_POOL_OPTIONS, 'FailoverPool');
    if (addresses.length === 0) throw new InvalidOptionError('addresses', 'at least one address is required');
    this.options = options;
    this.configured = addresses.map((a) => parseAddress(a, 'addresses'));
    this.strategy = options.strategy ?? 'first';
    if (this.strategy !== 'first' && this.strategy !== 'round-robin') {
      throw new InvalidOptionError('strategy', `expected 'first' or 'round-robin', got ${String(this.strategy)}`);
    }
    this.retryLimit = nonNegativeInt(options.retryLimit, DEFAULT_RETRY_LIMIT, 'retryLimit');
    this.retryTimeouts = options.retryTimeouts ?? false;
    this.resolver = options.resolver ?? dnsResolver;
    // Addresses that need no resolving are usable at once.
    if (this.configured.every((a) => isUnixAddress(a) || net.isIP(a.host) !== 0)) {
      this.updateAddresses(this.configured);
      this.started = true;
    }
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
    await this.start();
    const attempts = this.pools.map((p) => p.connect());
    await Promise.any(attempts).catch(() => {
      throw new UnreachableError(`no server reachable among ${this.pools.map((p) => formatAddress(p.address)).join(', ')}`);
    });
  }

  call(action: string | number, value: unknown, handler: ResponseHandler, options?: CallOptions): CallHandle {
    // One address: no other pool to retry on, so no journey to track.
    if (this.pools.length === 1 && this.started && !this.closed) return this.pools[0]!.call(action, value, handler, options);
    const fc = new FailoverCall(this, action, value, handler, options);
    if (!this.started) {
      this.start().then(
        () => this.attempt(fc, undefined),
        (err: Error) => fc.onError(new UnreachableError(`cannot resolve addresses: ${err.message}`, { cause: err })),
      );
    } else {
      this.attempt(fc, undefined);
    }
    return fc;
  }

  request(action: string | number, value?: unknown, options?: CallOptions): Promise<unknown> {
    return new Promise((resolve, reject) => void this.call(action, value, new PromiseHandler(resolve, reject), options));
  }

  /** Replaces the address list: kept pools are reused, removed ones drain and close, new ones are created. */
  updateAddresses(list: AddressLike[]): void {
    if (this.closed) return;
    const wanted = list.map((a) => parseAddress(a, 'addresses'));
    const keys = new Set(wanted.map(formatAddress));
    for (const [key, pool] of this.byKey) {
      if (!keys.has(key)) {
        this.byKey.delete(key);
        void pool.close();
      }
    }
    this.pools = wanted.map((address) => {
      const key = formatAddress(address);
      let pool = this.byKey.get(key);
      if (pool === undefined) {
        pool = this.createPool(address, key);
        this.byKey.set(key, pool);
      }
      return pool;
    });
    this.generation++;
    this.emit('addresses', wanted);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.resolveTimer) clearInterval(this.resolveTimer);
    await Promise.all([...this.byKey.values()].map((p) => p.close()));
  }

  destroy(err?: Error): void {
    this.closed = true;
    if (this.resolveTimer) clearInterval(this.resolveTimer);
    for (const p of this.byKey.values()) p.destroy(err);
  }

  // ---- selection and retry (called by FailoverCall) -------------------------

  shouldRetry(fc: FailoverCall, err: OccamsError): boolean {
    if (this.closed || fc.attempts >= this.retryLimit || !err.retriable) return false;
    if (fc.options?.retry === false) return false;
    if (err.code === ErrorCode.Timeout) return this.retryTimeouts || fc.options?.idempotent === true;
    return true;
  }

  retry(fc: FailoverCall): void {
    fc.attempts++;
    // A new address list since the last attempt: restart the selection.
    this.attempt(fc, fc.generation === this.generation ? fc.pool : undefined);
  }

  private attempt(fc: FailoverCall, exclude: ClientPool | undefined): void {
    if (fc.done) return;
    if (this.closed) return fc.onError(new ClosedError('pool is closed'));
    const pool = this.pick(exclude);
    if (pool === undefined) {
      fc.done = true;
      fc.handler.onError(new UnreachableError(`no healthy server among ${this.pools.length} address(es)`));
      return;
    }
    fc.generation = this.generation;
    fc.pool = pool;
    fc.inner = pool.call(fc.action, fc.value, fc, fc.options);
  }

  private pick(exclude: ClientPool | undefined): ClientPool | undefined {
    const pools = this.pools;
    const n = pools.length;
    if (this.strategy === 'first') {
      for (let i = 0; i < n; i++) {
        const p = pools[i]!;
        if (p !== exclude && p.healthy) return p;
      }
      return undefined;
    }
    for (let i = 0; i < n; i++) {
      const p = pools[(this.next + i) % n]!;
      if (p !== exclude && p.healthy) {
        this.next = (this.next + i + 1) % n;
        return p;
      }
    }
    return undefined;
  }

  // ---- discovery -----------------------------------------------------------

  private start(): Promise<void> {
    if (this.started) return Promise.resolve();
    this.starting ??= this.resolveAll().then((list) => {
      this.updateAddresses(list);
      this.started = true;
      const interval = nonNegativeInt(this.options.resolveInterval, DEFAULT_RESOLVE_INTERVAL, 'resolveInterval');
      if (interval > 0 && !this.closed) {
        this.resolveTimer = setInterval(() => void this.refresh(), interval);
        this.resolveTimer.unref();
      }
    });
    return this.starting;
  }

  private async refresh(): Promise<void> {
    try {
      const list = await this.resolveAll();
      const now = list.map(formatAddress).join(',');
      if (now !== this.pools.map((p) => formatAddress(p.address)).join(',')) this.updateAddresses(list);
    } catch (err) {
      this.emit('resolveError', err);
    }
  }

  /** Expands host names into one address per IP, keeping the configured order. */
  private async resolveAll(): Promise<Address[]> {
    const out: Address[] = [];
    for (const a of this.configured) {
      if (isUnixAddress(a) || net.isIP(a.host) !== 0) {
        out.push(a);
        continue;
      }
      const ips = [...new Set(await this.resolver(a.host))];
      for (const ip of ips) {
        const resolved = { host: ip, port: a.port };
        this.serverNames.set(formatAddress(resolved), a.host);
        out.push(resolved);
      }
    }
    if (out.length === 0) throw new UnreachableError('host names resolved to no address');
    return out;
  }

  private createPool(address: Address, key: string): ClientPool {
    const { strategy, retryLimit, retryTimeouts, resolveInterval, resolver, poolFactory, ...poolOptions } = this.options;
    const servername = this.serverNames.get(key);
    const options: ClientPoolOptions =
      servername !== undefined && poolOptions.tls ? { ...poolOptions, tls: { servername, ...poolOptions.tls } } : poolOptions;
    const pool = poolFactory ? poolFactory(address, options) : new ClientPool(address, options);
    pool.on('state', (next: string, prev: string) => this.emit('state', pool, next, prev));
    return pool;
  }
}
