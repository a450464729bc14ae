/** A closed-loop load generator: `inflight` callers, each awaiting its previous call. */
export interface LoopResult {
  requests: number;
  errors: number;
  rps: number;
  p50us: number;
  p99us: number;
  /** this process's CPU time (user + system) during the measured window, µs */
  cpuMicros: number;
  /** every caller finished its last call soon after the stop */
  drained: boolean;
}

/**
 * Runs `inflight` callers for `warmup` s, then measures for `seconds` s.
 * `beforeMeasure` runs between the two (e.g. to let a server reset its counters).
 */
export async function closedLoop(call: () => Promise<unknown>, inflight: number, seconds: number, warmup: number, beforeMeasure?: () => Promise<void>): Promise<LoopResult> {
  const MAX = 1 << 20;
  const samples = new Float64Array(MAX);
  let measuring = false;
  let stop = false;
  let count = 0;
  let errors = 0;
  const worker = async () => {
    while (!stop) {
      const t0 = performance.now();
      try {
        await call();
      } catch {
        errors++;
        continue;
      }
      if (measuring) samples[count++ & (MAX - 1)] = performance.now() - t0;
    }
  };
  const workers = Array.from({ length: inflight }, worker);
  await new Promise((r) => setTimeout(r, warmup * 1000));
  await beforeMeasure?.();
  measuring = true;
  errors = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const n = count;
  stop = true;
  const drainWait = Math.min(5000, 1000 + seconds * 1000);
  const drained = await Promise.race([Promise.all(workers).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), drainWait))]);
  const kept = samples.subarray(0, Math.min(n, MAX)).sort();
  const pct = (p: number) => (kept.length ? kept[Math.min(kept.length - 1, Math.floor(kept.length * p))]! * 1000 : NaN);
  return { requests: n, errors, rps: n / elapsed, p50us: pct(0.5), p99us: pct(0.99), cpuMicros: cpu.user + cpu.system, drained };
}
