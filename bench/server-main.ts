/** Server process: `node server-main.js <transport>`; talks to the runner over IPC. */
import { setupObservation } from './observe-setup.js';
import { loadTransport } from './transport.js';

await setupObservation(); // OCCAMS_BENCH_OBSERVE

const transport = await loadTransport(process.argv[2]!);
const server = await transport.serve();
let base = process.cpuUsage();
process.on('message', (msg: string) => {
  if (msg === 'reset') {
    base = process.cpuUsage();
    process.send!({ type: 'reset' });
  } else if (msg === 'stats') {
    const cpu = process.cpuUsage(base);
    process.send!({ type: 'stats', cpuMicros: cpu.user + cpu.system, maxRssKiB: process.resourceUsage().maxRSS, rssKiB: process.memoryUsage().rss / 1024 });
  } else if (msg === 'stop') {
    void server.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  }
});
process.send!({ type: 'ready', port: server.port });
