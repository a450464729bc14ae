/**
 * The server of the hostile bench (`node hostile-server.js`): an RpcServer
 * with default options (only the logger is ours: it counts lines instead of
 * printing them) serving `echo` (the victim's), `sink` (answers null: what
 * the raw attacks call, so the cost measured is reading and decoding, not
 * echoing 8 MiB back) and `hold` (answers null after 20 ms, or at once when
 * cancelled). Talks to the runner over IPC:
 *
 *   runner ── 'reset' ──► server   (a window starts: the histogram and counters restart)
 *   runner ◄── { type: 'reset' } ──
 *   runner ── 'stats' ──► server   (the window ended)
 *   runner ◄── { type: 'stats', eventLoop, cpuPercent, ... } ──
 *
 * The event-loop delay is sampled every 5 ms (monitorEventLoopDelay). Node
 * records each whole interval between two samples (an idle loop reads about
 * 5 ms), so the figures sent are beyond the interval: the max is the longest
 * the loop was stalled in the window.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { MethodDispatch, type RpcLogger, RpcServer, type ServerRequest } from '../lib/index.js';

const HOLD_MS = 20;
/** distinct log lines kept per window (the rest are only counted) */
const KEEP_LINES = 6;

const lines = { log: 0, warn: 0, error: 0, kept: new Map<string, number>() };
function note(level: 'log' | 'warn' | 'error', message: string): void {
  lines[level]++;
  // numbers (ports, seqs, sizes) out, so one kind of line is one entry
  const key = `${level}: ${message.replace(/0x[0-9a-f]+|\d+/gi, 'N').slice(0, 160)}`;
  const seen = lines.kept.get(key);
  if (seen !== undefined) lines.kept.set(key, seen + 1);
  else if (lines.kept.size < KEEP_LINES) lines.kept.set(key, 1);
}
const logger: RpcLogger = { log: (m) => note('log', m), warn: (m) => note('warn', m), error: (m) => note('error', m) };

function hold(_msg: unknown, req: ServerRequest): Promise<null> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, HOLD_MS, null);
    req.onCancel(() => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

const dispatch = new MethodDispatch({ echo: (v: unknown) => v, sink: () => null, hold }, logger);
const server = new RpcServer(dispatch, { logger });
const address = (await server.listen()) as { port: number };

const RESOLUTION = 5;
const histogram = monitorEventLoopDelay({ resolution: RESOLUTION });
histogram.enable();
let cpuBase = process.cpuUsage();
let since = performance.now();
let endedBase = server.stats.ended;

/** a delay recorded by the histogram, less the sampling interval, in ms */
const ms = (ns: number) => Math.max(0, Math.round((ns / 1e6 - RESOLUTION) * 100) / 100);

process.on('message', (msg: string) => {
  if (msg === 'reset') {
    histogram.reset();
    cpuBase = process.cpuUsage();
    since = performance.now();
    endedBase = server.stats.ended;
    lines.log = lines.warn = lines.error = 0;
    lines.kept.clear();
    process.send!({ type: 'reset' });
  } else if (msg === 'stats') {
    const cpu = process.cpuUsage(cpuBase);
    const elapsed = performance.now() - since;
    const stats = server.stats;
    const ended: Record<string, number> = {};
    for (const [k, v] of Object.entries(stats.ended)) {
      const d = v - (endedBase as Record<string, number>)[k]!;
      if (d !== 0 && k !== 'peakStreamBuffer') ended[k] = d;
    }
    process.send!({
      type: 'stats',
      eventLoop: { maxMs: ms(histogram.max), p99Ms: ms(histogram.percentile(99)), meanMs: ms(histogram.mean) },
      cpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / elapsed) * 100),
      rssMiB: Math.round(process.memoryUsage().rss / 1048576),
      maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      connections: stats.connections,
      ended,
      logLines: { log: lines.log, warn: lines.warn, error: lines.error },
      logSamples: [...lines.kept].map(([line, n]) => `${n}x ${line}`),
    });
  } else if (msg === 'connections') {
    process.send!({ type: 'connections', connections: server.stats.connections });
  } else if (msg === 'stop') {
    server.destroy();
    process.exit(0);
  }
});
// the runner died: do not outlive it
process.once('disconnect', () => process.exit(1));
process.send!({ type: 'ready', port: address.port });
