import { ClientPool, type PoolState } from '../lib/client/client-pool.js';
import { FailoverPool } from '../lib/client/failover-pool.js';
import { Backoff, BACKOFF_INITIAL_MS, BACKOFF_JITTER, BACKOFF_MAX_MS, BACKOFF_MULTIPLIER } from '../lib/core/backoff.js';
import { type OccamsError, UnreachableError } from '../lib/errors.js';
import { MethodDispatch } from '../lib/server/method-dispatch.js';
import { RpcServer } from '../lib/server/rpc-server.js';
import type { TcpAddress } from '../lib/transport/address.js';
import { FakeClock } from './support/fake-clock.js';
import { MemoryLogger, sleep, startServer, waitFor } from './support/servers.js';

/** A server that answers `whoami` with its name and `echo` with its input. */
async function named(name: string, host = '127.0.0.1', port = 0, delay = 0) {
  const server = new RpcServer(
    new MethodDispatch({
      whoami: () => name,
      echo: async (v: unknown) => (delay ? (await sleep(delay), v) : v),
      slow: async (ms: number) => (await sleep(ms), name),
    }),
    // these tests are about pools, not overload: a survivor on a busy machine answers every call rather than refusing some unrun
    { logger: new MemoryLogger(), address: `${host}:${port}`, concurrencyLimit: false },
  );
  const address = (await server.listen()) as TcpAddress;
  return { server, address, url: `${address.host}:${address.port}` };
}

/** Keeps `concurrency` callers busy for `ms`; every request is accounted for. */
async function load(pool: { request(a: string, v: unknown): Promise<unknown> }, ms: number, concurrency = 32) {
  const tally = { sent: 0, ok: 0, failed: 0, codes: new Map<string, number>() };
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        tally.sent++;
        try {
          await pool.request('echo', tally.sent);
          tally.ok++;
        } catch (e) {
          tally.failed++;
          const code = (e as OccamsError).code;
          tally.codes.set(code, (tally.codes.get(code) ?? 0) + 1);
          await sleep(1);
        }
      }
    }),
  );
  return tally;
}

const fast = { timerResolution: 50, pingInterval: 100, maxMissedPings: 3, connectTimeout: 1000, backoff: { initial: 50, max: 200 } };

describe('ClientPool', () => {
  it('opens more connections when every one is at its window, closes idle extras (idle time on a fake clock)', async () => {
    const s = await named('a');
    const clock = new FakeClock();
    const pool = new ClientPool(s.url, { clock, pingInterval: 0, connections: 1, maxConnections: 3, maxInFlight: 4, extraIdleTimeout: 60_000 });
    const states: PoolState[] = [];
    pool.on('state', (st: PoolState) => states.push(st));
    await pool.connect();
    const calls = Array.from({ length: 24 }, () => pool.request('slow', 100));
    await waitFor(() => pool.stats.connections === 3, 3000);
    expect(await Promise.all(calls)).toHaveLength(24);
    clock.advance(59_000);
    expect(pool.stats.connections).toBe(3); // idle, but not for long enough
    clock.advance(2_000);
    expect(pool.stats.connections).toBe(1);
    expect(states).toEqual(['connecting', 'ready']);
    await pool.close();
    expect(pool.state).toBe('closed');
    await s.server.destroy();
  });

  it('a call that waited in the pool, then timed out on its connection, names the timeout it was given, not the time left when it went out', async () => {
    const s = await startServer({ hold: async () => new Promise((r) => setTimeout(() => r('held'), 150)), never: () => new Promise(() => {}) });
    const pool = new ClientPool(s.url, { ...fast, timerResolution: 10, maxInFlight: 1 });
    await pool.connect();
    const held = pool.request('hold', null);
    // waits ~150 ms for the one slot, then goes out with what is left of its 400 ms
    const err = (await pool.request('never', null, { timeout: 400 }).catch((e: unknown) => e)) as OccamsError;
    await expect(held).resolves.toBe('held');
    expect(err.code).toBe('rpc_timeout');
    expect(err.message).toBe('never timed out after 400 ms');
    await pool.close();
    await s.server.destroy();
  });

  it('close() lets queued and in-flight calls finish, then closes', async () => {
    const s = await named('a');
    const pool = new ClientPool(s.url, { ...fast, maxInFlight: 1 });
    await pool.connect();
    const calls = [pool.request('slow', 40), pool.request('slow', 40), pool.request('slow', 40)];
    const t0 = Date.now();
    await pool.close();
    expect(await Promise.all(calls)).toEqual(['a', 'a', 'a']);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(pool.state).toBe('closed');
    await expect(pool.request('whoami')).rejects.toMatchObject({ code: 'rpc_closed' });
    await s.server.destroy();
  });

  it('queues behind the window and refuses past the queue bound', async () => {
    const s = await named('a');
    const pool = new ClientPool(s.url, { ...fast, maxInFlight: 2, maxQueued: 3 });
    await pool.connect();
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => pool.request('slow', 50)));
    const codes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as OccamsError).code));
    expect(codes.filter((c) => c === 'ok')).toHaveLength(5);
    expect(codes.filter((c) => c === 'rpc_queue_full')).toHaveLength(3);
    pool.destroy();
    await s.server.destroy();
  });

  it('goes unhealthy when the server dies, fails fast, and recovers when it is back on the same port', async () => {
    const s = await named('a');
    const pool = new ClientPool(s.url, fast);
    expect(await pool.request('whoami')).toBe('a');
    await s.server.destroy();
    await waitFor(() => pool.state === 'unhealthy', 3000);
    const t0 = Date.now();
    await expect(pool.request('whoami')).rejects.toBeInstanceOf(UnreachableError);
    expect(Date.now() - t0).toBeLessThan(100);
    const again = await named('a2', '127.0.0.1', s.address.port);
    await waitFor(() => pool.state === 'ready', 3000);
    expect(await pool.request('whoami')).toBe('a2');
    pool.destroy();
    await again.server.destroy();
  });

  it('spaces reconnect attempts per the backoff constants and resets on success (fake clock)', async () => {
    const clock = new FakeClock(0);
    const attempts: number[] = [];
    let succeed = false;
    const s = await named('a');
    const pool = new ClientPool(s.url, {
      clock,
      backoff: { random: () => 0.5 }, // no jitter: exact constants
      connectionFactory: async (address, options) => {
        attempts.push(clock.now());
        if (!succeed) throw new Error('refused');
        const { ClientStream } = await import('../lib/client/client-stream.js');
        return ClientStream.connect(address, options);
      },
    });
    pool.connect().catch(() => {});
    // the backoff timer is the only one on the clock: it is there once the failed attempt has settled
    const advance = async () => {
      await waitFor(() => clock.delays().length === 1);
      clock.advance(clock.delays()[0]!);
    };
    for (let i = 0; i < 6; i++) await advance();
    await waitFor(() => attempts.length === 7);
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    const expected = [];
    for (let d = BACKOFF_INITIAL_MS, i = 0; i < gaps.length; i++, d = Math.min(BACKOFF_MAX_MS, d * BACKOFF_MULTIPLIER)) expected.push(Math.round(d));
    expect(gaps).toEqual(expected);
    succeed = true;
    await advance();
    await waitFor(() => pool.state === 'ready');
    // after a success the next failure starts from the initial delay again
    expect(new Backoff({ random: () => 0.5 }).next()).toBe(BACKOFF_INITIAL_MS);
    pool.destroy();
    await s.server.destroy();
  });

  it('keeps jitter within bounds', () => {
    const b = new Backoff();
    for (let i = 0, base = BACKOFF_INITIAL_MS; i < 20; i++, base = Math.min(BACKOFF_MAX_MS, base * BACKOFF_MULTIPLIER)) {
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(Math.floor(base * (1 - BACKOFF_JITTER)));
      expect(d).toBeLessThanOrEqual(Math.ceil(base * (1 + BACKOFF_JITTER)));
    }
  });
});

describe('FailoverPool', () => {
  it('round robin splits requests evenly', async () => {
    const a = await named('a');
    const b = await named('b');
    const pool = new FailoverPool([a.url, b.url], { ...fast, strategy: 'round-robin' });
    await pool.connect();
    await waitFor(() => pool.members.every((p) => p.ready), 2000);
    const who = await Promise.all(Array.from({ length: 1000 }, () => pool.request('whoami')));
    const share = who.filter((w) => w === 'a').length / who.length;
    expect(share).toBeGreaterThanOrEqual(0.4);
    expect(share).toBeLessThanOrEqual(0.6);
    pool.destroy();
    await Promise.all([a.server.destroy(), b.server.destroy()]);
  });

  it('first-healthy prefers the first address and fails over when it dies', async () => {
    const a = await named('a');
    const b = await named('b');
    const pool = new FailoverPool([a.url, b.url], fast);
    expect(await pool.request('whoami')).toBe('a');
    await a.server.destroy();
    await waitFor(() => !pool.members[0]!.ready, 1000);
    expect(await pool.request('whoami')).toBe('b');
    pool.destroy();
    await b.server.destroy();
  });

  for (const retry of [true, false]) {
    it(`one of two servers killed under load, retry ${retry ? 'on' : 'off'}: nothing hangs, nothing lost`, async () => {
      const a = await named('a', '127.0.0.1', 0, 1);
      const b = await named('b', '127.0.0.1', 0, 1);
      // echo may run twice: idempotent, so calls lost with the server are retried
      const pool = new FailoverPool([a.url, b.url], { ...fast, strategy: 'round-robin', idempotent: retry, retryLimit: retry ? 2 : 0 });
      await pool.connect();
      const running = load(pool, 1200);
      await sleep(400);
      await a.server.destroy();
      const tally = await running;
      expect(tally.sent).toBe(tally.ok + tally.failed);
      expect(tally.ok).toBeGreaterThan(100);
      if (retry) expect(tally.failed).toBe(0);
      else {
        // requests in flight on the killed server fail, and only with retriable codes
        expect(tally.failed).toBeGreaterThan(0);
        for (const code of tally.codes.keys()) expect(['rpc_io_err', 'rpc_unreachable']).toContain(code);
      }
      pool.destroy();
      await b.server.destroy();
    });
  }

  it('all servers down: fails fast with rpc_unreachable, then uses a server started later', async () => {
    const a = await named('a');
    const port = a.address.port;
    await a.server.destroy();
    const pool = new FailoverPool([`127.0.0.1:${port}`], fast);
    const t0 = Date.now();
    await expect(pool.request('whoami')).rejects.toMatchObject({ code: 'rpc_unreachable' });
    expect(Date.now() - t0).toBeLessThan(1000);
    await expect(pool.request('whoami')).rejects.toMatchObject({ code: 'rpc_unreachable' });
    const back = await named('back', '127.0.0.1', port);
    await waitFor(() => pool.healthy && pool.members[0]!.state === 'ready', 3000);
    expect(await pool.request('whoami')).toBe('back');
    pool.destroy();
    await back.server.destroy();
  });

  it('updateAddresses while traffic flows loses nothing', async () => {
    const a = await named('a');
    const b = await named('b');
    const c = await named('c');
    const pool = new FailoverPool([a.url, b.url], { ...fast, strategy: 'round-robin' });
    await pool.connect();
    const running = load(pool, 800);
    await sleep(200);
    pool.updateAddresses([b.url, c.url]);
    await sleep(200);
    pool.updateAddresses([c.url]);
    const tally = await running;
    expect(tally.failed).toBe(0);
    expect(tally.sent).toBe(tally.ok);
    expect(pool.members.map((p) => p.address)).toEqual([c.address]);
    expect(await pool.request('whoami')).toBe('c');
    pool.destroy();
    await Promise.all([a.server.destroy(), b.server.destroy(), c.server.destroy()]);
  });

  it('expands a host name that resolves to two loopback addresses into two pools', async () => {
    const a = await named('one', '127.0.0.1');
    const b = await named('two', '127.0.0.2', a.address.port).catch(() => undefined);
    if (!b) throw new Error('127.0.0.2 is not usable on this machine');
    const lookups: string[] = [];
    const pool = new FailoverPool([`rpc.service.local:${a.address.port}`], {
      ...fast,
      strategy: 'round-robin',
      resolver: async (host) => (lookups.push(host), ['127.0.0.1', '127.0.0.2']),
      resolveInterval: 100,
    });
    await pool.connect();
    await waitFor(() => pool.members.every((p) => p.ready), 2000);
    expect(pool.members.map((p) => p.address)).toEqual([
      { host: '127.0.0.1', port: a.address.port },
      { host: '127.0.0.2', port: a.address.port },
    ]);
    const who = new Set(await Promise.all(Array.from({ length: 20 }, () => pool.request('whoami'))));
    expect(who).toEqual(new Set(['one', 'two']));
    await waitFor(() => lookups.length >= 2, 2000); // re-resolved on its interval
    expect(lookups.every((h) => h === 'rpc.service.local')).toBe(true);
    pool.destroy();
    await Promise.all([a.server.destroy(), b.server.destroy()]);
  });

  it('a graceful close (GOAWAY) moves new requests to the other server while calls in flight finish', async () => {
    const a = await named('a');
    const b = await named('b');
    const pool = new FailoverPool([a.url, b.url], { ...fast, strategy: 'first' }); // everything goes to a
    expect(await pool.request('whoami')).toBe('a');
    const inflight = pool.request('slow', 300);
    await waitFor(() => a.server.stats.inFlight === 1, 1000); // the call runs on a
    const closing = a.server.close();
    await waitFor(() => !pool.members[0]!.healthy, 1000);
    const t0 = Date.now();
    expect(await pool.request('whoami')).toBe('b');
    expect(Date.now() - t0).toBeLessThan(200); // not stuck behind the drain
    expect(await inflight).toBe('a');
    await closing;
    pool.destroy();
    await b.server.destroy();
  });

  it('never retries user errors or a call that forbids retries', async () => {
    let calls = 0;
    const server = new RpcServer(new MethodDispatch({ count: () => ++calls }), { logger: new MemoryLogger() });
    const addr = (await server.listen()) as TcpAddress;
    const pool = new FailoverPool([`${addr.host}:${addr.port}`], fast);
    await expect(pool.request('nope')).rejects.toMatchObject({ code: 'rpc_method_notfound' });
    expect(await pool.request('count', null, { retry: false })).toBe(1);
    pool.destroy();
    await server.destroy();
  });
});
