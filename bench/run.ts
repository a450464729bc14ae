/**
 * Side-by-side benchmark runner: each point is one server process and one
 * client process on 127.0.0.1, run one after the other so they do not
 * compete. Usage (after `npm run build`):
 *   node dist/bench/run.js [--quick] [--transports a,b] [--inflight 1,64,1024]
 *                          [--payloads small,16k] [--seconds 3] [--warmup 1]
 *                          [--observe off|channels|otel]
 * Writes bench/results/latest.{json,md,svg} (quick.* with --quick; with
 * --observe channels|otel, latest-<mode>.* / quick-<mode>.*). --observe runs
 * both processes with a no-op subscriber on every diagnostics channel, or
 * with OpenTelemetry on (bench/observe-setup.ts); bench/observe.ts compares
 * the modes interleaved.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderChart } from './chart.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsDir = path.resolve(here, '../../bench/results');

interface Point {
  transport: string;
  payload: string;
  inflight: number;
  ok: boolean;
  note?: string;
  rps?: number;
  p50us?: number;
  p99us?: number;
  clientCpuUsPerReq?: number;
  serverCpuUsPerReq?: number;
  clientRssMiB?: number;
  serverRssMiB?: number;
  errors?: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const quick = process.argv.includes('--quick');
const transports = arg('transports', 'occams,nest-tcp,grpc,stream,limit-raw,limit-msgpack').split(',');
const inflights = arg('inflight', '1,64,1024').split(',').map(Number);
const payloads = arg('payloads', 'small,16k').split(',');
const seconds = Number(arg('seconds', quick ? '0.6' : '3'));
const warmup = Number(arg('warmup', quick ? '0.3' : '1'));
/** --observe: what both processes observe (bench/observe-setup.ts) */
const observe = arg('observe', process.env.OCCAMS_BENCH_OBSERVE ?? 'off');
process.env.OCCAMS_BENCH_OBSERVE = observe; // inherited by the server and client processes
/** --profile client|server|both: run that side under --cpu-prof (profiles in bench/results/profiles) */
const profile = arg('profile', '');
const profileDir = path.join(resultsDir, 'profiles');
const profArgs = (side: string) =>
  profile === side || profile === 'both' ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];

function waitMessage(child: ChildProcess, type: string, ms: number): Promise<any> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`no '${type}' within ${ms} ms`));
    }, ms);
    const onMessage = (m: any) => {
      if (m?.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`process exited before '${type}'`));
    });
  });
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
async function runPoint(server: ServerHandle, transport: string, payload: string, inflight: number): Promise<Point> {
  const point: Point = { transport, payload, inflight, ok: false };
  let client: ChildProcess | undefined;
  try {
    client = fork(path.join(here, 'client-main.js'), [transport, String(server.port), String(inflight), payload, String(seconds), String(warmup)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: { ...process.env, BENCH_INFLIGHT: String(inflight) },
      execArgv: profArgs('client'),
    });
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

function ratio(points: Point[], a: string, b: string, payload: string, inflight: number): number | undefined {
  const pa = points.find((p) => p.transport === a && p.payload === payload && p.inflight === inflight && p.ok);
  const pb = points.find((p) => p.transport === b && p.payload === payload && p.inflight === inflight && p.ok);
  return pa?.rps && pb?.rps ? pa.rps / pb.rps : undefined;
}

const RATIOS: [string, string][] = [
  ['occams', 'nest-tcp'],
  ['occams', 'grpc'],
  ['occams', 'limit-msgpack'],
  ['stream', 'limit-msgpack'],
];

const points: Point[] = [];
for (const t of transports) {
  // One server process per transport, reused across its points (a stalled
  // point, like Nest TCP at 16 KiB x 1024, gets a fresh one after it).
  let server = await startServer(t);
  for (const payload of payloads) {
    for (const inflight of inflights) {
      const p = await runPoint(server, t, payload, inflight);
      points.push(p);
      if (!p.ok) {
        await stopServer(server);
        server = await startServer(t);
      }
      const line = p.ok
        ? `${Math.round(p.rps!)} req/s  p50 ${p.p50us!.toFixed(0)} µs  p99 ${p.p99us!.toFixed(0)} µs  cpu/req client ${p.clientCpuUsPerReq!.toFixed(1)} µs server ${p.serverCpuUsPerReq!.toFixed(1)} µs`
        : p.note;
      console.log(`${payload.padEnd(5)} ${String(inflight).padStart(4)}  ${t.padEnd(14)} ${line}`);
    }
  }
  await stopServer(server);
}
points.sort((a, b) => payloads.indexOf(a.payload) - payloads.indexOf(b.payload) || a.inflight - b.inflight || transports.indexOf(a.transport) - transports.indexOf(b.transport));

const ratios: Record<string, number | undefined> = {};
for (const payload of payloads) {
  for (const inflight of inflights) {
    for (const [a, b] of RATIOS) {
      if (!transports.includes(a) || !transports.includes(b)) continue;
      ratios[`${a}/${b} ${payload} x${inflight}`] = ratio(points, a, b, payload, inflight);
    }
  }
}

const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const report = { date: new Date().toISOString(), machine, seconds, warmup, observe, points, ratios };
fs.mkdirSync(resultsDir, { recursive: true });
// A quick run is a smoke check: it never replaces the full run's figures.
const base = `${quick ? 'quick' : 'latest'}${observe === 'off' ? '' : `-${observe}`}`;
fs.writeFileSync(path.join(resultsDir, `${base}.json`), JSON.stringify(report, null, 2) + '\n');
fs.writeFileSync(path.join(resultsDir, `${base}.md`), markdown(report));
fs.writeFileSync(path.join(resultsDir, `${base}.svg`), renderChart(points));
console.log('\n' + markdown(report));

function fmt(n: number | undefined, digits = 0): string {
  return n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits);
}

function markdown(r: typeof report): string {
  const lines = [
    `Run ${r.date} on ${r.machine}; ${r.seconds} s per point after ${r.warmup} s warm-up${r.observe === 'off' ? '' : `; observing: ${r.observe}`}.`,
    '',
    '| payload | in flight | transport | req/s | p50 µs | p99 µs | client CPU µs/req | server CPU µs/req | client RSS MiB | server RSS MiB |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const p of r.points) {
    lines.push(
      p.ok
        ? `| ${p.payload} | ${p.inflight} | ${p.transport} | ${fmt(p.rps)} | ${fmt(p.p50us)} | ${fmt(p.p99us)} | ${fmt(p.clientCpuUsPerReq, 1)} | ${fmt(p.serverCpuUsPerReq, 1)} | ${fmt(p.clientRssMiB)} | ${fmt(p.serverRssMiB)} |`
        : `| ${p.payload} | ${p.inflight} | ${p.transport} | ${p.note} | | | | | | |`,
    );
  }
  lines.push('', '| ratio (req/s, same run) | value |', '|---|---|');
  for (const [k, v] of Object.entries(r.ratios)) lines.push(`| ${k} | ${v === undefined ? '—' : `${v.toFixed(2)}x`} |`);
  return lines.join('\n') + '\n';
}
