/**
 * Does `nestjs-occams bench` (the CLI) measure what `npm run bench` measures?
 * One Nest echo server process (bench's `occams` transport), then, round by
 * round, interleaved: bench's own client for the same point (the Nest
 * client's Promise form, `occams-request`: client-main.js) and the CLI's
 * `bench --json` with the same concurrency, payload, warm-up and duration.
 * Reports each side's calls/s, p50 and p99, the server's CPU per call, and
 * the ratios CLI / bench within each round (medians and min–max).
 * Usage (after `npm run build`):
 *   node dist/bench/cli-vs-bench.js [--rounds 5] [--inflight 64] [--seconds 3] [--warmup 1] [--out cli-vs-bench]
 * Server CPU: bench's side is measured over its measured window (as
 * run.ts does); the CLI's over its whole run (connect, warm-up and
 * measured window) divided by every call it made in it.
 */
import { type ChildProcess, execFile, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { waitMessage } from './ipc.js';
import { payload } from './transport.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsDir = path.resolve(here, '../../bench/results');
const cliMain = path.resolve(here, '../lib/cli/main.js');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const rounds = Number(arg('rounds', '5'));
const inflight = Number(arg('inflight', '64'));
const seconds = Number(arg('seconds', '3'));
const warmup = Number(arg('warmup', '1'));
const out = arg('out', 'cli-vs-bench');

interface Side {
  rps: number;
  p50us: number;
  p99us: number;
  serverCpuUsPerCall: number;
  errors: number;
}

async function serverCpu(server: ChildProcess): Promise<number> {
  server.send('stats');
  return (await waitMessage(server, 'stats', 5000)).cpuMicros as number;
}

async function reset(server: ChildProcess): Promise<void> {
  server.send('reset');
  await waitMessage(server, 'reset', 5000);
}

async function benchSide(server: ChildProcess, port: number): Promise<Side> {
  const client = fork(path.join(here, 'client-main.js'), ['occams-request', String(port), String(inflight), 'small', String(seconds), String(warmup)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_INFLIGHT: String(inflight) },
  });
  try {
    await waitMessage(client, 'measure', (warmup + 20) * 1000);
    await reset(server);
    client.send('go');
    const r = await waitMessage(client, 'result', (seconds + 15) * 1000);
    const cpu = await serverCpu(server);
    return { rps: r.rps, p50us: r.p50us, p99us: r.p99us, serverCpuUsPerCall: cpu / r.requests, errors: r.errors };
  } finally {
    client.kill('SIGKILL');
  }
}

async function cliSide(server: ChildProcess, port: number): Promise<Side> {
  await reset(server);
  const args = [cliMain, 'bench', `127.0.0.1:${port}`, 'echo', JSON.stringify(payload('small')), '-c', String(inflight), '-z', `${seconds}s`, '--warmup', `${warmup}s`, '--json'];
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, args, { timeout: (seconds + warmup + 30) * 1000, maxBuffer: 1 << 24 }, (err, so, se) =>
      err ? reject(new Error(`${err.message}\n${se}`)) : resolve(so),
    ),
  );
  const cpu = await serverCpu(server);
  const r = JSON.parse(stdout);
  return { rps: r.rps, p50us: r.latencyMs.p50 * 1000, p99us: r.latencyMs.p99 * 1000, serverCpuUsPerCall: cpu / (r.calls + r.warmupCalls), errors: r.errors };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const spread = (xs: number[], digits = 2): string => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;

const server = fork(path.join(here, 'server-main.js'), ['occams'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
const started = new Date().toISOString();
const loadBefore = os.loadavg();
const results: { round: number; bench: Side; cli: Side; load: number }[] = [];
try {
  const { port } = await waitMessage(server, 'ready', 20_000);
  for (let round = 1; round <= rounds; round++) {
    // alternate which side goes first, so drift within a round hits both alike
    const load = os.loadavg()[0]!;
    const first = round % 2 === 1 ? 'bench' : 'cli';
    const a = first === 'bench' ? await benchSide(server, port) : await cliSide(server, port);
    const b = first === 'bench' ? await cliSide(server, port) : await benchSide(server, port);
    const [bench, cli] = first === 'bench' ? [a, b] : [b, a];
    results.push({ round, bench, cli, load });
    console.log(
      `round ${round}: bench ${bench.rps.toFixed(0)}/s p50 ${bench.p50us.toFixed(0)} µs p99 ${bench.p99us.toFixed(0)} µs server ${bench.serverCpuUsPerCall.toFixed(2)} µs/call | cli ${cli.rps.toFixed(0)}/s p50 ${cli.p50us.toFixed(0)} µs p99 ${cli.p99us.toFixed(0)} µs server ${cli.serverCpuUsPerCall.toFixed(2)} µs/call (load ${load.toFixed(1)})`,
    );
  }
} finally {
  server.send('stop');
  setTimeout(() => server.kill('SIGKILL'), 3000).unref();
}

const col = (side: 'bench' | 'cli', k: keyof Side) => results.map((r) => r[side][k]);
const ratio = (k: keyof Side) => results.map((r) => r.cli[k] / r.bench[k]);
const md = `# nestjs-occams bench (CLI) vs npm run bench, same point

Run ${started} on ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; load average before: ${loadBefore.map((l) => l.toFixed(1)).join(' ')}
(the machine was shared with other jobs: see the load per round). Point: bench's \`occams\` Nest echo server, small payload,
${inflight} in flight, ${warmup} s warm-up then ${seconds} s measured; ${rounds} rounds, the two sides interleaved (order alternating).
bench = \`client-main.js occams-request\` (what \`npm run bench\` runs for that point: OccamsClient.request in a closed loop);
cli = \`nestjs-occams bench 127.0.0.1:PORT echo '<small>' -c ${inflight} -z ${seconds}s --warmup ${warmup}s --json\`.

| | bench | cli | cli / bench (per round) |
|---|---|---|---|
| calls/s | ${spread(col('bench', 'rps'), 0)} | ${spread(col('cli', 'rps'), 0)} | ${spread(ratio('rps'))} |
| p50 µs | ${spread(col('bench', 'p50us'), 0)} | ${spread(col('cli', 'p50us'), 0)} | ${spread(ratio('p50us'))} |
| p99 µs | ${spread(col('bench', 'p99us'), 0)} | ${spread(col('cli', 'p99us'), 0)} | ${spread(ratio('p99us'))} |
| server CPU µs/call | ${spread(col('bench', 'serverCpuUsPerCall'))} | ${spread(col('cli', 'serverCpuUsPerCall'))} | ${spread(ratio('serverCpuUsPerCall'))} |

Server CPU per call: bench's side over its measured window, the CLI's over its whole run (connect, warm-up, measured window)
divided by every call it made. Errors: bench ${col('bench', 'errors').join(', ')}; cli ${col('cli', 'errors').join(', ')}.

| round | load | bench calls/s | cli calls/s | bench p50 µs | cli p50 µs | bench p99 µs | cli p99 µs | bench server µs/call | cli server µs/call |
|---|---|---|---|---|---|---|---|---|---|
${results.map((r) => `| ${r.round} | ${r.load.toFixed(1)} | ${r.bench.rps.toFixed(0)} | ${r.cli.rps.toFixed(0)} | ${r.bench.p50us.toFixed(0)} | ${r.cli.p50us.toFixed(0)} | ${r.bench.p99us.toFixed(0)} | ${r.cli.p99us.toFixed(0)} | ${r.bench.serverCpuUsPerCall.toFixed(2)} | ${r.cli.serverCpuUsPerCall.toFixed(2)} |`).join('\n')}
`;
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, `${out}.json`), `${JSON.stringify({ started, inflight, seconds, warmup, loadBefore, results }, null, 2)}\n`);
fs.writeFileSync(path.join(resultsDir, `${out}.md`), md);
console.log(md);
process.exit(0);
