import dns from 'node:dns';
import { isIP } from 'node:net';

import { nonNegativeInt, optionNames, positiveInt, rejectUnknownKeys } from '../core/validate.js';
import { InvalidOptionError } from '../errors.js';
import type { TcpAddress } from '../transport/address.js';

/** Shortest wait between two lookups of the same names, ms (also the floor of a record's TTL). */
export const DEFAULT_DNS_MIN_INTERVAL = 1_000;
/** How long one query waits for an answer before it is sent again, ms. */
export const DEFAULT_DNS_TIMEOUT = 1_000;
/** Sends of one query before the lookup fails. */
export const DEFAULT_DNS_TRIES = 2;

/**
 * Discovery through DNS as deployments publish it (a Kubernetes headless
 * Service, Consul's DNS, a compose service): every A and AAAA record of
 * the name, or with `srv` the SRV records that give host and port per
 * replica. Lookups repeat on the records' TTL, kept within
 * [`minInterval`, `resolveInterval`].
 */
export interface DnsOptions {
  /** DNS servers to ask, `ip` or `ip:port` (`[v6]:port`); default the system's */
  servers?: string[];
  /**
   * look up SRV records `<srv>.<name>` (e.g. '_rpc._tcp' for a Kubernetes
   * Service port named "rpc"); each target is resolved to its addresses,
   * with the record's port. Default: none (A/AAAA of the name, the
   * configured port)
   */
  srv?: string;
  /** 4: A records only, 6: AAAA only, 0: both (default) */
  family?: 0 | 4 | 6;
  /** shortest wait between two lookups, ms; also the floor of the TTL; default 1 000 */
  minInterval?: number;
  /** one query's wait for an answer, ms; default 1 000 */
  timeout?: number;
  /** sends of one query before the lookup fails; default 2 */
  tries?: number;
}

const DNS_OPTIONS = optionNames<DnsOptions>({ servers: true, srv: true, family: true, minInterval: true, timeout: true, tries: true });

/** What one lookup of a name found: one address per replica, and the shortest TTL among the records, s. */
export interface DnsAnswer {
  addresses: TcpAddress[];
  /** undefined when the source gives none */
  ttl: number | undefined;
}

/** The DNS codes meaning "the name has no record of this type" (not an outage). */
const NO_DATA: ReadonlySet<string> = new Set([dns.NODATA, dns.NOTFOUND]);

/**
 * Looks names up with `dns.promises.Resolver` (c-ares, the servers given or
 * the system's), never `getaddrinfo`: TTLs are kept, and a lookup does not
 * queue behind file I/O in libuv's thread pool.
 */
export class DnsLookup {
  readonly minInterval: number;
  private readonly resolver: dns.promises.Resolver;
  private readonly srv: string | undefined;
  private readonly family: 0 | 4 | 6;

  constructor(options: DnsOptions = {}) {
    rejectUnknownKeys(options, DNS_OPTIONS, 'dns');
    this.minInterval = nonNegativeInt(options.minInterval, DEFAULT_DNS_MIN_INTERVAL, 'dns.minInterval');
    const timeout = positiveInt(options.timeout, DEFAULT_DNS_TIMEOUT, 'dns.timeout');
    const tries = positiveInt(options.tries, DEFAULT_DNS_TRIES, 'dns.tries');
    const family = options.family ?? 0;
    if (family !== 0 && family !== 4 && family !== 6) throw new InvalidOptionError('dns.family', `expected 0, 4 or 6, got ${String(family)}`);
    this.family = family;
    if (options.srv !== undefined && (typeof options.srv !== 'string' || !/^_[^.]+\._[^.]+$/.test(options.srv))) {
      throw new InvalidOptionError('dns.srv', `expected "_service._proto" (e.g. "_rpc._tcp"), got ${JSON.stringify(options.srv)}`);
    }
    this.srv = options.srv;
    this.resolver = new dns.promises.Resolver({ timeout, tries });
    if (options.servers !== undefined) {
      if (!Array.isArray(options.servers) || options.servers.length === 0 || !options.servers.every((s) => typeof s === 'string')) {
        throw new InvalidOptionError('dns.servers', 'expected a non-empty list of "ip" or "ip:port"');
      }
      try {
        this.resolver.setServers(options.servers);
      } catch (err) {
        throw new InvalidOptionError('dns.servers', (err as Error).message);
      }
    }
  }

  /** Every replica behind `name`; throws when the name has none or a server fails to answer. */
  async lookup(name: string, port: number): Promise<DnsAnswer> {
    if (this.srv === undefined) return this.hosts(name, port);
    const records = await this.resolver.resolveSrv(`${this.srv}.${name}`);
    if (records.length === 0) throw new Error(`no SRV record for ${this.srv}.${name}`);
    // SRV TTLs are not given by Node's resolver; the targets' A/AAAA TTLs bound the interval
    const answers = await Promise.all(records.map((r) => (isIP(r.name) !== 0 ? { addresses: [{ host: r.name, port: r.port }], ttl: undefined } : this.hosts(r.name, r.port))));
    return merge(answers);
  }

  /** A and AAAA records of one name, each with `port`. */
  private async hosts(name: string, port: number): Promise<DnsAnswer> {
    const missing: string[] = [];
    const [v4, v6] = await Promise.all([
      this.family === 6 ? undefined : this.records(this.resolver.resolve4(name, { ttl: true }), missing),
      this.family === 4 ? undefined : this.records(this.resolver.resolve6(name, { ttl: true }), missing),
    ]);
    const out: TcpAddress[] = [];
    let ttl: number | undefined;
    for (const list of [v4, v6]) {
      if (list === undefined) continue;
      for (const r of list) {
        out.push({ host: r.address, port });
        ttl = ttl === undefined ? r.ttl : Math.min(ttl, r.ttl);
      }
    }
    if (out.length === 0) {
      const nxdomain = missing.length > 0 && missing.every((c) => c === dns.NOTFOUND);
      throw Object.assign(new Error(nxdomain ? `no such name ${name} (NXDOMAIN)` : `no A/AAAA record for ${name}`), { code: nxdomain ? dns.NOTFOUND : dns.NODATA });
    }
    return { addresses: out, ttl };
  }

  /** The records, or none (its code added to `missing`) when the name has none of this type (the other family may have some). */
  private async records(query: Promise<dns.RecordWithTtl[]>, missing: string[]): Promise<dns.RecordWithTtl[]> {
    try {
      return await query;
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (!NO_DATA.has(code)) throw err;
      missing.push(code);
      return [];
    }
  }
}

function merge(answers: DnsAnswer[]): DnsAnswer {
  const addresses: TcpAddress[] = [];
  let ttl: number | undefined;
  for (const a of answers) {
    addresses.push(...a.addresses);
    if (a.ttl !== undefined) ttl = ttl === undefined ? a.ttl : Math.min(ttl, a.ttl);
  }
  return { addresses, ttl };
}
