// Clock reads (Date.now, the stream layer's systemClock) per call, client and server together, through the stream layer in one process on 127.0.0.1, with where they come from. Diagnostics for bench/results/per-call-cost.md, not a benchmark.
// node bench/clock-reads.mjs [path of another build's lib/stream/index.js, for an A/B]   (after npm run build)
let reads = 0;
let tracking = false;
const where = new Map();
const realNow = Date.now;
// patched before the library is loaded: systemClock takes Date.now as it is then
Date.now = () => {
  reads++;
  if (tracking) {
    const at = new Error().stack.split('\n').slice(2, 4).map((l) => l.trim().replace(/^at /, '').replace(/\(.*?\/lib\//, '(lib/')).join(' < ');
    where.set(at, (where.get(at) ?? 0) + 1);
  }
  return realNow();
};
import { pathToFileURL } from 'node:url';
const entry = process.argv[2] ? pathToFileURL(process.argv[2]).href : '../dist/lib/stream/index.js';
const { ClientStream, MethodDispatch, RpcServer, silentLogger } = await import(entry);
const { payload } = await import('../dist/bench/transport.js');
const server = new RpcServer(new MethodDispatch({ echo: (m) => m }), { logger: silentLogger });
const address = await server.listen('127.0.0.1:0');
const stream = await ClientStream.connect({ host: '127.0.0.1', port: address.port }, { maxInFlight: 1024 });
const value = payload('small');
const CALLS = 6400;
for (const inflight of [1, 64]) {
  for (const measured of [false, true]) {
    reads = 0;
    where.clear();
    tracking = measured;
    let issued = 0;
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        while (issued < CALLS) {
          issued++;
          await stream.request('echo', value);
        }
      }),
    );
    tracking = false;
    if (!measured) continue;
    console.log(`${inflight} in flight: ${(reads / CALLS).toFixed(2)} clock reads per call`);
    for (const [at, n] of [...where].sort((a, b) => b[1] - a[1])) if (n / CALLS >= 0.01) console.log(`  ${(n / CALLS).toFixed(2)}  ${at}`);
  }
}
await stream.close();
await server.close();
