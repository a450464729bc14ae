/**
 * Side-by-side benchmark runner. Each point is one client process against
 * the transport's server process on 127.0.0.1; one point runs at a time.
 * Transports are interleaved (A B C, A B C, ...) point by point and the
 * whole matrix is run `--runs` times, so slow drift of the machine hits
 * every transport alike; results are medians with their spread, ratios
 * are taken within each run. Usage (after `npm run build`):
 *   node dist/bench/run.js [--quick] [--runs 5 (quick: 3)] [--transports a,b] [--inflight 1,64,1024]
 *                          [--payloads small,16k (also 1m, bin16k, bin1m)] [--seconds 3] [--warmup 1]
 *                          [--placements auto,apart] [--profile client|server|both] [--profile-interval 1000]
 *                          [--out name] [--observe off|channels|otel]
 * Placements: auto (no pinning), apart (server CPU 0, client CPU 1), same
 * (both CPU 0); every placement runs every payload asked (issue 29's targets
 * ask both placements for the large ones too).
 * Writes bench/results/<out>.{json,md,svg} (default latest, quick with --quick).
 * --observe runs both processes with a no-op subscriber on every diagnostics
 * channel, or with OpenTelemetry on (bench/observe-setup.ts), and adds
 * -<mode> to the output name; bench/observe.ts compares the modes interleaved.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { renderChart } from './chart.js';
import { waitMessage } from './ipc.js';
import { markdown, type Point, ratios, type Report, summarise, targets } from './report.js';
import { inflightsFor } from './transport.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsDir = path.resolve(here, '../../bench/results');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const quick = process.argv.includes('--quick');
const transports = arg(
  'transports',
  quick ? 'occams,nest-tcp,grpc,stream,limit-raw,limit-msgpack' : 'occams,occams-pipeline,occams-request,nest-tcp,grpc,stream,limit-raw,limit-msgpack',
).split(',');
const inflights = arg('inflight', '1,64,1024').split(',').map(Number);
const payloads = arg('payloads', 'small,16k').split(',');
const seconds = Number(arg('seconds', quick ? '0.6' : '3'));
const warmup = Number(arg('warmup', quick ? '0.3' : '1'));
/** five full runs: the medians then stand two bad runs (a stall of the VM hits one transport's window, not the other's) */
const runs = Number(arg('runs', quick ? '3' : '5'));
const placements = arg('placements', quick ? 'auto' : 'auto,apart').split(',');

/** --observe: what both processes observe (bench/observe-setup.ts) */
const observe = arg('observe', process.env.OCCAMS_BENCH_OBSERVE ?? 'off');
process.env.OCCAMS_BENCH_OBSERVE = observe; // inherited by the server and client processes
const out = `${arg('out', quick ? 'quick' : 'latest')}${observe === 'off' ? '' : `-${observe}`}`;
/** --profile client|server|both: run that side under --cpu-prof (profiles in bench/results/profiles) */
const profile = arg('profile', '');
const profileDir = path.join(resultsDir, 'profiles');
/** --profile-interval µs: the profiler's sampling interval (node's default 1000; 100 resolves sub-µs costs per call) */
const profileInterval = arg('profile-interval', '1000');
const profArgs = (side: string) => (profile === side || profile === 'both' ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-interval', profileInterval] : []);

const ALL_CPUS = `0-${os.cpus().length - 1}`;
const CPUS: Record<string, { server: string; client: string }> = {
  auto: { server: ALL_CPUS, client: ALL_CPUS },
  apart: { server: '0', client: '1' },
  same: { server: '0', client: '0' },
};

/** Sets the CPUs every thread of `pid` may run on (taskset); returns what it is allowed now. */
function pin(pid: number, cpus: string): string {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    return execFileSync('taskset', ['-p', '-c', String(pid)], { encoding: 'utf8' })
      .split(':')
      .pop()!
      .trim();
  } catch {
    return 'unpinned (taskset failed)';
  }
}

interface ServerHandle {
  child: ChildProcess;
  port: number;
}

async function startServer(transport: string): Promise<ServerHandle> {
  const child = fork(path.join(here, 'server-main.js'), [transport], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: profArgs('server') });
  const { port } = await waitMessage(child, 'ready', 20_000);
  return { child, port };
}

async function stopServer(server: ServerHandle): Promise<void> {
  server.child.send?.('stop');
  setTimeout(() => server.child.kill('SIGKILL'), 1000).unref();
  await new Promise((r) => (server.child.exitCode !== null ? r(null) : server.child.once('exit', r)));
}

/** One point: a fresh client process against the transport's server process. */
async function runPoint(server: ServerHandle, run: number, placement: string, transport: string, payload: string, inflight: number): Promise<Point> {
  const cpus = CPUS[placement]!;
  const serverCpus = pin(server.child.pid!, cpus.server);
  const point: Point = { run, placement, transport, payload, inflight, ok: false, load: os.loadavg()[0]!, serverCpus, clientCpus: '' };
  let client: ChildProcess | undefined;
  try {
    client = fork(path.join(here, 'client-main.js'), [transport, String(server.port), String(inflight), payload, String(seconds), String(warmup)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: { ...process.env, BENCH_INFLIGHT: String(inflight) },
      execArgv: profArgs('client'),
    });
    point.clientCpus = pin(client.pid!, cpus.client);
    await waitMessage(client, 'measure', (warmup + 20) * 1000);
    server.child.send('reset');
    await waitMessage(server.child, 'reset', 5000);
    client.send('go');
    const r = await waitMessage(client, 'result', (seconds + 15) * 1000);
    server.child.send('stats');
    const s = await waitMessage(server.child, 'stats', 5000);
    Object.assign(point, {
      ok: r.requests > 0,
      note: r.requests > 0 ? undefined : 'no request completed (stalled)',
      rps: r.rps,
      p50us: r.p50us,
      p99us: r.p99us,
      errors: r.errors,
      clientCpuUsPerReq: r.requests ? r.cpuMicros / r.requests : undefined,
      serverCpuUsPerReq: r.requests ? s.cpuMicros / r.requests : undefined,
      clientRssMiB: r.maxRssKiB / 1024,
      serverRssMiB: s.maxRssKiB / 1024,
    });
  } catch (err) {
    point.note = `failed: ${(err as Error).message}`;
  } finally {
    if (client && profile) await new Promise((r) => (client!.exitCode !== null ? r(null) : client!.once('exit', r)));
    client?.kill('SIGKILL');
  }
  return point;
}

// One server process per transport for the whole run (its peak RSS is over every point it served).
const servers = new Map<string, ServerHandle>();
for (const t of transports) servers.set(t, await startServer(t));

const points: Point[] = [];
const started = Date.now();
for (let run = 1; run <= runs; run++) {
  for (const placement of placements) {
    for (const payload of payloads) {
      for (const inflight of inflightsFor(payload, inflights)) {
        for (const t of transports) {
          const p = await runPoint(servers.get(t)!, run, placement, t, payload, inflight);
          points.push(p);
          if (!p.ok) {
            // a stalled point (Nest TCP at 16 KiB x 1024) gets a fresh server after it
            await stopServer(servers.get(t)!);
            servers.set(t, await startServer(t));
          }
          const line = p.ok
            ? `${Math.round(p.rps!)} req/s  p50 ${p.p50us!.toFixed(0)} µs  p99 ${p.p99us!.toFixed(0)} µs  cpu/req client ${p.clientCpuUsPerReq!.toFixed(1)} server ${p.serverCpuUsPerReq!.toFixed(1)} µs  load ${p.load.toFixed(1)}`
            : p.note;
          console.log(`run ${run} ${placement.padEnd(5)} ${payload.padEnd(5)} ${String(inflight).padStart(4)}  ${t.padEnd(14)} ${line}`);
        }
      }
    }
  }
}
for (const s of servers.values()) await stopServer(s);

const order = (p: { placement: string; payload: string; inflight: number; transport: string }) => [
  placements.indexOf(p.placement),
  payloads.indexOf(p.payload),
  p.inflight,
  transports.indexOf(p.transport),
];
const byOrder = (a: Parameters<typeof order>[0], b: Parameters<typeof order>[0]) => {
  const x = order(a);
  const y = order(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
};
const summary = summarise(points).sort(byOrder);
const r = ratios(points);
const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const report: Report = {
  date: new Date().toISOString(),
  machine,
  method: {
    runs,
    seconds,
    warmup,
    placements,
    observe,
    order: `transports interleaved point by point (${transports.join(' ')}), whole matrix repeated per run; ${Math.round((Date.now() - started) / 1000)} s in all`,
  },
  points,
  summary,
  ratios: r,
  targets: targets(r),
};
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, `${out}.json`), JSON.stringify(report, null, 2) + '\n');
fs.writeFileSync(path.join(resultsDir, `${out}.md`), markdown(report));
fs.writeFileSync(path.join(resultsDir, `${out}.svg`), renderChart(summary.filter((s) => s.placement === 'auto').map((s) => ({ ...s, rps: s.rps?.median }))));
console.log('\n' + markdown(report));
