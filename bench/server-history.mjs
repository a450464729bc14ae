// Does a server that served small x64 first serve 16 KiB x64 slower? (issue 29, bench/results/writes-per-call.md)
// A fresh server per run (CPU 0); optionally a small x64 client for 2 s first; then a 16 KiB x64 client (CPU 1), measured.
// usage: node bench/server-history.mjs <transport> <none|small> [runs 4]   (after npx tsc -p tsconfig.build.json; under the bench lock)
import { execFileSync, fork } from 'node:child_process';
import path from 'node:path';
const [transport, warmKind, runsArg] = process.argv.slice(2);
const dir = path.resolve('dist', 'bench');
const pin = (pid, c) => { try { execFileSync('taskset', ['-a', '-p', '-c', c, String(pid)], { stdio: 'ignore' }); } catch {} };
const wait = (child, type) => new Promise((res, rej) => { const on = (m) => { if (m && m.type === type) { child.off('message', on); res(m); } }; child.on('message', on); child.once('exit', () => rej(new Error(type + ': exited'))); });
async function client(port, payload, seconds) {
  const c = fork(path.join(dir, 'client-main.js'), [transport, String(port), '64', payload, String(seconds), '0.5'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { ...process.env, BENCH_INFLIGHT: '64' } });
  pin(c.pid, '1');
  await wait(c, 'measure');
  return c;
}
for (let run = 1; run <= Number(runsArg ?? 4); run++) {
  const server = fork(path.join(dir, 'server-main.js'), [transport], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const { port } = await wait(server, 'ready');
  pin(server.pid, '0');
  if (warmKind === 'small') { const w = await client(port, 'small', 2); w.send('go'); await wait(w, 'result'); w.kill('SIGKILL'); }
  const c = await client(port, '16k', 2);
  server.send('reset'); await wait(server, 'reset');
  c.send('go');
  const r = await wait(c, 'result');
  server.send('stats'); const st = await wait(server, 'stats');
  console.log(`${transport} warm=${warmKind} run ${run}: ${Math.round(r.rps)} req/s client ${(r.cpuMicros / r.requests).toFixed(1)} server ${(st.cpuMicros / r.requests).toFixed(1)} us/call`);
  c.kill('SIGKILL'); server.send('stop'); await new Promise((res) => (server.exitCode !== null ? res() : server.once('exit', res)));
}
