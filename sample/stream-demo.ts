/**
 * The stream layer alone, no Nest: a server and a client in one process.
 * Run: npm run demo:stream (100,000 pipelined requests; `node dist/sample/stream-demo.js N` for N).
 */
import { ClientStream, MethodDispatch, type OccamsError, RpcServer } from '../lib/index.js';
import { calculatorMethods } from './calculator-methods.js';

const server = new RpcServer(new MethodDispatch(calculatorMethods));
const address = await server.listen('127.0.0.1:0');
const client = await ClientStream.connect(address);

console.log(`server on ${JSON.stringify(address)}, extensions 0x${client.features.toString(16)}`);
console.log('add(2, 3)            =', await client.request('Calculator.add', [2, 3]));
console.log('div(7, 2)            =', await client.request('Calculator.div', [7, 2]));
await client.request('Calculator.div', [1, 0]).catch((e: OccamsError) => console.log('div(1, 0)            ->', e.code, JSON.stringify(e.message)));
await client.request('Calculator.might_fail_with_errno', -1).catch((e: OccamsError & { errno?: number }) => console.log('might_fail(-1)       ->', e.code, 'errno', e.errno));

const n = Number(process.argv[2] ?? 100_000);
const started = process.hrtime.bigint();
let sum = 0;
const inflight = 1024;
let next = 0;
await Promise.all(
  Array.from({ length: inflight }, async () => {
    while (next < n) {
      next++;
      const two = (await client.request('Calculator.add', [1, 1])) as number;
      sum += two;
    }
  }),
);
const secs = Number(process.hrtime.bigint() - started) / 1e9;
console.log(`${n} pipelined requests (${inflight} in flight): ${Math.round(n / secs)} req/s, sum ${sum}`);

await client.close();
await server.close();
console.log('closed cleanly');
