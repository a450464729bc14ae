/**
 * Discovery through a real DNS server: dist/bench/dns-zone-server.js runs as
 * its own process on 127.0.0.1, and the test rewrites its zone while calls
 * run. Replicas listen on 127.0.0.2, 127.0.0.3, ... with one port, as pods do.
 */
import { type ChildProcess, fork } from 'node:child_process';
import dns from 'node:dns/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { ConsoleLogger, Logger, type LoggerService } from '@nestjs/common';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';

import type { Mode, Zone } from '../bench/dns-zone-server.js';
import { AddressResolver, type NameSource } from '../lib/client/address-resolver.js';
import type { DnsAnswer } from '../lib/client/dns-lookup.js';
import { FailoverPool, type FailoverPoolOptions } from '../lib/client/failover-pool.js';
import type { OccamsError } from '../lib/errors.js';
import { OccamsClient } from '../lib/nest/occams-client.js';
import { MethodDispatch } from '../lib/server/method-dispatch.js';
import { RpcServer } from '../lib/server/rpc-server.js';
import { type Address, formatAddress, type TcpAddress } from '../lib/transport/address.js';
import { testPki } from './support/certs.js';
import { FakeClock } from './support/fake-clock.js';
import { exited, message, root } from './support/processes.js';
import { MemoryLogger, sleep, waitFor } from './support/servers.js';

const NAME = 'api.occams.test';

/** The DNS server process; `set` replaces its zone (and mode) and resolves once it answers from it. */
class ZoneServer {
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {}
  static async start(port = 0, execArgv: string[] = []): Promise<ZoneServer> {
    const child = fork(path.join(root, 'dist/bench/dns-zone-server.js'), [String(port)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv });
    children.add(child);
    const ready = await message<{ port: number }>(child, 'ready', 10_000);
    return new ZoneServer(child, ready.port);
  }
  get server(): string {
    return `127.0.0.1:${this.port}`;
  }
  async set(zone: Zone | undefined, mode: Mode = 'ok'): Promise<void> {
    const done = message(this.child, 'zone-set', 5000);
    this.child.send({ type: 'zone', zone, mode });
    await done;
  }
  /** A queries for `name` answered or refused so far. */
  async lookups(name = NAME): Promise<number> {
    const done = message<{ counts: Record<string, number> }>(this.child, 'queries', 5000);
    this.child.send({ type: 'queries' });
    return (await done).counts[`A ${name}`] ?? 0;
  }
  async stop(): Promise<void> {
    this.child.kill('SIGKILL');
    await exited(this.child, 5000);
  }
}
const children = new Set<ChildProcess>();

/** One replica: answers `work(id)` with its name, after a short wait, and remembers every id it ran. */
interface Replica {
  name: string;
  server: RpcServer;
  address: TcpAddress;
  /** `ip:port` */
  url: string;
  /** how many times each id ran here */
  ran: Map<number, number>;
}
const replicas: Replica[] = [];

async function replica(ip: string, port: number, tls?: { key: Buffer; cert: Buffer }): Promise<Replica> {
  const ran = new Map<number, number>();
  const name = ip;
  const server = new RpcServer(
    new MethodDispatch({
      work: async (id: number) => {
        ran.set(id, (ran.get(id) ?? 0) + 1);
        await sleep(1);
        return name;
      },
    }),
    // (the concurrency limit off, as in load-balancing.spec: on a starved machine it would rightly refuse some calls, and this is about discovery)
    { logger: new MemoryLogger(), address: `${ip}:${port}`, tls, concurrencyLimit: false },
  );
  const address = (await server.listen()) as TcpAddress;
  const r = { name, server, address, url: `${address.host}:${address.port}`, ran };
  replicas.push(r);
  return r;
}

/** Non-idempotent calls from `workers` loops until stopped (or `max` calls, or 30 s). */
function traffic(pool: FailoverPool, workers: number, max: number) {
  const t = { issued: 0, ok: 0, failed: 0, codes: new Map<string, number>(), by: new Map<string, number>(), stopped: false, done: Promise.resolve() };
  const until = Date.now() + 30_000;
  const loop = async (): Promise<void> => {
    while (!t.stopped && t.issued < max && Date.now() < until) {
      const id = ++t.issued;
      try {
        const who = (await pool.request('work', id)) as string;
        t.ok++;
        t.by.set(who, (t.by.get(who) ?? 0) + 1);
      } catch (err) {
        t.failed++;
        const code = (err as OccamsError).code ?? String(err);
        t.codes.set(code, (t.codes.get(code) ?? 0) + 1);
      }
    }
  };
  t.done = Promise.all(Array.from({ length: workers }, loop)).then(() => {});
  return t;
}

/** Resolves with the next address list the pool adopts that satisfies `test`. */
function nextAddresses(pool: FailoverPool, test: (keys: string[]) => boolean, ms = 8000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (pool.off('addresses', on), reject(new Error(`no matching address list within ${ms} ms`))), ms);
    const on = (list: Address[]): void => {
      const keys = list.map((a) => formatAddress(a));
      if (!test(keys)) return;
      clearTimeout(timer);
      pool.off('addresses', on);
      resolve(keys);
    };
    pool.on('addresses', on);
  });
}

function dnsPool(zone: ZoneServer, port: number, extra: FailoverPoolOptions = {}): FailoverPool {
  return new FailoverPool([`${NAME}:${port}`], {
    dns: { servers: [zone.server], minInterval: 100, timeout: 500, tries: 1 },
    // 30 s: within a test, only the records' TTL (or a failure) brings the next lookup
    resolveInterval: 30_000,
    backoff: { initial: 100, max: 300 },
    connectTimeout: 2000,
    ...extra,
  });
}

/** One A query over TCP (two-byte length prefix), as a resolver sends after a truncated answer. */
async function tcpQuery(port: number, name: string): Promise<string[]> {
  const query = dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
  const head = Buffer.alloc(2);
  head.writeUInt16BE(query.length, 0);
  const socket = net.connect(port, '127.0.0.1');
  try {
    socket.write(Buffer.concat([head, query]));
    let got = Buffer.alloc(0);
    for await (const chunk of socket.setTimeout(2000, () => socket.destroy(new Error('no TCP answer in 2 s')))) {
      got = Buffer.concat([got, chunk as Buffer]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) break;
    }
    const reply = dnsPacket.decode(got.subarray(2, 2 + got.readUInt16BE(0)));
    return (reply.answers ?? []).flatMap((a) => (a.type === 'A' ? [a.data] : []));
  } finally {
    socket.destroy();
  }
}

const pools: FailoverPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) p.destroy();
  await Promise.all(replicas.splice(0).map((r) => r.server.destroy()));
  for (const c of children) c.kill('SIGKILL');
  children.clear();
});

describe('dns options', () => {
  it('are checked, each error naming the option', () => {
    const make =
      (dns: unknown, extra: FailoverPoolOptions = {}) =>
      () =>
        new FailoverPool([`${NAME}:1`], { dns: dns as never, ...extra });
    expect(make({ srv: 'rpc.tcp' })).toThrow(/dns\.srv/);
    expect(make({ family: 5 })).toThrow(/dns\.family/);
    expect(make({ servers: [] })).toThrow(/dns\.servers/);
    expect(make({ servers: ['not an address'] })).toThrow(/dns\.servers/);
    expect(make({ minInterval: -1 })).toThrow(/dns\.minInterval/);
    expect(make({ tries: 0 })).toThrow(/dns\.tries/);
    expect(make({ server: ['127.0.0.1'] })).toThrow(/server/);
    expect(make({}, { resolver: async () => ['127.0.0.1'] })).toThrow(/resolver/);
    expect(() => make({ servers: ['127.0.0.1:5353', '[::1]:53'], srv: '_rpc._tcp', family: 4 })().destroy()).not.toThrow();
  });
});

describe('re-resolution schedule (AddressResolver on a fake clock)', () => {
  /** A source answering from a script: each lookup takes the next step (an answer or an error). */
  function scripted(steps: (DnsAnswer | Error)[]): { source: NameSource; calls: () => number } {
    let n = 0;
    return {
      source: async () => {
        const step = steps[Math.min(n++, steps.length - 1)]!;
        if (step instanceof Error) throw step;
        return step;
      },
      calls: () => n,
    };
  }
  const flush = () => new Promise((r) => setImmediate(r));
  const answer = (ttl: number | undefined): DnsAnswer => ({ addresses: [{ host: '127.0.0.2', port: 1 }], ttl });

  it('follows the TTL within [minInterval, interval], and the interval when there is no TTL', async () => {
    for (const [ttl, expected] of [
      [5, 5000],
      [0, 1000],
      [3600, 30_000],
      [undefined, 30_000],
    ] as const) {
      const clock = new FakeClock();
      const { source } = scripted([answer(ttl)]);
      const r = new AddressResolver([{ host: NAME, port: 1 }], source, { interval: 30_000, minInterval: 1000, ttl: true }, clock);
      r.start();
      await flush();
      expect(r.resolved).toBe(true);
      expect(clock.delays()).toEqual([expected]);
      r.stop();
      expect(clock.pending).toBe(0);
    }
  });

  it('refresh() looks again at once, or minInterval after the last lookup, never two at a time', async () => {
    const clock = new FakeClock();
    const s = scripted([answer(30)]);
    const r = new AddressResolver([{ host: NAME, port: 1 }], s.source, { interval: 30_000, minInterval: 1000, ttl: true }, clock);
    r.start();
    await flush();
    expect(s.calls()).toBe(1);
    r.refresh();
    r.refresh();
    expect(clock.delays()).toEqual([1000]);
    clock.advance(1000);
    await flush();
    expect(s.calls()).toBe(2);
    expect(clock.delays()).toEqual([30_000]);
    clock.advance(5000);
    r.refresh();
    expect(s.calls()).toBe(3);
    r.refresh(); // one in flight: nothing more
    await flush();
    expect(s.calls()).toBe(3);
    r.stop();
  });

  it('reports a failure once per change of reason, keeps trying, and reports the recovery', async () => {
    const clock = new FakeClock();
    const servfail = new Error('queryA ESERVFAIL api.occams.test');
    const s = scripted([answer(1), servfail, servfail, servfail, new Error('queryA ETIMEOUT api.occams.test'), answer(1)]);
    const r = new AddressResolver([{ host: NAME, port: 1 }], s.source, { interval: 30_000, minInterval: 100, ttl: true }, clock, { initial: 100, max: 400, jitter: 0 });
    const events: string[] = [];
    r.on('resolveError', (e: Error) => events.push(`error ${e.message}`));
    r.on('resolveRecovered', () => events.push('recovered'));
    r.on('addresses', () => events.push('addresses'));
    r.start();
    // the first lookup at start, each later one when its timer (TTL or backoff) runs
    for (let i = 0; i < 5; i++) {
      await flush();
      expect(clock.runNext()).toBe(true);
    }
    await flush();
    expect(s.calls()).toBe(6);
    expect(events).toEqual([
      'addresses',
      `error cannot resolve ${NAME}:1: queryA ESERVFAIL api.occams.test`,
      `error cannot resolve ${NAME}:1: queryA ETIMEOUT api.occams.test`,
      'recovered',
      'addresses',
    ]);
    r.stop();
  });
});

describe('DNS discovery against a DNS server process', () => {
  it('the DNS server process reports the port it answers on, over UDP and TCP, also when the TCP port its first UDP port got was taken', async () => {
    // a preload that, before the server's first TCP listen, has another socket of that process listen on the port
    const dir = mkdtempSync(path.join(tmpdir(), 'occams-zone-'));
    const preload = path.join(dir, 'take-first-port.cjs');
    writeFileSync(
      preload,
      `const net = require('node:net');
const listen = net.Server.prototype.listen;
let taken = false;
net.Server.prototype.listen = function (port, host, cb) {
  if (taken || typeof port !== 'number' || port === 0) return listen.call(this, port, host, cb);
  taken = true;
  globalThis.blocker = net.createServer();
  listen.call(globalThis.blocker, port, host, () => listen.call(this, port, host, cb));
  return this;
};
`,
    );
    try {
      for (const execArgv of [[], ['--require', preload]]) {
        const zone = await ZoneServer.start(0, execArgv);
        await zone.set({ [NAME]: { A: ['127.0.0.9'], ttl: 1 } });
        const resolver = new dns.Resolver({ timeout: 2000, tries: 1 });
        resolver.setServers([zone.server]);
        expect(await resolver.resolve4(NAME)).toEqual(['127.0.0.9']);
        expect(await tcpQuery(zone.port, NAME)).toEqual(['127.0.0.9']);
        await zone.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rolling replace, scale out and in while non-idempotent calls run: none fails, none runs twice, new replicas get traffic, removed ones no new call', async () => {
    const zone = await ZoneServer.start();
    const r2 = await replica('127.0.0.2', 0);
    const port = r2.address.port;
    const r3 = await replica('127.0.0.3', port);
    await zone.set({ [NAME]: { A: ['127.0.0.2', '127.0.0.3'], ttl: 1 } });
    const pool = dnsPool(zone, port);
    pools.push(pool);
    await pool.connect();
    expect(pool.members.map((p) => formatAddress(p.address)).sort()).toEqual([`127.0.0.2:${port}`, `127.0.0.3:${port}`]);
    const load = traffic(pool, 32, 200_000);
    await waitFor(() => load.ok >= 300, 10_000);

    // scale out: a replica appears in DNS and gets its share once the next lookup finds it
    const r4 = await replica('127.0.0.4', port);
    const seen4 = nextAddresses(pool, (k) => k.includes(`127.0.0.4:${port}`));
    await zone.set({ [NAME]: { A: ['127.0.0.2', '127.0.0.3', '127.0.0.4'], ttl: 1 } });
    await seen4;
    await waitFor(() => r4.ran.size > 0, 5000);
    const before = new Map(load.by);
    const okBefore = load.ok;
    await waitFor(() => load.ok - okBefore >= 900, 15_000);
    const share4 = ((load.by.get(r4.name) ?? 0) - (before.get(r4.name) ?? 0)) / (load.ok - okBefore);
    expect(share4).toBeGreaterThan(0.1); // a fair share is 1/3

    // rolling replace: a new replica joins, the old one leaves DNS, drains, then closes (as on SIGTERM)
    const r5 = await replica('127.0.0.5', port);
    const gone2 = nextAddresses(pool, (k) => !k.includes(`127.0.0.2:${port}`));
    await zone.set({ [NAME]: { A: ['127.0.0.3', '127.0.0.4', '127.0.0.5'], ttl: 1 } });
    await gone2;
    const issuedAtDrain = load.issued;
    await r2.server.close();
    expect(Math.max(...r2.ran.keys())).toBeLessThanOrEqual(issuedAtDrain);
    await waitFor(() => r5.ran.size > 0, 5000);

    // scale in: one replica leaves DNS, then closes
    const gone3 = nextAddresses(pool, (k) => !k.includes(`127.0.0.3:${port}`));
    await zone.set({ [NAME]: { A: ['127.0.0.4', '127.0.0.5'], ttl: 1 } });
    await gone3;
    const issuedAtDrain3 = load.issued;
    await r3.server.close();
    expect(Math.max(...r3.ran.keys())).toBeLessThanOrEqual(issuedAtDrain3);
    const okAfter = load.ok;
    await waitFor(() => load.ok - okAfter >= 300, 10_000);

    load.stopped = true;
    await load.done;
    expect(Object.fromEntries(load.codes)).toEqual({});
    expect(load.failed).toBe(0);
    expect(load.ok).toBe(load.issued);
    // every call ran exactly once, on one replica
    const runs = new Map<number, number>();
    for (const r of [r2, r3, r4, r5]) for (const [id, n] of r.ran) runs.set(id, (runs.get(id) ?? 0) + n);
    expect(runs.size).toBe(load.issued);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  });

  it('a DNS server answering SERVFAIL, NXDOMAIN or not at all: the last good replicas keep serving, each reason is reported once, recovery needs no restart', async () => {
    let zone = await ZoneServer.start();
    const r2 = await replica('127.0.0.2', 0);
    const port = r2.address.port;
    await zone.set({ [NAME]: { A: ['127.0.0.2'], ttl: 1 } });
    const pool = dnsPool(zone, port);
    pools.push(pool);
    const errors: string[] = [];
    const recovered: string[] = [];
    pool.on('resolveError', (e: Error) => errors.push(e.message));
    pool.on('resolveRecovered', (e: Error) => recovered.push(e.message));
    await pool.connect();

    const calls = async (n: number): Promise<void> => {
      const got = await Promise.all(Array.from({ length: n }, (_, i) => pool.request('work', -1 - i)));
      expect(new Set(got)).toEqual(new Set(['127.0.0.2']));
    };
    /** waits until the pool asked the server `n` more times, serving calls meanwhile */
    const lookupsPass = async (n: number): Promise<void> => {
      const start = await zone.lookups();
      await waitFor(async () => (await calls(20), (await zone.lookups()) >= start + n), 10_000);
    };

    await zone.set(undefined, 'servfail');
    await lookupsPass(3);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/ESERVFAIL/);

    await zone.set(undefined, 'nxdomain');
    await lookupsPass(3);
    expect(errors).toHaveLength(2);
    expect(errors[1]).toMatch(/no such name api\.occams\.test \(NXDOMAIN\)/);

    // the DNS server goes away altogether, then comes back on its port with a new replica
    const dnsPort = zone.port;
    await zone.stop();
    await waitFor(() => errors.length === 3, 8000);
    expect(errors[2]).toMatch(/ECONNREFUSED|ETIMEOUT/);
    await calls(50);
    expect(errors).toHaveLength(3);
    const r3 = await replica('127.0.0.3', port);
    zone = await ZoneServer.start(dnsPort);
    const both = nextAddresses(pool, (k) => k.length === 2);
    await zone.set({ [NAME]: { A: ['127.0.0.2', '127.0.0.3'], ttl: 1 } });
    expect((await both).sort()).toEqual([`127.0.0.2:${port}`, `127.0.0.3:${port}`]);
    expect(recovered).toHaveLength(1);
    await waitFor(() => pool.members.every((p) => p.ready), 5000);
    const got = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.request('work', i)));
    expect(new Set(got)).toEqual(new Set(['127.0.0.2', '127.0.0.3']));
    expect(r3.ran.size).toBeGreaterThan(0);
    expect(errors).toHaveLength(3);
  });

  it('A and AAAA records together: replicas on 127.0.0.2 and ::1 both take calls', async () => {
    const zone = await ZoneServer.start();
    const r2 = await replica('127.0.0.2', 0);
    const port = r2.address.port;
    await replica('::1', port);
    await zone.set({ [NAME]: { A: ['127.0.0.2'], AAAA: ['::1'], ttl: 1 } });
    const pool = dnsPool(zone, port);
    pools.push(pool);
    await pool.connect();
    await waitFor(() => pool.members.length === 2 && pool.members.every((p) => p.ready), 5000);
    expect(pool.members.map((p) => formatAddress(p.address)).sort()).toEqual([`127.0.0.2:${port}`, `[::1]:${port}`]);
    const got = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.request('work', i)));
    expect(new Set(got)).toEqual(new Set(['127.0.0.2', '::1']));
  });

  it('SRV records give host and port per replica; a failed connection to one makes the pool look again at once', async () => {
    const zone = await ZoneServer.start();
    const r2 = await replica('127.0.0.2', 0);
    const r3 = await replica('127.0.0.3', 0);
    const srvName = `_rpc._tcp.${NAME}`;
    const zoneWith = (targets: Replica[]): Zone => ({
      [srvName]: { SRV: targets.map((r, i) => ({ target: `pod-${i}.${NAME}`, port: r.address.port })), ttl: 30 },
      ...Object.fromEntries(targets.map((r, i) => [`pod-${i}.${NAME}`, { A: [r.address.host], ttl: 30 }])),
    });
    await zone.set(zoneWith([r2, r3]));
    // TTL 30 s and resolveInterval 30 s: only the failure below can bring the next lookup before the test ends
    const pool = dnsPool(zone, 1, { dns: { servers: [zone.server], srv: '_rpc._tcp', minInterval: 100 }, resolveInterval: 30_000 });
    pools.push(pool);
    await pool.connect();
    await waitFor(() => pool.members.every((p) => p.ready), 5000);
    const keys = pool.members.map((p) => formatAddress(p.address)).sort();
    expect(keys).toEqual([r2.url, r3.url].sort());
    const got = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.request('work', i)));
    expect(new Set(got)).toEqual(new Set(['127.0.0.2', '127.0.0.3']));

    // r3 is replaced by r4 (another address and port) and dies without a word
    const r4 = await replica('127.0.0.4', 0);
    await zone.set(zoneWith([r2, r4]));
    const replaced = nextAddresses(pool, (k) => k.includes(r4.url) && !k.includes(r3.url));
    await r3.server.destroy();
    await replaced;
    await waitFor(() => pool.members.every((p) => p.ready), 5000);
    const after = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.request('work', 1000 + i)));
    expect(new Set(after)).toEqual(new Set(['127.0.0.2', '127.0.0.4']));
  });

  it('TLS: the certificate is checked against the service name, not the replica address', async () => {
    const pki = testPki();
    const zone = await ZoneServer.start();
    const cert = { key: pki.serviceKey, cert: pki.serviceCert };
    const r2 = await replica('127.0.0.2', 0, cert);
    const port = r2.address.port;
    await replica('127.0.0.3', port, cert);
    await zone.set({ [NAME]: { A: ['127.0.0.2', '127.0.0.3'], ttl: 1 }, 'other.occams.test': { A: ['127.0.0.2', '127.0.0.3'], ttl: 1 } });
    const pool = dnsPool(zone, port, { tls: { ca: pki.ca } });
    pools.push(pool);
    await pool.connect();
    await waitFor(() => pool.members.length === 2 && pool.members.every((p) => p.ready), 5000);
    const got = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.request('work', i)));
    expect(new Set(got)).toEqual(new Set(['127.0.0.2', '127.0.0.3']));

    // the same replicas behind a name their certificate does not carry: refused
    const wrong = new FailoverPool([`other.occams.test:${port}`], { dns: { servers: [zone.server] }, tls: { ca: pki.ca }, connectTimeout: 2000 });
    pools.push(wrong);
    const err = await wrong.connect().then(
      () => undefined,
      (e: OccamsError) => e,
    );
    expect(err?.code).toBe('rpc_unreachable');
    expect(err?.message).toMatch(/other\.occams\.test|altnames|certificate/i);
  });

  it('OccamsClient logs a lookup failure once per change of reason, and the recovery', async () => {
    const zone = await ZoneServer.start();
    const r2 = await replica('127.0.0.2', 0);
    const port = r2.address.port;
    await zone.set({ [NAME]: { A: ['127.0.0.2'], ttl: 1 } });
    const lines: string[] = [];
    const capture: LoggerService = {
      log: (m: unknown, ctx?: unknown) => ctx === 'OccamsClient' && lines.push(`log ${String(m)}`),
      warn: (m: unknown, ctx?: unknown) => ctx === 'OccamsClient' && lines.push(`warn ${String(m)}`),
      error: () => {},
    };
    Logger.overrideLogger(capture);
    const client = new OccamsClient({ address: `${NAME}:${port}`, dns: { servers: [zone.server], minInterval: 100, timeout: 500, tries: 1 }, backoff: { initial: 100, max: 200 } });
    try {
      await client.connect();
      await zone.set(undefined, 'servfail');
      const start = await zone.lookups();
      await waitFor(async () => (await zone.lookups()) >= start + 4, 5000);
      expect(await zone.lookups()).toBeGreaterThanOrEqual(start + 4);
      expect(lines.filter((l) => l.startsWith('warn'))).toHaveLength(1);
      expect(lines[0]).toMatch(/cannot resolve api\.occams\.test.*ESERVFAIL.*last good address list stays in use/);
      await zone.set({ [NAME]: { A: ['127.0.0.2'], ttl: 1 } });
      await waitFor(() => lines.length === 2, 5000);
      expect(lines[1]).toMatch(/^log name lookup works again/);
    } finally {
      Logger.overrideLogger(new ConsoleLogger());
      await client.close();
    }
  });
});
