/**
 * The client of bench/overload.ts, in its own process (one per point): one
 * OccamsClient with its client-level `timeout` (no per-call option: the
 * client sends every call's time left to the server as its deadline);
 * offers calls open-loop (at a fixed rate, as independent users arrive): a
 * warm-up, then, once the parent says 'go', the measured phase.
 * Usage: node dist/bench/overload-client.js <port> <warm-up calls/s> <warm-up s> <calls/s> <s> <timeout ms> <window>
 * IPC: sends { type: 'warm' } after the warm-up; on 'go' runs the phase and
 * sends { type: 'result', latencies (ms, answered calls), failed (by code), offered }.
 */
import { performance } from 'node:perf_hooks';

import { OccamsClient, type OccamsError } from '../lib/index.js';

const [port, warmRate, warmSecs, rate, secs, timeout, window] = process.argv.slice(2).map(Number) as [number, number, number, number, number, number, number];
const TIMEOUT = timeout;

/** Offers `rate` calls/s for `secs`, open-loop; resolves once every call settled. */
async function offer(client: OccamsClient, rate: number, secs: number): Promise<{ latencies: number[]; failed: Record<string, number>; offered: number }> {
  const latencies: number[] = [];
  const failed: Record<string, number> = {};
  const total = Math.round(rate * secs);
  let sent = 0;
  let settled = 0;
  let allSettled!: () => void;
  const done = new Promise<void>((r) => (allSettled = r));
  const trace = process.env.OVERLOAD_TRACE ? new Map<number, number[]>() : undefined;
  const fire = (): void => {
    const start = performance.now();
    // no per-call options: the client-level timeout bounds the call, and reaches the server as its deadline
    client.request('work', { deadline: Date.now() + TIMEOUT }).then(
      () => {
        const took = performance.now() - start;
        latencies.push(took);
        if (trace !== undefined) {
          const b = Math.floor((start - t0) / 250);
          let xs = trace.get(b);
          if (xs === undefined) trace.set(b, (xs = []));
          xs.push(took);
        }
        if (++settled === total) allSettled();
      },
      (err: OccamsError) => {
        failed[err.code] = (failed[err.code] ?? 0) + 1;
        if (++settled === total) allSettled();
      },
    );
  };
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor((rate * (performance.now() - t0)) / 1000));
      while (sent < due) {
        sent++;
        fire();
      }
      if (sent >= total) return resolve();
      setTimeout(tick, 1);
    };
    tick();
  });
  // every call settles within its timeout (and the timer's resolution)
  await Promise.race([done, new Promise((r) => setTimeout(r, TIMEOUT + 3000))]);
  if (trace !== undefined) {
    for (const [b, xs] of [...trace].sort((x, y) => x[0] - y[0])) {
      xs.sort((x, y) => x - y);
      console.error(
        `  ${b * 250} ms: ${xs.length} answered, p50 ${xs[xs.length >> 1]!.toFixed(1)}, p99 ${xs[Math.floor(xs.length * 0.99)]!.toFixed(1)}, max ${xs[xs.length - 1]!.toFixed(1)}`,
      );
    }
  }
  return { latencies, failed, offered: total };
}

const client = new OccamsClient({ port, maxInFlight: window, timeout: TIMEOUT });
await client.connect();
if (warmSecs > 0) await offer(client, warmRate, warmSecs);
process.send!({ type: 'warm' });
await new Promise<void>((resolve) => process.once('message', () => resolve()));
const result = await offer(client, rate, secs);
process.send!({ type: 'result', ...result }, () => {
  void client.close().finally(() => process.exit(0));
});
