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

export function payload(kind: string): unknown {
  return kind === '16k' ? { ...SMALL, blob: 'x'.repeat(16 * 1024) } : SMALL;
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
