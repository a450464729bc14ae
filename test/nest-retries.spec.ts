import 'reflect-metadata';

import { firstValueFrom } from 'rxjs';

import { MethodDispatch, OccamsClient, type OccamsError, RpcServer, type TcpAddress } from '../lib/index.js';
import { MemoryLogger, waitFor } from './support/servers.js';

/** Two servers: `a` never answers `op`/`op.idem` (a hung handler), `b` answers. */
async function pair() {
  const runs = { a: 0, b: 0 };
  const make = async (name: 'a' | 'b') => {
    const hang = () => (runs[name]++, new Promise(() => {}));
    const answer = () => (runs[name]++, name);
    const handler = name === 'a' ? hang : answer;
    const server = new RpcServer(new MethodDispatch({ op: handler, 'op.idem': handler }), { logger: new MemoryLogger() });
    const { port } = (await server.listen()) as TcpAddress;
    return { server, port };
  };
  return { a: await make('a'), b: await make('b'), runs };
}

describe('OccamsClient retry safety', () => {
  it('retries a timed-out call on another server only for idempotent patterns (list, predicate, per call)', async () => {
    const { a, b, runs } = await pair();
    const client = new OccamsClient({
      addresses: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`],
      strategy: 'first', // a first
      idempotent: ['op.idem'],
      timerResolution: 50,
    });
    // idempotent by list: times out on a, retried on b
    expect(await firstValueFrom(client.send('op.idem', 1, { timeout: 150 }))).toBe('b');
    // not idempotent: the timeout reaches the caller, b never runs it
    const before = runs.b;
    const err = await firstValueFrom(client.send('op', 1, { timeout: 150 })).catch((e: OccamsError) => e);
    expect((err as OccamsError).code).toBe('rpc_timeout');
    expect(runs.b).toBe(before);
    // per-call override both ways
    expect(await firstValueFrom(client.send('op', 1, { timeout: 150, idempotent: true }))).toBe('b');
    const forbidden = await firstValueFrom(client.send('op.idem', 1, { timeout: 150, retry: false })).catch((e: OccamsError) => e);
    expect((forbidden as OccamsError).code).toBe('rpc_timeout');
    await client.close();

    const byPredicate = new OccamsClient({
      addresses: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`],
      strategy: 'first',
      idempotent: (pattern) => pattern.endsWith('.idem'),
      timerResolution: 50,
    });
    expect(await firstValueFrom(byPredicate.send('op.idem', 1, { timeout: 150 }))).toBe('b');
    await byPredicate.close();
    await Promise.all([a.server.destroy(), b.server.destroy()]);
  });

  it('reports connected -> reconnecting -> connected across a server restart', async () => {
    const first = new RpcServer(new MethodDispatch({ echo: (v: unknown) => v }), { logger: new MemoryLogger() });
    const { port } = (await first.listen()) as TcpAddress;
    const client = new OccamsClient({ port, pingInterval: 100, timerResolution: 50, backoff: { initial: 50, max: 100 } });
    const statuses: string[] = [];
    const sub = client.status.subscribe((s) => statuses.push(s));
    await client.connect();
    await first.destroy();
    await waitFor(() => statuses.includes('reconnecting'), 3000); // the client saw it go before the server comes back
    const second = new RpcServer(new MethodDispatch({ echo: (v: unknown) => v }), { logger: new MemoryLogger(), address: `127.0.0.1:${port}` });
    await second.listen();
    // unhealthy calls fail fast; the pool comes back by itself on its backoff
    await waitFor(() => statuses.at(-1) === 'connected' && statuses.includes('reconnecting'), 3000);
    expect(await firstValueFrom(client.send('echo', 'back'))).toBe('back');
    sub.unsubscribe();
    const from = statuses.indexOf('connected');
    expect(statuses.slice(from)).toEqual(['connected', 'reconnecting', 'connected']);
    await client.close();
    await second.destroy();
  });
});

describe('server options from config', () => {
  it('reads OCCAMS_* keys through any getter (process.env, ConfigService#get)', async () => {
    const { occamsServerOptionsFrom } = await import('../lib/index.js');
    const config: Record<string, string> = { OCCAMS_HOST: '0.0.0.0', OCCAMS_PORT: '7200', OCCAMS_MAX_CONNECTIONS: '50', OCCAMS_CLOSE_WAIT: '' };
    expect(occamsServerOptionsFrom((k) => config[k])).toEqual({ host: '0.0.0.0', port: 7200, maxConnections: 50 });
    expect(occamsServerOptionsFrom((k) => ({ RPC_PATH: '/tmp/rpc.sock' })[k], 'RPC_')).toEqual({ path: '/tmp/rpc.sock' });
    expect(() => occamsServerOptionsFrom((k) => (k === 'OCCAMS_PORT' ? 'seventy' : undefined))).toThrow(/invalid option OCCAMS_PORT: expected a number/);
  });
});
