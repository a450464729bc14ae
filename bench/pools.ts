/**
 * Pools: one client process, a ClientPool of 1, 2 and 4 connections to one
 * server process, and a FailoverPool (round robin) over 2 server processes;
 * 1024 in flight, small payload. Usage: node dist/bench/pools.js [--seconds 3]
 */
import { ClientPool, FailoverPool } from '../lib/index.js';
import { closedLoop } from './closed-loop.js';
import { startServerProcess } from './server-process.js';
import { SMALL } from './transport.js';

const i = process.argv.indexOf('--seconds');
const seconds = i > 0 ? Number(process.argv[i + 1]) : 3;
const inflight = 1024;
const rows: string[] = ['| setup | req/s | p50 µs | p99 µs | errors |', '|---|---|---|---|---|'];

const report = (name: string, r: Awaited<ReturnType<typeof closedLoop>>) => {
  const line = `| ${name} | ${Math.round(r.rps)} | ${r.p50us.toFixed(0)} | ${r.p99us.toFixed(0)} | ${r.errors} |`;
  rows.push(line);
  console.log(line);
};

const one = await startServerProcess('stream');
for (const connections of [1, 2, 4]) {
  const pool = new ClientPool({ host: '127.0.0.1', port: one.port }, { connections, maxConnections: connections });
  await pool.connect();
  report(`ClientPool, ${connections} connection(s), 1 server`, await closedLoop(() => pool.request('echo', SMALL), inflight, seconds, 1));
  await pool.close();
}
const two = await startServerProcess('stream');
const failover = new FailoverPool(
  [
    { host: '127.0.0.1', port: one.port },
    { host: '127.0.0.1', port: two.port },
  ],
  { strategy: 'round-robin' },
);
await failover.connect();
report('FailoverPool round robin, 2 servers', await closedLoop(() => failover.request('echo', SMALL), inflight, seconds, 1));
await failover.close();
await Promise.all([one.stop(), two.stop()]);
console.log(`\n${inflight} in flight, small payload, default window (128 per connection)\n\n${rows.join('\n')}`);
process.exit(0);
