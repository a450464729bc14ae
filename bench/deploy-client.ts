/**
 * One client process of `npm run deploy`: a FailoverPool on a DNS name
 * (`dns.servers` the bench's zone server), `inFlight` non-idempotent `work`
 * calls kept outstanding, each id unique across clients.
 * Usage (forked): deploy-client.js <index> <name:port> <dns server> <in flight> <resolveInterval ms>
 *   ─► { type: 'ready' }   ◄─ { type: 'go' }
 *   ◄─ { type: 'stop', phases: [{ name, from, to }] }   ─► { type: 'result', ... }
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

/** wall-clock ms each answered call ended, and how long it took */
const endedAt: number[] = [];
const took: number[] = [];
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
      endedAt.push(Date.now());
      took.push(performance.now() - started);
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

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

process.on('message', async (m: { type: string; phases?: { name: string; from: number; to: number }[] }) => {
  if (m.type === 'go') {
    running = true;
    for (let i = 0; i < inFlight; i++) one();
  } else if (m.type === 'stop') {
    running = false;
    // every call ends (answered or failed) before the result goes out; bounded by the call timeout
    if (outstanding > 0) await new Promise<void>((r) => (drained = r));
    const phases = (m.phases ?? []).map((ph) => {
      const xs: number[] = [];
      for (let i = 0; i < endedAt.length; i++) if (endedAt[i]! >= ph.from && endedAt[i]! < ph.to) xs.push(took[i]!);
      return { name: ph.name, calls: xs.length, perSecond: Math.round(xs.length / ((ph.to - ph.from) / 1000)), p50: percentile(xs, 50), p99: percentile(xs, 99), max: percentile(xs, 100) };
    });
    process.send!({ type: 'result', index, tally, outstanding, phases, lastId: n });
    await pool.close();
    process.exit(0);
  }
});
process.once('disconnect', () => process.exit(1));
process.send!({ type: 'ready' });
