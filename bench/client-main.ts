/**
 * Client process: `node client-main.js <transport> <port> <inflight> <payload> <seconds> <warmup>`.
 * Runs `inflight` concurrent callers in a closed loop; reports over IPC.
 */
import { closedLoop } from './closed-loop.js';
import { setupObservation } from './observe-setup.js';
import { loadTransport, payload } from './transport.js';

await setupObservation(); // OCCAMS_BENCH_OBSERVE

const [name, portArg, inflightArg, payloadKind, secondsArg, warmupArg] = process.argv.slice(2);
const transport = await loadTransport(name!);
const client = await transport.connect(Number(portArg));
const body = payload(payloadKind!);

const result = await closedLoop(
  () => client.call(body),
  Number(inflightArg),
  Number(secondsArg),
  Number(warmupArg),
  async () => {
    process.send!({ type: 'measure' });
    await new Promise((r) => process.once('message', r)); // the server reset its counters
  },
);
process.send!({ type: 'result', ...result, maxRssKiB: process.resourceUsage().maxRSS });
await Promise.race([client.close(), new Promise((r) => setTimeout(r, 1000))]);
process.exit(0);
