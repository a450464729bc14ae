// Sequential calls (one in flight) through one transport, server in a child process: req/s, user and system CPU per call on each side (/proc), read and write syscalls per call. Diagnostics for the 1-in-flight points (bench/results/x1-costs.md), not a benchmark.
// node bench/x1-syscalls.mjs <transport> [calls] [payload]   (after npm run build; SYS_GC=1: the server under --trace-gc; SYS_PROF=1: under --cpu-prof into /tmp/sysprof)
import { fork } from 'node:child_process';
import fs from 'node:fs';
const [name, nArg, kind = '16k'] = process.argv.slice(2);
const n = Number(nArg ?? 20000);
if (process.env.SYS_CHILD) {
  const t = (await import(`../dist/bench/transports/${name}.js`)).default;
  const s = await t.serve();
  process.on('SIGINT', () => process.exit(0));
  process.send({ port: s.port });
} else {
  const child = fork(new URL(import.meta.url).pathname, [name, String(n), kind], { env: { ...process.env, SYS_CHILD: '1' }, execArgv: process.env.SYS_GC ? ['--trace-gc'] : process.env.SYS_PROF ? ['--cpu-prof', '--cpu-prof-dir', '/tmp/sysprof', '--cpu-prof-interval', '100'] : [] });
  const { port } = await new Promise((r) => child.once('message', r));
  const { payload } = await import('../dist/bench/transport.js');
  const t = (await import(`../dist/bench/transports/${name}.js`)).default;
  const c = await t.connect(port);
  const p = payload(kind);
  for (let i = 0; i < 2000; i++) await c.call(p);
  const io = (pid) => Object.fromEntries(fs.readFileSync(`/proc/${pid}/io`, 'utf8').trim().split('\n').map((l) => l.split(': ')).map(([k, v]) => [k, Number(v)]));
  const st = (pid) => { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return [Number(f[11]) * 10000, Number(f[12]) * 10000]; };
  const sc0 = st(child.pid); const s0 = io(child.pid), c0 = io(process.pid); const cpu0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < n; i++) await c.call(p);
  const el = performance.now() - t0; const cpu = process.cpuUsage(cpu0);
  const sc1 = st(child.pid); const s1 = io(child.pid), c1 = io(process.pid);
  console.log(name, kind, `${(n / el * 1000).toFixed(0)} req/s`, `client cpu ${((cpu.user + cpu.system) / n).toFixed(1)} µs/req`, `server user ${((sc1[0] - sc0[0]) / n).toFixed(1)} sys ${((sc1[1] - sc0[1]) / n).toFixed(1)} µs/req`, `client user ${(cpu.user / n).toFixed(1)} sys ${(cpu.system / n).toFixed(1)}`, 'server syscr/req', ((s1.syscr - s0.syscr) / n).toFixed(2), 'syscw/req', ((s1.syscw - s0.syscw) / n).toFixed(2), 'client syscr/req', ((c1.syscr - c0.syscr) / n).toFixed(2), 'syscw/req', ((c1.syscw - c0.syscw) / n).toFixed(2));
  await c.close(); child.kill('SIGINT'); await new Promise((r) => child.once('exit', r)); process.exit(0);
}
