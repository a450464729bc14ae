/**
 * The cost of the diagnostics hooks when nobody subscribes, measured where
 * a shared machine's noise cancels best: ONE process holds two builds of
 * the stream layer (this one, and `--before <dist/>` of the commit before
 * the hooks existed), each with its own server and client on 127.0.0.1,
 * and alternates short bursts of the same closed loop between them
 * (`--bursts` each, `--ms` long). A third variant, this build with a no-op
 * subscriber on every channel, runs in the same rotation. Reports the
 * median CPU time per request (client and server together: both are in
 * this process) and requests/s.
 *
 *   node dist/bench/observe-ab.js --before /path/to/old/dist [--bursts 20] [--ms 1000] [--inflight 64] [--no-channels]
 *
 * Writes bench/results/observe-ab.{json,md}.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsDir = path.resolve(here, '../../bench/results');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const before = arg('before', '');
if (!before) throw new Error('--before <dist of the commit before the diagnostics hooks> is required');
const bursts = Number(arg('bursts', '20'));
const ms = Number(arg('ms', '1000'));
const inflight = Number(arg('inflight', '64'));

type StreamModule = typeof import('../lib/stream/index.js');
const load = (dir: string) => import(pathToFileURL(path.join(dir, 'lib/stream/index.js')).href) as Promise<StreamModule>;

interface Side {
  name: string;
  request(): Promise<unknown>;
  before?(): void;
  after?(): void;
  cpu: number[];
  rps: number[];
}

async function side(name: string, mod: StreamModule): Promise<Side> {
  const server = new mod.RpcServer(new mod.MethodDispatch({ echo: (m: unknown) => m }, mod.silentLogger), { logger: mod.silentLogger });
  const address = await server.listen('127.0.0.1:0');
  const client = await mod.ClientStream.connect(address, { maxInFlight: Math.max(128, inflight) });
  const body = { id: 12345, name: 'occams-bench', tags: ['alpha', 'beta', 'gamma'], ok: true };
  return { name, request: () => client.request('echo', body), cpu: [], rps: [] };
}

async function burst(s: Side): Promise<void> {
  s.before?.();
  let stop = false;
  let n = 0;
  const loop = async () => {
    while (!stop) {
      await s.request();
      n++;
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loops = Array.from({ length: inflight }, loop);
  await new Promise((r) => setTimeout(r, ms));
  stop = true;
  await Promise.all(loops);
  const cpu = process.cpuUsage(cpu0);
  const elapsed = (performance.now() - t0) / 1000;
  s.after?.();
  s.cpu.push((cpu.user + cpu.system) / n);
  s.rps.push(n / elapsed);
}

const noop = (): void => {};
const channels = async (mod: StreamModule): Promise<Side> => {
  const s = await side('channels', mod);
  s.before = () => Object.values(mod.CHANNELS).forEach((c) => diagnosticsChannel.subscribe(c, noop));
  s.after = () => Object.values(mod.CHANNELS).forEach((c) => diagnosticsChannel.unsubscribe(c, noop));
  return s;
};

const current = await load(path.resolve(here, '..'));
// --no-channels: leave the channels variant out (its subscribes and unsubscribes make the
// hasSubscribers reads of `off` see two shapes; without it they see one, as in an application)
const sides = [await side('before', await load(path.resolve(before))), await side('off', current)];
if (!process.argv.includes('--no-channels')) sides.push(await channels(current));
for (const s of sides) for (let i = 0; i < 3; i++) await burst(s); // warm-up, discarded
for (const s of sides) {
  s.cpu.length = 0;
  s.rps.length = 0;
}
for (let i = 0; i < bursts; i++) {
  for (let j = 0; j < sides.length; j++) await burst(sides[(i + j) % sides.length]!);
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};
const base = sides[0]!;
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
const rows = sides.map((s) => ({
  variant: s.name,
  cpuUsPerReq: median(s.cpu),
  rps: median(s.rps),
  cpuVsBefore: median(s.cpu) / median(base.cpu) - 1,
  rpsVsBefore: median(s.rps) / median(base.rps) - 1,
}));
const lines = [
  `Run ${new Date().toISOString()} on ${machine}: one process, stream layer client and server, ${inflight} in flight, ${bursts} bursts of ${ms} ms per variant, rotated; medians.`,
  '',
  '| variant | CPU µs/req (client + server) | vs before | req/s | vs before |',
  '|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.variant} | ${r.cpuUsPerReq.toFixed(2)} | ${r.variant === 'before' ? '' : pct(r.cpuVsBefore)} | ${Math.round(r.rps)} | ${r.variant === 'before' ? '' : pct(r.rpsVsBefore)} |`,
  ),
];
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(
  path.join(resultsDir, 'observe-ab.json'),
  JSON.stringify({ date: new Date().toISOString(), machine, inflight, bursts, ms, rows, raw: sides.map((s) => ({ variant: s.name, cpu: s.cpu, rps: s.rps })) }, null, 2) + '\n',
);
fs.writeFileSync(path.join(resultsDir, 'observe-ab.md'), lines.join('\n') + '\n');
console.log(lines.join('\n'));
process.exit(0);
