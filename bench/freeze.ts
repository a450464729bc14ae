/**
 * Failover under a frozen server: 3 server processes behind one FailoverPool
 * (round robin), 32 callers with a 2 s timeout; one server is frozen with
 * SIGSTOP (a paused VM, a long GC pause, a partition: the socket stays open,
 * nothing answers), then resumed with SIGCONT.
 * Usage: node dist/bench/freeze.js [--freeze 12] [--before 3] [--after 3] [--callers 32] [--idempotent-share 0.25] [--json]
 * Figures: throughput per 250 ms before, during and after the freeze, the
 * time until it is back to 80 % of the pre-freeze rate (over 500 ms windows), failures by code
 * (and whether a never-sent call failed), the slowest settlement against
 * the timeout, and calls executed twice (non-idempotent: must be 0).
 */
import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { FailoverPool, type OccamsError } from '../lib/index.js';
import { freePort } from './free-port.js';
import { countIds } from './ids-files.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name: string, d: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const freezeSeconds = arg('freeze', 12);
const beforeSeconds = arg('before', 3);
const afterSeconds = arg('after', 3);
const callers = arg('callers', 32);
const idemShare = arg('idempotent-share', 0.25);
const json = process.argv.includes('--json');
const TIMEOUT = 2000;
const BUCKET = 250;
const PING_INTERVAL = 1000;
const MAX_MISSED = 3;
const log = (m: string) => !json && console.log(m);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'occams-freeze-'));
const ports = await Promise.all([0, 1, 2].map(() => freePort()));
const children: ChildProcess[] = await Promise.all(
  ports.map(
    (port, i) =>
      new Promise<ChildProcess>((resolve, reject) => {
        const child = fork(path.join(here, 'soak-server.js'), [String(port), path.join(dir, `server-${i}.ids`)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
        const timer = setTimeout(() => reject(new Error(`server ${i} did not start`)), 15_000);
        child.on('message', (m: { type: string }) => {
          if (m.type === 'ready') {
            clearTimeout(timer);
            resolve(child);
          }
        });
      }),
  ),
);

const pool = new FailoverPool(
  ports.map((p) => `127.0.0.1:${p}`),
  { strategy: 'round-robin', timeout: TIMEOUT, pingInterval: PING_INTERVAL, maxMissedPings: MAX_MISSED, idempotent: ['idem'] },
);
await pool.connect();

const t0 = Date.now();
const total = (beforeSeconds + freezeSeconds + afterSeconds) * 1000;
const buckets = new Array<number>(Math.ceil(total / BUCKET) + 1).fill(0);
const tally = { sent: 0, ok: 0, idemOk: 0, failed: {} as Record<string, number>, neverSentFailed: 0, slowestMs: 0, lateNonIdempotent: 0 };
let n = 0;

/** One call, settled exactly once; resolves when it is. */
function one(action: 'work' | 'idem'): Promise<void> {
  const id = ++n + (action === 'idem' ? 1e12 : 0);
  const started = Date.now();
  tally.sent++;
  return new Promise((resolve) => {
    const handle = pool.call(action, id, {
      onResult(value) {
        const at = Date.now();
        if (value === id) {
          tally.ok++;
          if (action === 'idem') tally.idemOk++;
        }
        const slot = Math.floor((at - t0) / BUCKET);
        if (slot >= 0 && slot < buckets.length) buckets[slot]!++;
        settle(at);
      },
      onError(err: OccamsError) {
        tally.failed[err.code] = (tally.failed[err.code] ?? 0) + 1;
        if (!handle.sent) tally.neverSentFailed++;
        settle(Date.now());
      },
    });
    function settle(at: number): void {
      const took = at - started;
      tally.slowestMs = Math.max(tally.slowestMs, took);
      // never later than its timeout plus the timer resolution (1 s), with a little scheduling slack
      if (action === 'work' && took > TIMEOUT + 1000 + 200) tally.lateNonIdempotent++;
      resolve();
    }
  });
}

const end = t0 + total;
const workers = Array.from({ length: callers }, async (_, w) => {
  for (let i = 0; Date.now() < end && i < 10_000_000; i++) {
    await one(w < callers * idemShare ? 'idem' : 'work');
  }
});

const frozen = children[0]!;
await new Promise((r) => setTimeout(r, beforeSeconds * 1000));
const frozenAt = Date.now();
log(`SIGSTOP server 0 for ${freezeSeconds} s`);
frozen.kill('SIGSTOP');
await new Promise((r) => setTimeout(r, freezeSeconds * 1000));
const thawedAt = Date.now();
log('SIGCONT server 0');
frozen.kill('SIGCONT');
await Promise.all(workers);

// the servers finish and write their ids
await Promise.all(children.map((c) => new Promise<void>((r) => (c.once('exit', () => r()), c.kill('SIGTERM')))));
pool.destroy();

const ids = countIds(dir);
fs.rmSync(dir, { recursive: true, force: true });
let twiceNonIdempotent = 0;
let twiceIdempotent = 0;
for (const [id, count] of ids) if (count > 1) id >= 1e12 ? twiceIdempotent++ : twiceNonIdempotent++;

const slot = (at: number) => Math.floor((at - t0) / BUCKET);
const rate = (from: number, to: number) => {
  const xs = buckets.slice(from, to);
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
};
const baseline = rate(slot(t0) + 4, slot(frozenAt)); // skip the first second (warm-up)
// throughput over 1 s windows (four buckets) starting at each bucket, so a noisy 250 ms bucket on a
// 2-core machine running four processes (a GC pause, the frozen pool's reconnect attempts) is not read as an outage;
// the last second's buckets take the window that ends at the thaw (a window cut short there was one bucket wide)
const WINDOW = 4;
const raw = buckets.slice(slot(frozenAt), slot(thawedAt));
const freezeSlots = raw.map((_, i) => {
  const from = Math.min(i, Math.max(0, raw.length - WINDOW));
  const w = raw.slice(from, from + WINDOW);
  return w.reduce((x, y) => x + y, 0) / w.length;
});
// recovered: the first bucket from which every bucket until the thaw holds >= 80 % of the baseline
let recoveredAfter = -1;
for (let i = freezeSlots.length - 1; i >= 0; i--) {
  if (freezeSlots[i]! < 0.8 * baseline) break;
  recoveredAfter = i;
}
const report = {
  date: new Date().toISOString(),
  freezeSeconds,
  callers,
  timeoutMs: TIMEOUT,
  pingInterval: PING_INTERVAL,
  maxMissedPings: MAX_MISSED,
  bound: PING_INTERVAL * MAX_MISSED + 1000,
  baselinePerSecond: Math.round((baseline * 1000) / BUCKET),
  recoveredAfterMs: recoveredAfter < 0 ? null : recoveredAfter * BUCKET + BUCKET,
  minDuringFreezeAfterRecovery: recoveredAfter < 0 ? null : Math.round((Math.min(...freezeSlots.slice(recoveredAfter)) * 1000) / BUCKET),
  sent: tally.sent,
  succeeded: tally.ok,
  idempotentSucceeded: tally.idemOk,
  failed: tally.failed,
  neverSentFailed: tally.neverSentFailed,
  slowestMs: tally.slowestMs,
  lateNonIdempotent: tally.lateNonIdempotent,
  executedTwice: { nonIdempotent: twiceNonIdempotent, idempotent: twiceIdempotent },
  perSecond: buckets.map((b) => Math.round((b * 1000) / BUCKET)),
  frozenFromMs: frozenAt - t0,
  thawedAtMs: thawedAt - t0,
};
if (json) console.log(JSON.stringify(report));
else {
  console.log(JSON.stringify({ ...report, perSecond: undefined }, null, 2));
  const out = path.resolve(here, '../../bench/results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'freeze.json'), JSON.stringify(report, null, 2) + '\n');
}
process.exit(0);
