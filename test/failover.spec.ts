import net from 'node:net';

import { ClientStream } from '../lib/client/client-stream.js';
import { FailoverPool } from '../lib/client/failover-pool.js';
import { InvalidOptionError, type OccamsError } from '../lib/errors.js';
import { startServer } from './support/servers.js';

/** Accepts connections and never says a word: what a stopped process looks like to a new client. */
async function silentServer(): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `127.0.0.1:${port}`,
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const never = () => new Promise(() => {});

describe('timeouts', () => {
  it('are never early and never later than timeout + timerResolution (real clock)', async () => {
    const s = await startServer({ hang: never });
    const client = await ClientStream.connect(s.url, { timerResolution: 100 });
    // on a busy machine the event loop itself runs late: measure by how much, and allow exactly that
    let lag = 0;
    let last = performance.now();
    const probe = setInterval(() => {
      const now = performance.now();
      lag = Math.max(lag, now - last - 5);
      last = now;
    }, 5);
    const took = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i * 7)); // spread over the wheel's slots
        const t0 = performance.now();
        const err = (await client.request('hang', i, { timeout: 300 }).catch((e: OccamsError) => e)) as OccamsError;
        expect(err.code).toBe('rpc_timeout');
        return performance.now() - t0;
      }),
    );
    clearInterval(probe);
    for (const ms of took) {
      expect(ms).toBeGreaterThanOrEqual(299);
      expect(ms).toBeLessThanOrEqual(300 + 100 + 30 + lag); // + timer slack and the loop's own measured lateness
    }
    client.destroy();
    await s.server.destroy();
  });
});

describe('a server that accepts but never answers (stopped process)', () => {
  it('fails the connection after handshakeTimeout, not connectTimeout', async () => {
    const silent = await silentServer();
    const t0 = Date.now();
    const err = (await ClientStream.connect(silent.url, { handshakeTimeout: 300, connectTimeout: 10_000 }).catch((e: OccamsError) => e)) as OccamsError;
    expect(err.code).toBe('rpc_unreachable');
    expect(err.message).toMatch(/did not answer HELLO within 300 ms/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await silent.close();
  });

  it('is never picked while another server is ready, and calls queued there move to a ready one', async () => {
    const silent = await silentServer();
    const good = await startServer({ who: () => 'good' });
    // 'first' puts the silent server first; nothing is connected yet
    const pool = new FailoverPool([silent.url, good.url], { strategy: 'first', handshakeTimeout: 5_000, timeout: 4_000 });
    const t0 = Date.now();
    const first = await Promise.all(Array.from({ length: 10 }, () => pool.request('who')));
    expect(first).toEqual(Array(10).fill('good'));
    expect(Date.now() - t0).toBeLessThan(3_000); // moved, not left to wait for the handshake to fail
    expect(pool.members[0]!.ready).toBe(false);
    const later = await Promise.all(Array.from({ length: 100 }, () => pool.request('who')));
    expect(new Set(later)).toEqual(new Set(['good']));
    pool.destroy();
    await Promise.all([silent.close(), good.server.destroy()]);
  });
});

describe('discovery', () => {
  it('reports a failed lookup, fails calls fast naming it, retries with backoff and then serves', async () => {
    const a = await startServer({ who: () => 'a' });
    let lookups = 0;
    const errors: Error[] = [];
    const pool = new FailoverPool([`rpc.example.internal:${a.address.port}`], {
      resolver: async () => {
        if (++lookups === 1) throw new Error('ENOTFOUND rpc.example.internal');
        return ['127.0.0.1'];
      },
      backoff: { initial: 100, max: 200 },
      resolveInterval: 0,
    });
    pool.on('resolveError', (e: Error) => errors.push(e));
    const t0 = Date.now();
    const err = (await pool.request('who').catch((e: OccamsError) => e)) as OccamsError;
    expect(err.code).toBe('rpc_unreachable');
    expect(err.message).toMatch(/cannot resolve rpc\.example\.internal.*ENOTFOUND/);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(errors).toHaveLength(1);
    // retried on its backoff, then calls go through
    for (let i = 0; i < 100 && lookups < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(lookups).toBe(2);
    expect(await pool.request('who')).toBe('a');
    pool.destroy();
    await a.server.destroy();
  });

  it('rejects bad options at construction, naming them', () => {
    expect(() => new FailoverPool(['127.0.0.1:1'], { resolveInterval: 'soon' as never })).toThrow(InvalidOptionError);
    expect(() => new FailoverPool(['127.0.0.1:1'], { resolveInterval: -1 })).toThrow(/resolveInterval/);
    expect(() => new FailoverPool(['127.0.0.1:1'], { strategy: 'random' as never })).toThrow(/strategy/);
    expect(() => new FailoverPool(['127.0.0.1:1'], { retryLimit: 1.5 })).toThrow(/retryLimit/);
    expect(() => new FailoverPool([], {})).toThrow(/addresses/);
  });
});
