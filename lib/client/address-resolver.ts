import dns from 'node:dns';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { Backoff, type BackoffOptions } from '../core/backoff.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { UnreachableError } from '../errors.js';
import { type Address, formatAddress, isUnixAddress } from '../transport/address.js';

export const DEFAULT_RESOLVE_INTERVAL = 30_000;

/** Resolves a host name to IP addresses; injectable for tests. */
export type Resolver = (host: string) => Promise<string[]>;

export const dnsResolver: Resolver = async (host) => (await dns.promises.lookup(host, { all: true })).map((a) => a.address);

/** One address to dial, and the TLS server name to check when it came from a host name. */
export interface ResolvedAddress {
  address: Address;
  servername?: string;
}

/** True when an address needs no lookup (an IP or a Unix socket). */
export function isLiteral(a: Address): boolean {
  return isUnixAddress(a) || net.isIP(a.host) !== 0;
}

/**
 * Expands host names into one address per IP, keeping the configured order:
 * at `start()`, then every `interval` ms (0: only at start). A failed lookup
 * is reported ('resolveError') and tried again with backoff; the last good
 * list stays in use meanwhile. Events: 'addresses' (ResolvedAddress[]),
 * 'resolveError' (UnreachableError naming the lookup, cause kept).
 */
export class AddressResolver extends EventEmitter {
  private readonly backoff: Backoff;
  private timer: TimerHandle | undefined;
  private running = false;
  private lookups = 0;
  /** the error of the last lookup, cleared by a good one */
  lastError: UnreachableError | undefined;
  /** a list was produced at least once */
  resolved = false;

  constructor(
    private readonly configured: readonly Address[],
    private readonly resolver: Resolver,
    private readonly interval: number,
    private readonly clock: Clock,
    backoff?: BackoffOptions,
  ) {
    super();
    this.backoff = new Backoff(backoff);
  }

  /** The host names looked up, for messages. */
  get names(): string {
    return this.configured.filter((a) => !isLiteral(a)).map((a) => formatAddress(a)).join(', ');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.lookup();
  }

  stop(): void {
    this.running = false;
    this.clock.clear(this.timer);
    this.timer = undefined;
  }

  private async lookup(): Promise<void> {
    const id = ++this.lookups;
    let list: ResolvedAddress[];
    try {
      list = await this.resolveAll();
    } catch (err) {
      if (!this.running || id !== this.lookups) return;
      this.lastError = new UnreachableError(`cannot resolve ${this.names}: ${(err as Error).message}`, { cause: err });
      this.emit('resolveError', this.lastError);
      this.schedule(this.backoff.next());
      return;
    }
    if (!this.running || id !== this.lookups) return;
    this.lastError = undefined;
    this.resolved = true;
    this.backoff.reset();
    this.emit('addresses', list);
    if (this.interval > 0) this.schedule(this.interval);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.clock.clear(this.timer);
    this.timer = this.clock.setTimeout(() => void this.lookup(), ms);
  }

  private async resolveAll(): Promise<ResolvedAddress[]> {
    const out: ResolvedAddress[] = [];
    for (const a of this.configured) {
      if (isLiteral(a)) {
        out.push({ address: a });
        continue;
      }
      const host = (a as { host: string; port: number }).host;
      const port = (a as { host: string; port: number }).port;
      for (const ip of new Set(await this.resolver(host))) out.push({ address: { host: ip, port }, servername: host });
    }
    if (out.length === 0) throw new Error('host names resolved to no address');
    return out;
  }
}
