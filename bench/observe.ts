/**
 * What observing costs: the same points run with nothing observing (`off`),
 * a no-op subscriber on every diagnostics channel (`channels`) and
 * OpenTelemetry on (`otel`, see observe-setup.ts), and optionally the build
 * of the commit before diagnostics existed (`before`: `--before <its dist/>`),
 * interleaved: every round runs every variant of every point, in an order
 * that rotates per round, so that drift on a shared machine spreads over
 * all of them. Reports medians.
 *
 *   node dist/bench/observe.js [--rounds 5] [--seconds 2] [--warmup 0.5]
 *        [--points stream:64,occams:64,occams:1] [--payload small] [--before /path/to/old/dist]
 *        [--unsampled]   (adds otel-unsampled: a root sampler that samples nothing)
 *        [--als]         (adds als: tracing off, only the SDK's AsyncLocalStorage context manager)
 *        [--variants before,off]   (only these)   [--out observe]   (result file name)
 *
 * Writes bench/results/observe.{json,md}.
 */
import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { waitMessage } from './ipc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsDir = path.resolve(here, '../../bench/results');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const rounds = Number(arg('rounds', '5'));
const seconds = Number(arg('seconds', '2'));
const warmup = Number(arg('warmup', '0.5'));
const payload = arg('payload', 'small');
const points = arg('points', 'stream:64,occams:64,occams:1')
  .split(',')
  .map((p) => {
    const [transport, inflight] = p.split(':');
    return { transport: transport!, inflight: Number(inflight) };
  });
const before = arg('before', '');

interface Variant {
  name: string;
  /** the directory holding server-main.js and client-main.js */
  benchDir: string;
  observe: string;
}
const allVariants: Variant[] = [
  ...(before ? [{ name: 'before', benchDir: path.join(path.resolve(before), 'bench'), observe: 'off' }] : []),
  { name: 'off', benchDir: here, observe: 'off' },
  { name: 'channels', benchDir: here, observe: 'channels' },
  { name: 'otel', benchDir: here, observe: 'otel' },
  ...(process.argv.includes('--unsampled') ? [{ name: 'otel-unsampled', benchDir: here, observe: 'otel-unsampled' }] : []),
  ...(process.argv.includes('--als') ? [{ name: 'als', benchDir: here, observe: 'als' }] : []),
];
/** --variants before,off: only those */
const only = arg('variants', '');
const variants = only ? allVariants.filter((v) => only.split(',').includes(v.name)) : allVariants;
const out = arg('out', 'observe');

interface Run {
  rps: number;
  clientCpu: number;
  serverCpu: number;
  p50us: number;
}

async function runOnce(v: Variant, transport: string, inflight: number): Promise<Run> {
  const env = { ...process.env, OCCAMS_BENCH_OBSERVE: v.observe, BENCH_INFLIGHT: String(inflight) };
  const server = fork(path.join(v.benchDir, 'server-main.js'), [transport], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env });
  let client: ChildProcess | undefined;
  try {
    const { port } = await waitMessage(server, 'ready', 20_000);
    client = fork(path.join(v.benchDir, 'client-main.js'), [transport, String(port), String(inflight), payload, String(seconds), String(warmup)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env,
    });
    await waitMessage(client, 'measure', (warmup + 20) * 1000);
    server.send('reset');
    await waitMessage(server, 'reset', 5000);
    client.send('go');
    const r = await waitMessage(client, 'result', (seconds + 15) * 1000);
    server.send('stats');
    const s = await waitMessage(server, 'stats', 5000);
    return { rps: r.rps, p50us: r.p50us, clientCpu: r.cpuMicros / r.requests, serverCpu: s.cpuMicros / r.requests };
  } finally {
    client?.kill('SIGKILL');
    server.kill('SIGKILL');
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const runs = new Map<string, Run[]>(); // `${point}|${variant}`
const key = (p: { transport: string; inflight: number }, v: string) => `${p.transport} x${p.inflight}|${v}`;
for (let round = 0; round < rounds; round++) {
  const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
  for (const p of points) {
    for (const v of order) {
      const r = await runOnce(v, p.transport, p.inflight);
      const k = key(p, v.name);
      runs.set(k, [...(runs.get(k) ?? []), r]);
      console.log(
        `round ${round + 1}/${rounds}  ${p.transport} x${p.inflight}  ${v.name.padEnd(8)} ${Math.round(r.rps)} req/s  cpu/req client ${r.clientCpu.toFixed(2)} µs server ${r.serverCpu.toFixed(2)} µs`,
      );
    }
  }
}

const rows: Record<string, unknown>[] = [];
for (const p of points) {
  const base = median((runs.get(key(p, 'off')) ?? runs.get(key(p, variants[0]!.name))!).map((r) => r.rps));
  const oldRuns = before ? runs.get(key(p, 'before')) : undefined;
  const old = oldRuns ? median(oldRuns.map((r) => r.rps)) : undefined;
  const oldCpu = oldRuns ? median(oldRuns.map((r) => r.clientCpu + r.serverCpu)) : undefined;
  for (const v of variants) {
    const rs = runs.get(key(p, v.name))!;
    const rps = median(rs.map((r) => r.rps));
    rows.push({
      point: `${p.transport} x${p.inflight}`,
      variant: v.name,
      rps,
      vsOff: rps / base - 1,
      vsBefore: old === undefined ? undefined : rps / old - 1,
      cpuVsBefore: oldCpu === undefined ? undefined : median(rs.map((r) => r.clientCpu + r.serverCpu)) / oldCpu - 1,
      clientCpu: median(rs.map((r) => r.clientCpu)),
      serverCpu: median(rs.map((r) => r.serverCpu)),
      p50us: median(rs.map((r) => r.p50us)),
      all: rs.map((r) => Math.round(r.rps)),
    });
  }
}

const pct = (x: unknown) => (typeof x === 'number' ? `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %` : '—');
const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const lines = [
  `Run ${new Date().toISOString()} on ${machine}; ${rounds} interleaved rounds, ${seconds} s per point after ${warmup} s warm-up, payload ${payload}; medians.`,
  '',
  '| point | variant | req/s | vs off | vs before | client CPU µs/req | server CPU µs/req | CPU/req vs before | p50 µs | req/s of each round |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r: any) =>
      `| ${r.point} | ${r.variant} | ${Math.round(r.rps)} | ${r.variant === 'off' ? '' : pct(r.vsOff)} | ${r.variant === 'before' ? '' : pct(r.vsBefore)} | ${r.clientCpu.toFixed(2)} | ${r.serverCpu.toFixed(2)} | ${r.variant === 'before' ? '' : pct(r.cpuVsBefore)} | ${Math.round(r.p50us)} | ${r.all.join(', ')} |`,
  ),
];
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(
  path.join(resultsDir, `${out}.json`),
  JSON.stringify({ date: new Date().toISOString(), machine, rounds, seconds, warmup, payload, before: before || undefined, rows }, null, 2) + '\n',
);
fs.writeFileSync(path.join(resultsDir, `${out}.md`), lines.join('\n') + '\n');
console.log('\n' + lines.join('\n'));
