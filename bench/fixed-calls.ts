/**
 * One process, both ends: a transport's server and client over loopback,
 * `inflight` callers making `warmup` calls, then `calls` more, and exit.
 * A fixed count, not a time, so that bench/instructions-per-call.mjs can
 * run it under callgrind twice (two counts) and take the difference per
 * call: instructions are repeatable where seconds on this VM are not.
 *   node dist/bench/fixed-calls.js <transport> <payload> <inflight> <warmup> <calls>
 */
import { type BenchTransport, payload } from './transport.js';

const [name, kind, inflight, warmup, calls] = process.argv.slice(2);
if (calls === undefined) throw new Error('usage: fixed-calls.js <transport> <payload> <inflight> <warmup> <calls>');
process.env.BENCH_INFLIGHT = inflight;
const transport = ((await import(`./transports/${name}.js`)) as { default: BenchTransport }).default;
const server = await transport.serve();
const client = await transport.connect(server.port);
const value = payload(kind!);

/** `total` calls, `inflight` at a time. */
async function run(total: number): Promise<void> {
  let left = total;
  const caller = async () => {
    while (left-- > 0) await client.call(value);
  };
  await Promise.all(Array.from({ length: Number(inflight) }, caller));
}

await run(Number(warmup));
await run(Number(calls));
await client.close();
await server.close();
process.exit(0);
