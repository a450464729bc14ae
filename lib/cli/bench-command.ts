import { type FailoverPool, OccamsError } from '../stream/index.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, count, duration, metadata, parse, positionals } from './command-line.js';
import { callTimeout, connect, type ConnectionFlags } from './connect.js';
import { ExitCode, exitCodeOf, UsageError } from './exit-codes.js';
import { drawHistogram, type HistogramBucket, LatencyRecorder, type LatencySummary } from './latency-recorder.js';
import { describeFailure, type Streams, toJson } from './output.js';
import { requestValue } from './request-value.js';

export const BENCH_HELP = `Usage: nestjs-occams bench ADDRESS PATTERN [JSON] [options]

Load-tests PATTERN as ghz does: --concurrency callers, each sending its next
call as soon as the previous one is answered (a closed loop), for
--duration or until --calls calls were made. A progress line shows on a
terminal while it runs; then throughput, latency percentiles and a latency
histogram (or all of it as JSON with --json). Ctrl-C stops early and
reports what was measured. Exit code 0 when some call succeeded; else the
code of the first failure, as for call.

Options:
  -c, --concurrency N     callers at once (default 50)
  -z, --duration DURATION how long to measure (default 10s unless --calls is given)
  -n, --calls N           stop after N calls (after the warm-up)
      --warmup DURATION   run this long first, unmeasured (default 0)
      --connections N     connections per address (default 1)
  -m, --metadata KEY=VAL  metadata sent with every call (repeatable)
      --json              the report as JSON on stdout
      --progress          show the progress line even when stderr is not a terminal

${CONNECTION_HELP}

Example:
  nestjs-occams bench 127.0.0.1:7100 Calculator.add '[2, 3]' -c 64 -z 10s`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  concurrency: { type: 'string', short: 'c' },
  duration: { type: 'string', short: 'z' },
  calls: { type: 'string', short: 'n' },
  warmup: { type: 'string' },
  connections: { type: 'string' },
  metadata: { type: 'string', short: 'm', multiple: true },
  json: { type: 'boolean' },
  progress: { type: 'boolean' },
} as const;

interface BenchFlags extends ConnectionFlags {
  concurrency?: string;
  duration?: string;
  calls?: string;
  warmup?: string;
  connections?: string;
  metadata?: string[];
  json?: boolean;
  progress?: boolean;
  help?: boolean;
}

/** What `bench --json` prints. */
export interface BenchReport {
  address: string;
  pattern: string;
  concurrency: number;
  connections: number;
  /** ms measured (after the warm-up) */
  durationMs: number;
  warmupMs: number;
  warmupCalls: number;
  /** calls made while measuring, and how they ended */
  calls: number;
  ok: number;
  errors: number;
  errorCodes: Record<string, number>;
  /** successful calls per second */
  rps: number;
  /** latency of the successful calls, ms */
  latencyMs: LatencySummary | null;
  histogram: HistogramBucket[];
  interrupted: boolean;
}

/** The closed loop's state, shared by its callers. */
class Run {
  readonly latencies = new LatencyRecorder();
  readonly errorCodes: Record<string, number> = {};
  firstError: unknown = undefined;
  measuring = false;
  stopped = false;
  started = 0;
  calls = 0;
  warmupCalls = 0;
  errors = 0;

  constructor(
    private readonly pool: FailoverPool,
    private readonly pattern: string,
    private readonly value: unknown,
    private readonly options: { timeout: number; meta?: Record<string, unknown> },
    private readonly maxCalls: number,
    private readonly onLast: () => void,
  ) {}

  async caller(): Promise<void> {
    while (!this.stopped) {
      const measured = this.measuring;
      if (measured && this.started >= this.maxCalls) return;
      if (measured) this.started++;
      const t0 = performance.now();
      try {
        await this.pool.request(this.pattern, this.value, this.options);
        if (measured) this.latencies.record(performance.now() - t0);
        else this.warmupCalls++;
      } catch (err) {
        if (!measured) continue;
        this.errors++;
        const code = err instanceof OccamsError ? err.code : 'error';
        this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1;
        this.firstError ??= err;
      }
      if (measured && ++this.calls >= this.maxCalls) this.onLast();
    }
  }
}

export async function benchCommand(args: string[], io: Streams, interrupted: AbortSignal): Promise<ExitCode> {
  const { values, positionals: given } = parse<BenchFlags>('bench', args, OPTIONS);
  if (values.help) {
    io.stdout.write(`${BENCH_HELP}\n`);
    return ExitCode.Ok;
  }
  const [address, pattern, json] = positionals('bench', given, ['ADDRESS', 'PATTERN', 'JSON'], 1);
  const value = await requestValue(json);
  const concurrency = count(values.concurrency, 50, 'concurrency');
  const maxCalls = values.calls === undefined ? Infinity : count(values.calls, 1, 'calls');
  const measureMs = values.duration === undefined && values.calls !== undefined ? Infinity : duration(values.duration, 10_000, 'duration');
  const warmupMs = values.warmup === undefined ? 0 : duration(values.warmup, 0, 'warmup');
  const connections = count(values.connections, 1, 'connections');
  if (values.json && values.progress) throw new UsageError('bench: --json and --progress: the progress line goes to stderr, use one or the other');
  const meta = metadata(values.metadata);
  const timeout = callTimeout(values);
  const pool = await connect(address!, values, { connections, maxInFlight: Math.max(128, concurrency) });
  let stop: () => void = () => {};
  const finished = new Promise<void>((resolve) => (stop = resolve));
  const run = new Run(pool, pattern!, value, { timeout, ...(meta === undefined ? {} : { meta }) }, maxCalls, () => stop());
  const onInterrupt = (): void => stop();
  interrupted.addEventListener('abort', onInterrupt, { once: true });
  const showProgress = values.progress === true || (io.stderr.isTTY === true && !values.json);
  let progress: NodeJS.Timeout | undefined;
  let measuredMs = 0;
  try {
    const callers = Array.from({ length: concurrency }, () => run.caller());
    if (warmupMs > 0) await Promise.race([sleep(warmupMs), finished]);
    run.measuring = true;
    const t0 = performance.now();
    if (showProgress) {
      const line = (): void => {
        const s = (performance.now() - t0) / 1000;
        const text = `${s.toFixed(1)}s  ${run.calls} calls  ${Math.round(run.latencies.count / Math.max(s, 1e-3))}/s  ${run.errors} errors`;
        io.stderr.write(io.stderr.isTTY ? `\r\x1b[K${text}` : `${text}\n`);
      };
      progress = setInterval(line, 500);
    }
    const timer = Number.isFinite(measureMs) ? setTimeout(() => stop(), measureMs) : undefined;
    await finished;
    measuredMs = performance.now() - t0;
    clearTimeout(timer);
    run.stopped = true;
    // every caller ends with its call in flight: answered, or failed by the call timeout
    await Promise.all(callers);
  } finally {
    clearInterval(progress);
    if (showProgress && io.stderr.isTTY) io.stderr.write('\r\x1b[K');
    interrupted.removeEventListener('abort', onInterrupt);
    await pool.close();
  }
  const summary = run.latencies.summarize();
  const report: BenchReport = {
    address: address!,
    pattern: pattern!,
    concurrency,
    connections,
    durationMs: Math.round(measuredMs * 1000) / 1000,
    warmupMs,
    warmupCalls: run.warmupCalls,
    calls: run.calls,
    ok: run.latencies.count,
    errors: run.errors,
    errorCodes: run.errorCodes,
    rps: run.latencies.count / (measuredMs / 1000),
    latencyMs: summary?.latency ?? null,
    histogram: summary?.histogram ?? [],
    interrupted: interrupted.aborted,
  };
  io.stdout.write(values.json ? `${toJson(report, 2)}\n` : reportText(report));
  if (report.ok === 0 && run.firstError !== undefined) {
    io.stderr.write(`every call failed, the first with ${describeFailure(run.firstError)}\n`);
    return exitCodeOf(run.firstError);
  }
  return interrupted.aborted ? ExitCode.Interrupted : ExitCode.Ok;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const ms = (v: number): string => `${v >= 100 ? v.toFixed(1) : v.toFixed(3)} ms`;

/** The report for people, as ghz prints its summary. */
export function reportText(r: BenchReport): string {
  let out = `Summary:\n`;
  out += `  Address:      ${r.address}\n  Pattern:      ${r.pattern}\n`;
  out += `  Concurrency:  ${r.concurrency} over ${r.connections} connection${r.connections === 1 ? '' : 's'} per address\n`;
  out += `  Duration:     ${(r.durationMs / 1000).toFixed(2)} s${r.warmupMs > 0 ? ` (after ${(r.warmupMs / 1000).toFixed(1)} s of warm-up, ${r.warmupCalls} calls)` : ''}${r.interrupted ? ', interrupted' : ''}\n`;
  out += `  Calls:        ${r.calls} (${r.ok} ok, ${r.errors} errors)\n`;
  out += `  Throughput:   ${Math.round(r.rps)} calls/s\n`;
  const l = r.latencyMs;
  if (l !== null) {
    out += `\nLatency:\n`;
    for (const [k, v] of [
      ['min', l.min],
      ['avg', l.avg],
      ['p50', l.p50],
      ['p90', l.p90],
      ['p99', l.p99],
      ['p99.9', l.p999],
      ['max', l.max],
    ] as const)
      out += `  ${k.padEnd(6)} ${ms(v)}\n`;
    out += `\nLatency histogram (ms, log-spaced buckets):\n${drawHistogram(r.histogram)}`;
  }
  const codes = Object.entries(r.errorCodes);
  if (codes.length > 0) out += `\nErrors:\n${codes.map(([code, n]) => `  ${code}: ${n}\n`).join('')}`;
  return out;
}
