/**
 * Client process: `node client-main.js <transport> <port> <inflight> <payload> <seconds> <warmup>`.
 * Runs `inflight` concurrent callers in a closed loop; reports over IPC.
 */
import { loadTransport, payload } from './transport.js';

const [name, portArg, inflightArg, payloadKind, secondsArg, warmupArg] = process.argv.slice(2);
const transport = await loadTransport(name!);
const client = await transport.connect(Number(portArg));
const inflight = Number(inflightArg);
const body = payload(payloadKind!);
const MAX_SAMPLES = 1 << 20;
const samples = new Float64Array(MAX_SAMPLES);

let measuring = false;
let stop = false;
let count = 0;
let errors = 0;

async function worker(): Promise<void> {
  while (!stop) {
    const t0 = performance.now();
    try {
      await client.call(body);
    } catch {
      errors++;
      continue;
    }
    if (measuring) samples[count++ & (MAX_SAMPLES - 1)] = performance.now() - t0;
  }
}

const workers = Array.from({ length: inflight }, () => worker());
await new Promise((r) => setTimeout(r, Number(warmupArg) * 1000));
process.send!({ type: 'measure' });
await new Promise((r) => process.once('message', r)); // server reset its counters
measuring = true;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await new Promise((r) => setTimeout(r, Number(secondsArg) * 1000));
measuring = false;
const elapsed = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const n = count;
stop = true;
const settled = await Promise.race([Promise.all(workers).then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
const kept = samples.subarray(0, Math.min(n, MAX_SAMPLES)).sort();
const pct = (p: number) => (kept.length ? kept[Math.min(kept.length - 1, Math.floor(kept.length * p))]! * 1000 : NaN);
process.send!({
  type: 'result',
  requests: n,
  errors,
  rps: n / elapsed,
  p50us: pct(0.5),
  p99us: pct(0.99),
  cpuMicros: cpu.user + cpu.system,
  maxRssKiB: process.resourceUsage().maxRSS,
  drained: settled,
});
await Promise.race([client.close(), new Promise((r) => setTimeout(r, 1000))]);
process.exit(0);
