/** What every benchmarked transport provides: an echo server and a client. */
export interface BenchServer {
  port: number;
  close(): Promise<void>;
}
export interface BenchClient {
  /** sends `payload`, resolves with the echo */
  call(payload: unknown): Promise<unknown>;
  close(): Promise<void>;
}
export interface BenchTransport {
  name: string;
  /** runs in the server process */
  serve(): Promise<BenchServer>;
  /** runs in the client process */
  connect(port: number): Promise<BenchClient>;
}

export const SMALL = {
  id: 12345,
  name: 'occams-bench',
  tags: ['alpha', 'beta', 'gamma'],
  values: [1.5, 2.5, 3.5],
  ok: true,
  nested: { x: 1, y: 'two', z: [3] },
};

/** The object of the large payloads (issue 29): an integer, a name, 4 tags, a boolean, a float, then a long ASCII string. */
export function mixed(textBytes: number): Record<string, unknown> {
  return { id: 12345, name: 'occams-bench', tags: ['alpha', 'beta', 'gamma', 'delta'], ok: true, score: 0.75, text: 'x'.repeat(textBytes) };
}

/**
 * Payload kinds: `small` (SMALL), `16k` / `1m` (the mixed object with a
 * 16 KiB / 1 MiB string), `bin16k` / `bin1m` (a Buffer of that size, sent as
 * msgpack bin).
 */
export function payload(kind: string): unknown {
  switch (kind) {
    case 'small':
      return SMALL;
    case '16k':
      return mixed(16 * 1024);
    case '1m':
      return mixed(1024 * 1024);
    case 'bin16k':
      return Buffer.alloc(16 * 1024, 7);
    case 'bin1m':
      return Buffer.alloc(1024 * 1024, 7);
    default:
      throw new Error(`unknown payload ${kind} (small, 16k, 1m, bin16k, bin1m)`);
  }
}

/** In-flight counts a payload is measured at: a 1 MiB one at 1 and 16 (1024 of them would be 1 GiB each way), others as asked. */
export function inflightsFor(kind: string, asked: number[]): number[] {
  if (!kind.endsWith('1m')) return asked;
  return [...new Set(asked.map((n) => Math.min(n, 16)))];
}

export async function loadTransport(name: string): Promise<BenchTransport> {
  const mod = (await import(`./transports/${name}.js`)) as { default: BenchTransport };
  return mod.default;
}

/**
 * The window our clients are configured with: the workload's in-flight
 * count, at least the default 128 (Nest TCP and the bare-socket limit have
 * no window at all; OCCAMS_BENCH_WINDOW overrides).
 */
export function benchWindow(): number {
  const forced = Number(process.env.OCCAMS_BENCH_WINDOW);
  if (forced > 0) return forced;
  return Math.max(128, Number(process.env.BENCH_INFLIGHT) || 0);
}

/** The servers' maxFrameSize in the benchmark: the default, or OCCAMS_BENCH_MAX_FRAME bytes (big-values.ts sets it for 8 MiB values). */
export function benchMaxFrame(): number | undefined {
  return Number(process.env.OCCAMS_BENCH_MAX_FRAME) || undefined;
}
