/**
 * A stream-layer client process for the Calculator (either server: the Nest
 * `calculator/main.ts` or `stream-server.ts`), for any runtime:
 * `node dist/sample/stream-client.js [host:port] [requests]` (default
 * 127.0.0.1:$OCCAMS_PORT, 10000 pipelined requests). Checks every answer,
 * prints the pipelined rate, exits 0 when every answer was right, 1 otherwise.
 */
import { DEFAULT_OCCAMS_HOST, DEFAULT_OCCAMS_PORT } from '../lib/defaults.js';
import { ClientStream, type OccamsError, RemoteErrnoError } from '../lib/index.js';

const address = process.argv[2] ?? `${DEFAULT_OCCAMS_HOST}:${process.env.OCCAMS_PORT ?? DEFAULT_OCCAMS_PORT}`;
const requests = Number(process.argv[3] ?? 10_000);
const inFlight = 256;

const client = await ClientStream.connect(address, { maxInFlight: inFlight });
let wrong = 0;
function expectValue(what: string, got: unknown, want: unknown): void {
  const ok = JSON.stringify(got) === JSON.stringify(want);
  if (!ok) wrong++;
  console.log(`${what.padEnd(22)} = ${JSON.stringify(got)}${ok ? '' : `  WRONG, expected ${JSON.stringify(want)}`}`);
}
const outcome = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    (value) => ({ value }),
    (e: OccamsError) => (e instanceof RemoteErrnoError ? { code: e.code, errno: e.errno } : { code: e.code, message: e.message }),
  );

expectValue('add(2, 3)', await client.request('Calculator.add', [2, 3]), 5);
expectValue('div(7, 2)', await client.request('Calculator.div', [7, 2]), 3);
expectValue('div(1, 0)', await outcome(client.request('Calculator.div', [1, 0])), { code: 'user_error', message: 'division by zero' });
expectValue('might_fail(21)', await client.request('Calculator.might_fail_with_errno', 21), 42);
expectValue('might_fail(-1)', await outcome(client.request('Calculator.might_fail_with_errno', -1)), { code: 'user_errno', errno: 22 });
expectValue('nope()', ((await outcome(client.request('Calculator.nope', 1))) as { code?: string }).code, 'rpc_method_notfound');

const started = performance.now();
let sum = 0;
let next = 0;
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (next < requests) {
      next++;
      const two = (await client.request('Calculator.add', [1, 1])) as number; // not `sum += await ...`: that reads sum before the await
      sum += two;
    }
  }),
);
const secs = (performance.now() - started) / 1000;
expectValue(`${requests} x add(1, 1)`, sum, 2 * requests);
console.log(`${requests} pipelined requests (${inFlight} in flight): ${Math.round(requests / secs)} req/s`);

await client.close();
console.log(wrong === 0 ? 'all answers right' : `${wrong} wrong answer(s)`);
process.exitCode = wrong === 0 ? 0 : 1;
