/**
 * One client process of `npm run deploy`: a FailoverPool on a DNS name
 * (`dns.servers` the bench's zone server), `inFlight` non-idempotent `work`
 * calls kept outstanding, each id unique across clients.
 * Usage (forked): deploy-client.js <index> <name:port> <dns server> <in flight> <resolveInterval ms>
 *   ─► { type: 'ready' }   ◄─ { type: 'go' }
 *   ◄─ { type: 'stop', phases: [{ name, ranges: [[from, to], ...] }] }   ─► { type: 'result', ... }
 */
import { FailoverPool, type OccamsError } from '../lib/index.js';

const [indexArg, target, dnsServer, inFlightArg, intervalArg] = process.argv.slice(2);
const index = Number(indexArg);
const inFlight = Number(inFlightArg);
const pool = new FailoverPool([target!], {
  dns: { servers: [dnsServer!], minInterval: 250 },
  resolveInterval: Number(intervalArg),
  timeout: 10_000,
});
await pool.connect();

/** wall-clock ms each answered call ended (non-decreasing), and how long it took; `count` used */
let endedAt = new Float64Array(1 << 20);
let took = new Float64Array(1 << 20);
let count = 0;
function record(at: number, ms: number): void {
  if (count === endedAt.length) {
    const e = new Float64Array(count * 2);
    e.set(endedAt);
    endedAt = e;
    const t = new Float64Array(count * 2);
    t.set(took);
    took = t;
  }
  endedAt[count] = at;
  took[count++] = ms;
}
/** first index whose end is >= at */
function firstAtOrAfter(at: number): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (endedAt[mid]! < at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
const tally = { sent: 0, ok: 0, wrong: 0, failed: {} as Record<string, number> };
let n = 0;
let running = false;
let outstanding = 0;
let drained: () => void = () => {};

function one(): void {
  const id = index * 1e9 + ++n;
  const started = performance.now();
  tally.sent++;
  outstanding++;
  pool.call('work', id, {
    onResult(value) {
      if (value === id) tally.ok++;
      else tally.wrong++;
      record(Date.now(), performance.now() - started);
      settle();
    },
    onError(err: OccamsError) {
      tally.failed[err.code] = (tally.failed[err.code] ?? 0) + 1;
      settle();
    },
  });
}
function settle(): void {
  outstanding--;
  if (running) one();
  else if (outstanding === 0) drained();
}

/** `xs` sorted ascending */
function percentile(xs: Float64Array, p: number): number {
  if (xs.length === 0) return NaN;
  return xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
}

process.on('message', async (m: { type: string; phases?: { name: string; ranges: [number, number][] }[] }) => {
  if (m.type === 'go') {
    running = true;
    for (let i = 0; i < inFlight; i++) one();
  } else if (m.type === 'stop') {
    running = false;
    // every call ends (answered or failed) before the result goes out; bounded by the call timeout
    if (outstanding > 0) await new Promise<void>((r) => (drained = r));
    const phases = (m.phases ?? []).map((ph) => {
      const parts = ph.ranges.map(([from, to]) => took.subarray(firstAtOrAfter(from), firstAtOrAfter(to)));
      const xs = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of parts) {
        xs.set(p, at);
        at += p.length;
      }
      xs.sort();
      const seconds = ph.ranges.reduce((a, [from, to]) => a + (to - from), 0) / 1000;
      return { name: ph.name, calls: xs.length, perSecond: Math.round(xs.length / seconds), p50: percentile(xs, 50), p99: percentile(xs, 99), max: percentile(xs, 100) };
    });
    process.send!({ type: 'result', index, tally, outstanding, phases, lastId: n });
    await pool.close();
    process.exit(0);
  }
});
process.once('disconnect', () => process.exit(1));
process.send!({ type: 'ready' });
