import dns from 'node:dns';
import { EventEmitter } from 'node:events';
import net from 'node:net';

import { Backoff, type BackoffOptions } from '../core/backoff.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { UnreachableError } from '../errors.js';
import { type Address, formatAddress, isUnixAddress, type TcpAddress } from '../transport/address.js';
import type { DnsAnswer } from './dns-lookup.js';

export const DEFAULT_RESOLVE_INTERVAL = 30_000;

/** Resolves a host name to IP addresses; injectable for tests. */
export type Resolver = (host: string) => Promise<string[]>;

export const dnsResolver: Resolver = async (host) => (await dns.promises.lookup(host, { all: true })).map((a) => a.address);

/** Finds the replicas behind one configured name and port (a Resolver, or DnsLookup's A/AAAA/SRV records). */
export type NameSource = (host: string, port: number) => Promise<DnsAnswer>;

/** A Resolver as a NameSource: its IPs with the configured port, no TTL. */
export function fromResolver(resolver: Resolver): NameSource {
  return async (host, port) => ({ addresses: [...new Set(await resolver(host))].map((ip) => ({ host: ip, port })), ttl: undefined });
}

/** One address to dial, and the TLS server name to check when it came from a host name. */
export interface ResolvedAddress {
  address: Address;
  servername?: string;
}

/** True when an address needs no lookup (an IP or a Unix socket). */
export function isLiteral(a: Address): boolean {
  return isUnixAddress(a) || net.isIP(a.host) !== 0;
}

/** When lookups repeat: `interval` the longest wait (0: never by the clock), `minInterval` the shortest; with `ttl` the records' TTL in between. */
export interface ResolveSchedule {
  interval: number;
  minInterval: number;
  ttl: boolean;
}

/**
 * Expands host names into one address per replica, keeping the configured
 * order, as gRPC's DNS resolver does: at `start()`; again after the
 * records' TTL (within [minInterval, interval]) or every `interval` when the
 * source gives no TTL; and on `refresh()` (a connection to a known replica
 * failed), at most once per `minInterval`. A failed lookup leaves the last
 * good list in use and is tried again with backoff; it is reported once
 * per change ('resolveError' when the reason differs from the last one,
 * 'resolveRecovered' at the first good lookup after). Events: 'addresses'
 * (ResolvedAddress[]), 'resolveError' (UnreachableError naming the lookup,
 * cause kept), 'resolveRecovered' (the error it ends).
 */
export class AddressResolver extends EventEmitter {
  private readonly backoff: Backoff;
  private timer: TimerHandle | undefined;
  /** clock ms the timer fires at (undefined: none set) */
  private timerAt: number | undefined;
  private running = false;
  private lookups = 0;
  private inFlight = false;
  /** clock ms the latest lookup started (-Infinity: none yet) */
  private startedAt = -Infinity;
  /** the error of the last lookup, cleared by a good one */
  lastError: UnreachableError | undefined;
  /** a list was produced at least once */
  resolved = false;

  constructor(
    private readonly configured: readonly Address[],
    private readonly source: NameSource,
    private readonly schedule: ResolveSchedule,
    private readonly clock: Clock,
    backoff?: BackoffOptions,
  ) {
    super();
    this.backoff = new Backoff(backoff);
  }

  /** The host names looked up, for messages. */
  get names(): string {
    return this.configured
      .filter((a) => !isLiteral(a))
      .map((a) => formatAddress(a))
      .join(', ');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.lookup();
  }

  stop(): void {
    this.running = false;
    this.clearTimer();
  }

  /**
   * Looks up again soon: at once, or `minInterval` after the latest lookup
   * started (gRPC re-resolves when a subchannel fails, rate-limited alike).
   */
  refresh(): void {
    if (!this.running || this.inFlight) return;
    const at = this.startedAt + this.schedule.minInterval;
    const now = this.clock.now();
    if (at <= now) {
      this.clearTimer();
      void this.lookup();
    } else if (this.timerAt === undefined || this.timerAt > at) {
      this.setTimer(at - now);
    }
  }

  private async lookup(): Promise<void> {
    const id = ++this.lookups;
    this.clearTimer();
    this.inFlight = true;
    this.startedAt = this.clock.now();
    let list: ResolvedAddress[];
    let ttl: number | undefined;
    try {
      [list, ttl] = await this.resolveAll();
    } catch (err) {
      if (!this.running || id !== this.lookups) return;
      this.inFlight = false;
      const error = new UnreachableError(`cannot resolve ${this.names}: ${(err as Error).message}`, { cause: err });
      const changed = this.lastError?.message !== error.message;
      this.lastError = error;
      if (changed) this.emit('resolveError', error);
      this.setTimer(Math.max(this.backoff.next(), this.schedule.minInterval));
      return;
    }
    if (!this.running || id !== this.lookups) return;
    this.inFlight = false;
    const ended = this.lastError;
    this.lastError = undefined;
    this.resolved = true;
    this.backoff.reset();
    if (ended !== undefined) this.emit('resolveRecovered', ended);
    this.emit('addresses', list);
    const { interval, minInterval } = this.schedule;
    if (interval === 0) return;
    const next = this.schedule.ttl && ttl !== undefined ? Math.min(interval, Math.max(minInterval, ttl * 1000)) : interval;
    this.setTimer(next);
  }

  private setTimer(ms: number): void {
    if (!this.running) return;
    this.clearTimer();
    this.timerAt = this.clock.now() + ms;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = undefined;
      void this.lookup();
    }, ms);
  }

  private clearTimer(): void {
    this.clock.clear(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
  }

  /** Every configured address expanded, in order, duplicates dropped; and the shortest TTL, s. */
  private async resolveAll(): Promise<[ResolvedAddress[], number | undefined]> {
    const answers = await Promise.all(this.configured.map((a) => (isLiteral(a) ? undefined : this.source((a as TcpAddress).host, (a as TcpAddress).port))));
    const out: ResolvedAddress[] = [];
    const seen = new Set<string>();
    let ttl: number | undefined;
    for (let i = 0; i < this.configured.length; i++) {
      const a = this.configured[i]!;
      const answer = answers[i];
      if (answer === undefined) {
        out.push({ address: a });
        continue;
      }
      if (answer.ttl !== undefined) ttl = ttl === undefined ? answer.ttl : Math.min(ttl, answer.ttl);
      const servername = (a as TcpAddress).host;
      for (const address of answer.addresses) {
        const key = formatAddress(address);
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ address, servername });
      }
    }
    if (out.length === 0) throw new Error('host names resolved to no address');
    return [out, ttl];
  }
}
