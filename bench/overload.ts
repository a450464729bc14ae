/**
 * Overload: one Nest OccamsServer (bench/overload-server.ts) whose handler
 * waits on a limited resource (8 slots, 5 ms each: capacity about 1,600
 * calls/s) and ignores its signal; one OccamsClient (window 1,024) with a
 * client-level 1 s timeout and no per-call options (each call's time left
 * goes to the server as its deadline); calls
 * offered open-loop (at a fixed rate, as independent users arrive) at
 * 0.8x, 2x and 4x capacity, each for --seconds, after a --warmup at 0.5x,
 * on a fresh server and client process per point. Run once per --modes entry (the
 * server's concurrencyLimit: off, gradient, aimd or a number).
 * Usage: node dist/bench/overload.js [--modes off,gradient] [--loads 0.8,2,4] [--seconds 8] [--warmup 1] [--out overload]
 * Figures per point: goodput (answered calls/s, % of capacity), p50 / p99
 * of answered calls, handler runs started after their caller's deadline,
 * calls refused unrun (rpc_overloaded / rpc_unreachable), failures by code,
 * and the server's limit at the end. Writes bench/results/<out>.{json,md}.
 */
import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { waitMessage } from './ipc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsDir = path.resolve(here, '../../bench/results');
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
};
const modes = arg('modes', 'off,gradient').split(',');
const loads = arg('loads', '0.8,2,4').split(',').map(Number);
const seconds = Number(arg('seconds', '8'));
const warmup = Number(arg('warmup', '1'));
const out = arg('out', 'overload');
const SLOTS = 8;
const HOLD_MS = 5;
const CAPACITY = (SLOTS * 1000) / HOLD_MS;
const TIMEOUT = 1000;
const WINDOW = 1024;

interface Point {
  mode: string;
  load: number;
  offered: number;
  answered: number;
  goodputPerSec: number;
  goodputPct: number;
  p50: number;
  p99: number;
  runs: number;
  lateRuns: number;
  refused: number;
  failed: Record<string, number>;
  limit: unknown;
  /** the machine's 1-minute load average at the end */
  loadAvg: number;
}

function startServer(mode: string): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(path.join(here, 'overload-server.js'), [mode, String(SLOTS), String(HOLD_MS)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  return waitMessage<{ port: number }>(child, 'ready').then(({ port }) => ({ child, port }));
}

async function serverStats(child: ChildProcess): Promise<{ runs: number; late: number; server: { limit: unknown } }> {
  const reply = waitMessage(child, 'stats', 5000);
  child.send('stats');
  return reply;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.send('stop');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}

const percentile = (sorted: Float64Array, p: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);

/** One point: a fresh server and a fresh client process (garbage of an earlier point must not pause this one's sender). */
async function point(mode: string, load: number): Promise<Point> {
  const { child, port } = await startServer(mode);
  const client = fork(
    path.join(here, 'overload-client.js'),
    [String(port), String(CAPACITY * 0.5), String(warmup), String(CAPACITY * load), String(seconds), String(TIMEOUT), String(WINDOW)],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  try {
    await waitMessage(client, 'warm', 60_000);
    await new Promise((r) => setTimeout(r, 300));
    const before = await serverStats(child);
    const result = waitMessage<{ latencies: number[]; failed: Record<string, number>; offered: number }>(client, 'result', (seconds + 30) * 1000);
    client.send('go');
    const r = await result;
    const after = await serverStats(child);
    const sorted = Float64Array.from(r.latencies).sort();
    const refused = (r.failed.rpc_overloaded ?? 0) + (r.failed.rpc_unreachable ?? 0);
    return {
      mode,
      load,
      offered: r.offered,
      answered: r.latencies.length,
      goodputPerSec: Math.round(r.latencies.length / seconds),
      goodputPct: Math.round((1000 * r.latencies.length) / seconds / CAPACITY) / 10,
      p50: Math.round(percentile(sorted, 0.5) * 10) / 10,
      p99: Math.round(percentile(sorted, 0.99) * 10) / 10,
      runs: after.runs - before.runs,
      lateRuns: after.late - before.late,
      refused,
      failed: r.failed,
      limit: after.server.limit,
      loadAvg: Math.round(os.loadavg()[0]! * 10) / 10,
    };
  } finally {
    client.kill();
    await stop(child);
  }
}

/** The targets, per mode: at 2x and 4x goodput >= 90 %, p99 <= 5 x the p99 at 0.8x, <= 5 % of runs late; at 0.8x nothing refused. */
function targetLines(points: Point[]): string[] {
  const lines = ['| concurrencyLimit | target | figure | met |', '|---|---|---|---|'];
  for (const mode of [...new Set(points.map((p) => p.mode))]) {
    const at = (load: number) => points.find((p) => p.mode === mode && p.load === load);
    const base = at(0.8);
    if (base !== undefined) lines.push(`| ${mode} | 0.8x: nothing refused | ${base.refused + (base.failed.rpc_queue_full ?? 0)} refused | ${base.refused === 0 ? 'yes' : 'no'} |`);
    for (const p of points.filter((x) => x.mode === mode && x.load > 1)) {
      const late = p.runs === 0 ? 0 : (100 * p.lateRuns) / p.runs;
      lines.push(`| ${mode} | ${p.load}x: goodput >= 90 % | ${p.goodputPct} % | ${p.goodputPct >= 90 ? 'yes' : 'no'} |`);
      if (base !== undefined) lines.push(`| ${mode} | ${p.load}x: p99 <= 5 x ${base.p99} ms | ${p.p99} ms | ${p.p99 <= 5 * base.p99 ? 'yes' : 'no'} |`);
      lines.push(`| ${mode} | ${p.load}x: <= 5 % of runs late | ${late.toFixed(1)} % | ${late <= 5 ? 'yes' : 'no'} |`);
    }
  }
  return lines;
}

function markdown(points: Point[], started: string): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const lines = [
    `Run ${started} on ${os.cpus().length} x ${cpu}, Node ${process.version}. One Nest OccamsServer whose handler waits on ${SLOTS} slots of ${HOLD_MS} ms (capacity ${CAPACITY} calls/s) and ignores its signal; one OccamsClient (window ${WINDOW}) with the client-level timeout ${TIMEOUT} ms and no per-call options (each call's time left sent as its deadline); open-loop for ${seconds} s per point after ${warmup} s at 0.5x, a fresh server and client process per point.`,
    '',
    "| concurrencyLimit | offered | goodput (answered/s, % of capacity) | p50 / p99 of answered, ms | handler runs started after their caller's deadline | refused unrun | other failures | limit at the end | load |",
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const p of points) {
    const other = Object.entries(p.failed)
      .filter(([code]) => code !== 'rpc_overloaded' && code !== 'rpc_unreachable')
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
    const limit = p.limit as { limit?: number; latency?: number; minLatency?: number } | undefined;
    const limitText = limit === undefined ? 'off' : `${limit.limit} (median ${limit.latency} ms, min ${limit.minLatency} ms)`;
    lines.push(
      `| ${p.mode} | ${p.load}x (${p.offered}) | ${p.goodputPerSec} (${p.goodputPct} %) | ${p.p50} / ${p.p99} | ${p.lateRuns} of ${p.runs} | ${p.refused} | ${other || 'none'} | ${limitText} | ${p.loadAvg} |`,
    );
  }
  lines.push('', ...targetLines(points));
  return `${lines.join('\n')}\n`;
}

const started = new Date().toISOString();
const points: Point[] = [];
for (const mode of modes) {
  for (const load of loads) {
    const p = await point(mode, load);
    points.push(p);
    console.log(
      `${mode} ${load}x: goodput ${p.goodputPerSec}/s (${p.goodputPct} %), p50 ${p.p50} ms, p99 ${p.p99} ms, late runs ${p.lateRuns}/${p.runs}, refused ${p.refused}, failed ${JSON.stringify(p.failed)}, limit ${JSON.stringify(p.limit)}`,
    );
  }
}
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, `${out}.json`), `${JSON.stringify({ started, capacity: CAPACITY, timeout: TIMEOUT, seconds, warmup, points }, null, 2)}\n`);
fs.writeFileSync(path.join(resultsDir, `${out}.md`), markdown(points, started));
console.log(`wrote bench/results/${out}.{json,md}`);
