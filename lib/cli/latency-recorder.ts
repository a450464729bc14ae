/** Most latencies kept (8 M doubles, 64 MiB); past it a uniform sample of them is (reservoir). */
const MAX_SAMPLES = 1 << 23;

/** Latency percentiles, ms. */
export interface LatencySummary {
  min: number;
  avg: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface HistogramBucket {
  /** bucket bounds, ms: from < latency <= to (the first includes its `from`) */
  from: number;
  to: number;
  count: number;
}

/**
 * Every call's latency (ms), in a Float64Array that doubles as it fills,
 * as bench/closed-loop.ts keeps them: percentiles are exact (read from the
 * sorted samples, nearest rank) up to MAX_SAMPLES calls, then from a
 * uniform sample; min, max and the mean are always exact.
 */
export class LatencyRecorder {
  private samples = new Float64Array(1 << 16);
  private n = 0;
  private sum = 0;
  private lo = Infinity;
  private hi = 0;

  get count(): number {
    return this.n;
  }

  record(ms: number): void {
    const i = this.n++;
    this.sum += ms;
    if (ms < this.lo) this.lo = ms;
    if (ms > this.hi) this.hi = ms;
    if (i < this.samples.length) {
      this.samples[i] = ms;
      return;
    }
    if (this.samples.length < MAX_SAMPLES) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
      this.samples[i] = ms;
      return;
    }
    const j = Math.floor(Math.random() * this.n);
    if (j < MAX_SAMPLES) this.samples[j] = ms;
  }

  /** Percentiles and the histogram; undefined when nothing was recorded. */
  summarize(buckets = 12): { latency: LatencySummary; histogram: HistogramBucket[] } | undefined {
    if (this.n === 0) return undefined;
    const sorted = this.samples.slice(0, Math.min(this.n, this.samples.length)).sort();
    const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))]!;
    const latency = { min: this.lo, avg: this.sum / this.n, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: this.hi };
    return { latency, histogram: histogram(sorted, this.lo, this.hi, buckets, this.n / sorted.length) };
  }
}

/**
 * Log-spaced buckets from min to max (latencies have long tails: linear
 * buckets, as ghz draws them, put nearly every call in the first one).
 * `scale` turns sampled counts back into calls.
 */
function histogram(sorted: Float64Array, min: number, max: number, buckets: number, scale: number): HistogramBucket[] {
  if (!(max > min)) return [{ from: min, to: max, count: Math.round(sorted.length * scale) }];
  const lo = Math.max(min, 1e-3);
  const ratio = Math.pow(max / lo, 1 / buckets);
  const out: HistogramBucket[] = [];
  let from = min;
  let i = 0;
  for (let b = 1; b <= buckets; b++) {
    const to = b === buckets ? max : lo * Math.pow(ratio, b);
    let n = 0;
    while (i < sorted.length && sorted[i]! <= to) {
      i++;
      n++;
    }
    out.push({ from, to, count: Math.round(n * scale) });
    from = to;
  }
  return out;
}

/** The histogram as text: one bar per bucket, the longest `width` marks. */
export function drawHistogram(buckets: HistogramBucket[], width = 40): string {
  const most = Math.max(1, ...buckets.map((b) => b.count));
  const label = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(3));
  const bounds = buckets.map((b) => `${label(b.from)} - ${label(b.to)}`);
  const wb = Math.max(...bounds.map((s) => s.length));
  const wc = Math.max(...buckets.map((b) => String(b.count).length));
  return buckets
    .map((b, i) => {
      const bar = b.count === 0 ? '' : '∎'.repeat(Math.max(1, Math.round((b.count / most) * width)));
      return `  ${bounds[i]!.padStart(wb)} [${String(b.count).padStart(wc)}] |${bar}\n`;
    })
    .join('');
}
