// GC on both sides of one bench point, from V8's own trace (issue 29, bench/results/gc-16k-x1024.md):
// a fresh server and a fresh client process per run, forked as bench/run.ts forks them, under extra node
// flags (default --trace-gc-nvp), pinned by placement (auto: both CPUs; apart: server CPU 0, client CPU 1);
// sums, over the measured window (from the client's 'measure' message on), each side's scavenges (count,
// pause ms, bytes promoted to the old generation) and mark-compacts, and their pauses as a share of that
// side's CPU time. Build first (npx tsc -p tsconfig.build.json); run it under the bench lock.
// usage: node bench/gc-trace.mjs <transport> <payload> <inflight> <auto|apart> [runs 3] [seconds 2] [warmup 0.5] [-- node flags for both]
// Under `-- --trace-deopt` each side's line also counts the deopts in the measured window (V8's "bailout" and
// "marking dependent code" lines), for telling a process that keeps deoptimizing from one that settled.
// env: DUMP_DIR: each run's whole trace output per side is written there (runN-server.log, runN-client.log);
// SERVER_FLAGS / CLIENT_FLAGS (space-separated) for one side; DIST (default dist) for another build;
// OCCAMS_BEFORE_LIB for the *-before transports, as bench/run.ts.
import { execFileSync, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
const [transport, payload, inflight, placement, runsArg, secArg, warmArg, ...rest] = process.argv.slice(2);
const runs = Number(runsArg ?? 3), seconds = Number(secArg ?? 2), warmup = Number(warmArg ?? 0.5);
const flags = rest[0] === '--' ? rest.slice(1) : ['--trace-gc-nvp'];
const sflags = process.env.SERVER_FLAGS ? process.env.SERVER_FLAGS.split(' ') : flags;
const cflags = process.env.CLIENT_FLAGS ? process.env.CLIENT_FLAGS.split(' ') : flags;
const dir = path.resolve(process.env.DIST ?? 'dist', 'bench');
const cpus = { auto: ['0-1', '0-1'], apart: ['0', '1'] }[placement];
const pin = (pid, c) => { try { execFileSync('taskset', ['-a', '-p', '-c', c, String(pid)], { stdio: 'ignore' }); } catch {} };
const wait = (child, type) => new Promise((res, rej) => { const on = (m) => { if (m && m.type === type) { child.off('message', on); res(m); } }; child.on('message', on); child.once('exit', () => rej(new Error(type + ': exited'))); });
function gcSum(text) {
  const s = { scav: 0, scavMs: 0, promoted: 0, mc: 0, mcMs: 0 };
  for (const line of text.split('\n')) {
    if (!line.includes('gc=')) continue;
    const kv = Object.fromEntries(line.trim().split(/\s+/).map((x) => x.split('=')));
    const pause = Number(kv.pause ?? 0);
    if (kv.gc === 's') { s.scav++; s.scavMs += pause; s.promoted += Number(kv.promoted ?? 0); }
    else if (kv.gc === 'mc' || kv.gc === 'ms' || kv.gc === 'mmc') { s.mc++; s.mcMs += pause; }
  }
  return s;
}
const fmt = (s) => `scav ${s.scav} ${s.scavMs.toFixed(0)}ms promoted ${(s.promoted / 1e6).toFixed(1)}MB | mc ${s.mc} ${s.mcMs.toFixed(0)}ms`;
for (let run = 1; run <= runs; run++) {
  const server = fork(path.join(dir, 'server-main.js'), [transport], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], execArgv: sflags });
  let sout = ''; server.stdout.on('data', (d) => (sout += d));
  const { port } = await wait(server, 'ready');
  pin(server.pid, cpus[0]);
  const client = fork(path.join(dir, 'client-main.js'), [transport, String(port), inflight, payload, String(seconds), String(warmup)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], execArgv: cflags, env: { ...process.env, BENCH_INFLIGHT: inflight } });
  let cout = ''; client.stdout.on('data', (d) => (cout += d));
  pin(client.pid, cpus[1]);
  await wait(client, 'measure');
  await new Promise((r) => setTimeout(r, 20));
  const s0 = sout.length, c0 = cout.length;
  server.send('reset'); await wait(server, 'reset');
  client.send('go');
  const r = await wait(client, 'result');
  server.send('stats'); const st = await wait(server, 'stats');
  await new Promise((res) => setTimeout(res, 50));
  const sg = gcSum(sout.slice(s0)), cg = gcSum(cout.slice(c0));
  const deopts = (text) => { const n = (text.match(/\[bailout|\[marking dependent code/g) ?? []).length; return n === 0 ? '' : `  deopts ${n}`; };
  const req = r.requests;
  const ccpu = r.cpuMicros / 1000, scpu = st.cpuMicros / 1000;
  console.log(`${transport} ${payload} x${inflight} ${placement} run ${run}: ${Math.round(r.rps)} req/s p99 ${(r.p99us / 1000).toFixed(1)}ms load ${os.loadavg()[0].toFixed(1)}`);
  console.log(`  client ${(r.cpuMicros / req).toFixed(1)}us/req cpu ${ccpu.toFixed(0)}ms gc-pause ${((100 * (cg.scavMs + cg.mcMs)) / ccpu).toFixed(1)}% rss ${(r.maxRssKiB / 1024).toFixed(0)}MiB  ${fmt(cg)}${deopts(cout.slice(c0))}`);
  console.log(`  server ${(st.cpuMicros / req).toFixed(1)}us/req cpu ${scpu.toFixed(0)}ms gc-pause ${((100 * (sg.scavMs + sg.mcMs)) / scpu).toFixed(1)}% rss ${(st.maxRssKiB / 1024).toFixed(0)}MiB  ${fmt(sg)}${deopts(sout.slice(s0))}`);
  if (process.env.DUMP_DIR) {
    // each side's trace output, whole (warm-up included), for comparing a fast process with a slow one
    fs.writeFileSync(path.join(process.env.DUMP_DIR, `run${run}-server.log`), sout);
    fs.writeFileSync(path.join(process.env.DUMP_DIR, `run${run}-client.log`), cout);
  }
  client.kill('SIGKILL');
  server.send('stop');
  await new Promise((res) => (server.exitCode !== null ? res() : server.once('exit', res)));
}
