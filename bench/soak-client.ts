/**
 * Soak client: `node soak-client.js <index> <seconds> <concurrency> <port,port,...>`.
 * Round robin over every server with retries (unreachable/io; never
 * timeouts); every request is accounted for; results go to the parent.
 */
import { FailoverPool, type OccamsError } from '../lib/index.js';

const [indexArg, secondsArg, concurrencyArg, portsArg] = process.argv.slice(2);
const index = Number(indexArg);
const pool = new FailoverPool(
  portsArg!.split(',').map((p) => `127.0.0.1:${p}`),
  { strategy: 'round-robin', retryLimit: 2, timeout: 5000, connectTimeout: 1000, backoff: { initial: 100, max: 1000 } },
);
const tally = { sent: 0, ok: 0, failed: {} as Record<string, number>, lost: 0, peakRssMiB: 0, wrongAnswers: 0 };
const open = new Set<number>();
const until = Date.now() + Number(secondsArg) * 1000;
let n = 0;

const rss = setInterval(() => (tally.peakRssMiB = Math.max(tally.peakRssMiB, process.memoryUsage().rss / 2 ** 20)), 250);

async function worker(): Promise<void> {
  while (Date.now() < until) {
    const id = index * 1e9 + ++n;
    tally.sent++;
    open.add(id);
    try {
      const answer = await pool.request('work', id);
      if (answer !== id) tally.wrongAnswers++;
      tally.ok++;
    } catch (err) {
      const code = (err as OccamsError).code ?? 'unknown';
      tally.failed[code] = (tally.failed[code] ?? 0) + 1;
      await new Promise((r) => setTimeout(r, 5));
    } finally {
      open.delete(id);
    }
  }
}

const workers = Promise.all(Array.from({ length: Number(concurrencyArg) }, worker));
// every request settles within its timeout (5 s) plus retries; wait a bound, then count what did not
await Promise.race([workers, new Promise((r) => setTimeout(r, Number(secondsArg) * 1000 + 20_000))]);
tally.lost = open.size;
clearInterval(rss);
process.send!({ type: 'result', tally });
pool.destroy();
setTimeout(() => process.exit(0), 100);
