/**
 * Big values (issue 29): 64 calls in flight echoing 8 MiB each (`--rounds`
 * of them per caller, 1 GiB each way by default), then 65,536 calls of the
 * 16 KiB mixed object, 64 in flight; every echo checked. Peak RSS of the
 * client and the server process against the bytes in flight (64 x 8 MiB),
 * and RSS after the burst (idle 3 s): memory given back.
 * A fresh server and client process per transport (peak RSS is a process's).
 * Usage: node dist/bench/big-values.js [--transports occams,limit-msgpack] [--rounds 2] [--small-calls 65536] [--kind bin|text] [--out big-values]
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { waitMessage } from './ipc.js';
import { startServerProcess } from './server-process.js';
import { loadTransport, mixed } from './transport.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (n: string, d: string) => {
  const i = process.argv.indexOf(`--${n}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : d;
};
const MiB = 2 ** 20;
const INFLIGHT = 64;
const BIG = 8 * MiB;
const SMALL_CALLS = Number(arg('small-calls', '65536'));
process.env.OCCAMS_BENCH_MAX_FRAME ??= String(16 * MiB); // 8 MiB values are past the server's default frame limit; inherited by the server process

interface Result {
  transport: string;
  kind: string;
  bigCalls: number;
  bigSeconds: number;
  bigMiBps: number;
  smallCalls: number;
  smallSeconds: number;
  wrong: number;
  clientPeakMiB: number;
  serverPeakMiB: number;
  clientAfterMiB: number;
  serverAfterMiB: number;
  clientBeforeMiB: number;
}

async function child(transportName: string): Promise<void> {
  const kind = arg('kind', 'bin');
  const rounds = Number(arg('rounds', '2'));
  const server = await startServerProcess(transportName);
  const client = await (await loadTransport(transportName)).connect(server.port);
  const clientBefore = process.memoryUsage().rss / MiB;
  const big = kind === 'bin' ? Buffer.alloc(BIG, 7) : mixed(BIG);
  let wrong = 0;
  const same = (v: unknown): boolean =>
    kind === 'bin'
      ? Buffer.isBuffer(big) && v instanceof Uint8Array && Buffer.from(v.buffer, v.byteOffset, v.byteLength).equals(big)
      : (v as { text?: string }).text === (big as { text: string }).text;
  let t0 = performance.now();
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      for (let r = 0; r < rounds; r++) if (!same(await client.call(big))) wrong++;
    }),
  );
  const bigSeconds = (performance.now() - t0) / 1000;
  console.error(`${transportName}: ${INFLIGHT * rounds} x ${BIG / MiB} MiB in ${bigSeconds.toFixed(1)} s`);
  const small = mixed(16 * 1024);
  t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next++ < SMALL_CALLS) if (((await client.call(small)) as { text?: string }).text !== small.text) wrong++;
    }),
  );
  const smallSeconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 3000));
  const s = await stats(server.child);
  const result: Result = {
    transport: transportName,
    kind,
    bigCalls: INFLIGHT * rounds,
    bigSeconds,
    bigMiBps: (2 * INFLIGHT * rounds * BIG) / MiB / bigSeconds,
    smallCalls: SMALL_CALLS,
    smallSeconds,
    wrong,
    clientPeakMiB: process.resourceUsage().maxRSS / 1024,
    serverPeakMiB: s.maxRssKiB / 1024,
    clientAfterMiB: process.memoryUsage().rss / MiB,
    serverAfterMiB: s.rssKiB / 1024,
    clientBeforeMiB: clientBefore,
  };
  process.send!({ type: 'result', result });
  await Promise.race([client.close(), new Promise((r) => setTimeout(r, 1000))]);
  await server.stop();
  process.exit(0);
}

function stats(c: import('node:child_process').ChildProcess): Promise<{ maxRssKiB: number; rssKiB: number }> {
  c.send('stats');
  return waitMessage(c, 'stats', 10_000);
}

async function main(): Promise<void> {
  const transports = arg('transports', 'occams,limit-msgpack').split(',');
  const out = arg('out', 'big-values');
  const results: Result[] = [];
  for (const t of transports) {
    const c = fork(fileURLToPath(import.meta.url), ['--child', t, ...process.argv.slice(2)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const { result } = await waitMessage<{ result: Result }>(c, 'result', 600_000);
    await new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)));
    results.push(result);
    console.log(JSON.stringify(result));
  }
  const inFlightMiB = (INFLIGHT * BIG) / MiB;
  const lines = [
    `Run ${new Date().toISOString()} on ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')} at the end.`,
    `${INFLIGHT} calls in flight echoing ${BIG / MiB} MiB each (${inFlightMiB} MiB in flight each way), then ${SMALL_CALLS} x 16 KiB mixed object, ${INFLIGHT} in flight; RSS after: 3 s idle after the burst.`,
    '',
    '| transport | payload | big calls | MiB/s (both ways) | 16 KiB calls/s | wrong | client peak RSS MiB (x in flight) | server peak RSS MiB (x in flight) | client RSS after | server RSS after |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.transport} | ${r.kind === 'bin' ? '8 MiB Buffer' : '8 MiB string object'} | ${r.bigCalls} | ${r.bigMiBps.toFixed(0)} | ${(r.smallCalls / r.smallSeconds).toFixed(0)} | ${r.wrong} | ${r.clientPeakMiB.toFixed(0)} (${(r.clientPeakMiB / inFlightMiB).toFixed(2)}) | ${r.serverPeakMiB.toFixed(0)} (${(r.serverPeakMiB / inFlightMiB).toFixed(2)}) | ${r.clientAfterMiB.toFixed(0)} | ${r.serverAfterMiB.toFixed(0)} |`,
    ),
  ];
  const dir = path.resolve(here, '../../bench/results');
  fs.writeFileSync(path.join(dir, `${out}.md`), lines.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, `${out}.json`), JSON.stringify(results, null, 2) + '\n');
  console.log(lines.join('\n'));
}

const i = process.argv.indexOf('--child');
if (i > 0) await child(process.argv[i + 1]!);
else await main();
