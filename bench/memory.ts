/**
 * Memory under overload: 10x more callers than the window allows, for a
 * while; client RSS sampled every second must stay flat (bounded queue).
 * Usage: node dist/bench/memory.js [--seconds 60] [--window 128]
 */
import { ClientStream } from '../lib/index.js';
import { startServerProcess } from './server-process.js';
import { SMALL } from './transport.js';

const arg = (n: string, d: number) => {
  const i = process.argv.indexOf(`--${n}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const seconds = arg('seconds', 60);
const window = arg('window', 128);
const callers = window * 10;
const server = await startServerProcess('stream');
const client = await ClientStream.connect({ host: '127.0.0.1', port: server.port }, { maxInFlight: window, maxQueued: callers });
let stop = false;
let done = 0;
const workers = Array.from({ length: callers }, async () => {
  while (!stop) {
    await client.request('echo', SMALL);
    done++;
  }
});
const samples: number[] = [];
for (let s = 0; s < seconds; s++) {
  await new Promise((r) => setTimeout(r, 1000));
  samples.push(process.memoryUsage().rss / 2 ** 20);
  if (s % 10 === 9) console.log(`t=${s + 1}s rss ${samples.at(-1)!.toFixed(1)} MiB, ${done} requests, queued ${client.stats.queued}`);
}
stop = true;
await Promise.all(workers);
const tenth = Math.max(1, Math.floor(samples.length / 10));
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const early = avg(samples.slice(tenth, 2 * tenth + 1));
const late = avg(samples.slice(-tenth));
const growth = late - early;
console.log(
  `\n${callers} callers on a window of ${window} for ${seconds} s: ${done} requests; ` +
    `RSS early ${early.toFixed(1)} MiB, late ${late.toFixed(1)} MiB, growth ${growth.toFixed(1)} MiB (${((100 * growth) / early).toFixed(1)}%), peak ${Math.max(...samples).toFixed(1)} MiB`,
);
await client.close();
await server.stop();
process.exit(0);
