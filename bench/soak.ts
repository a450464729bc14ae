/**
 * Faults under load: client processes keep steady load on server processes
 * that are killed (SIGKILL), gracefully restarted (SIGTERM) or frozen
 * (SIGSTOP, then SIGCONT) at random. Every call is non-idempotent: a call
 * the server may have run is never retried, so none may run twice.
 * Usage: node dist/bench/soak.js [--seconds 60] [--servers 3] [--clients 3] [--concurrency 64] [--json]
 * Figures: sent, succeeded, failed by code, lost (must be 0), duplicates
 * executed by retries (must be 0), peak RSS per process, time to recover
 * after a restart.
 */
import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from './free-port.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name: string, d: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const seconds = arg('seconds', 60);
const serverCount = arg('servers', 3);
const clientCount = arg('clients', 3);
const concurrency = arg('concurrency', 64);
const json = process.argv.includes('--json');
const log = (m: string) => !json && console.log(m);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'occams-soak-'));
const ports = await Promise.all(Array.from({ length: serverCount }, () => freePort()));
interface Slot {
  child: ChildProcess | undefined;
  generation: number;
  peakRssMiB: number;
}
const slots: Slot[] = ports.map(() => ({ child: undefined, generation: 0, peakRssMiB: 0 }));
const recoveries: number[] = [];
const faults = { kills: 0, gracefulRestarts: 0, freezes: 0 };
/** how long each freeze lasted, ms */
const freezeMs: number[] = [];

function startServer(i: number): Promise<void> {
  const slot = slots[i]!;
  const file = path.join(dir, `server-${i}-${slot.generation++}.ids`);
  const child = fork(path.join(here, 'soak-server.js'), [String(ports[i]), file], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  slot.child = child;
  return new Promise((resolve, reject) => {
    let readyAt = 0;
    const timer = setTimeout(() => reject(new Error(`server ${i} did not start`)), 15_000);
    child.on('message', (m: { type: string; at: number }) => {
      if (m.type === 'ready') {
        readyAt = m.at;
        clearTimeout(timer);
        resolve();
      } else if (m.type === 'first' && slot.generation > 1) {
        recoveries.push(m.at - readyAt);
      }
    });
    const rss = setInterval(() => {
      try {
        const kib = Number(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)?.[1] ?? 0);
        slot.peakRssMiB = Math.max(slot.peakRssMiB, kib / 1024);
      } catch {
        /* exited */
      }
    }, 500);
    child.once('exit', () => clearInterval(rss));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
}

await Promise.all(slots.map((_, i) => startServer(i)));
log(`servers on ${ports.join(', ')}; ${clientCount} clients x ${concurrency} in flight for ${seconds} s`);

const results: Promise<any>[] = [];
for (let c = 0; c < clientCount; c++) {
  const child = fork(path.join(here, 'soak-client.js'), [String(c + 1), String(seconds), String(concurrency), ports.join(',')], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  results.push(new Promise((resolve) => child.on('message', (m: { type: string; tally: unknown }) => m.type === 'result' && resolve(m.tally))));
}

// Chaos: until 2 s before the end, a fault every 1-3 s on a random server;
// the three kinds take turns (in a random order), so even a short run sees each.
const kinds = ['freeze', 'kill', 'restart'].sort(() => Math.random() - 0.5);
let faultIndex = 0;
const chaosUntil = Date.now() + Math.max(0, seconds - 2) * 1000;
while (Date.now() + 1000 < chaosUntil) {
  await new Promise((r) => setTimeout(r, 1000 + Math.random() * 2000));
  if (Date.now() >= chaosUntil) break;
  const i = Math.floor(Math.random() * serverCount);
  const child = slots[i]!.child!;
  const kind = kinds[faultIndex++ % kinds.length];
  if (kind === 'freeze') {
    // SIGSTOP: the socket stays open and nothing answers (a paused VM, a partition), then SIGCONT
    faults.freezes++;
    const ms = Math.round(1500 + Math.random() * 3000);
    freezeMs.push(ms);
    log(`  SIGSTOP server ${i} for ${ms} ms`);
    child.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, Math.min(ms, Math.max(0, chaosUntil - Date.now()))));
    child.kill('SIGCONT');
    continue;
  }
  if (kind === 'kill') {
    faults.kills++;
    log(`  kill -9 server ${i}`);
    child.kill('SIGKILL');
    await exited(child);
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 800));
  } else {
    faults.gracefulRestarts++;
    log(`  graceful restart of server ${i}`);
    child.kill('SIGTERM');
    await exited(child);
  }
  await startServer(i);
}

const tallies = await Promise.all(results);
for (const slot of slots) {
  slot.child!.kill('SIGTERM');
  await exited(slot.child!);
}

// Duplicates: an id executed on more than one server (or twice on one).
// Every executed id, sorted: equal neighbours are duplicates.
const files = fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f)));
const ids = new Float64Array(files.reduce((n, b) => n + Math.floor(b.length / 8), 0));
let filled = 0;
for (const buf of files) for (let o = 0; o + 8 <= buf.length; o += 8) ids[filled++] = buf.readDoubleLE(o);
ids.sort();
let duplicates = 0;
for (let k = 1; k < ids.length; k++) if (ids[k] === ids[k - 1]) duplicates++;
const executed = ids.length - duplicates;
fs.rmSync(dir, { recursive: true, force: true });

const failed: Record<string, number> = {};
for (const t of tallies) for (const [k, v] of Object.entries(t.failed as Record<string, number>)) failed[k] = (failed[k] ?? 0) + v;
const sum = (k: string) => tallies.reduce((a, t) => a + t[k], 0);
const report = {
  date: new Date().toISOString(),
  seconds,
  servers: serverCount,
  clients: clientCount,
  concurrencyPerClient: concurrency,
  faults,
  freezeMs: freezeMs.length ? { min: Math.min(...freezeMs), max: Math.max(...freezeMs) } : null,
  sent: sum('sent'),
  succeeded: sum('ok'),
  failed,
  failedTotal: Object.values(failed).reduce((a, b) => a + b, 0),
  lost: sum('lost'),
  wrongAnswers: sum('wrongAnswers'),
  executed,
  duplicates,
  recoveryMs: recoveries.length ? { median: recoveries.sort((a, b) => a - b)[recoveries.length >> 1], max: Math.max(...recoveries), samples: recoveries.length } : null,
  peakRssMiB: { clients: tallies.map((t) => Math.round(t.peakRssMiB)), servers: slots.map((s) => Math.round(s.peakRssMiB)) },
};
if (json) console.log(JSON.stringify(report));
else {
  console.log(JSON.stringify(report, null, 2));
  const out = path.resolve(here, '../../bench/results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'soak.json'), JSON.stringify(report, null, 2) + '\n');
}
process.exit(report.lost === 0 && report.duplicates === 0 && report.sent === report.succeeded + report.failedTotal ? 0 : 1);
