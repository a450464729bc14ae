/** ms of samples per limit update (Envoy's concurrency_update_interval). */
export const SAMPLE_WINDOW = 100;
/** A window closes only once it holds this many samples (a quiet server's windows are longer). */
export const MIN_WINDOW_SAMPLES = 5;
/** Samples kept per window; past it, later ones overwrite earlier ones. */
const MAX_KEPT = 512;
/**
 * ms between measurements of the latency without queueing (a probe),
 * jittered by MIN_LATENCY_JITTER; the first probe follows the first window,
 * the second comes FIRST_PROBE_INTERVAL later (a probe pins the limit at a
 * share of what it was, and a limit far above the resource's needs two to
 * find it).
 */
export const MIN_LATENCY_INTERVAL = 10_000;
export const FIRST_PROBE_INTERVAL = 1_000;
export const MIN_LATENCY_JITTER = 0.1;
/** Samples a probe takes (of handlers started once it was armed); their median is the new minLatency. */
export const PROBE_SAMPLES = 20;
/** A probe that gathered too few samples this long after it began ends with what it has. */
export const PROBE_TIMEOUT = 1_000;

/** What `add` did. */
export const enum Sampled {
  /** kept in the open window */
  Kept,
  /** a window closed: `latency` is its median */
  Window,
  /** a probe ended: `minLatency` is new */
  Probed,
}

/**
 * Latency samples of handlers that outlived their turn, for the concurrency
 * limit: medians per window (SAMPLE_WINDOW), and the latency without
 * queueing, `minLatency`: the lowest window median since the last probe. A
 * probe (as Envoy's minRTT calculation) holds the limit low (ServerLimiter
 * pins it) and takes the median of the next PROBE_SAMPLES handlers started
 * under it, which replaces minLatency. It is due after the first window,
 * FIRST_PROBE_INTERVAL later, then every MIN_LATENCY_INTERVAL; ServerLimiter
 * starts a due probe only under load (requests wait, or the latency is past
 * its target: at light load the windows see the unqueued latency), and
 * whenever the limit sat at its floor. Window medians alone
 * would only ever lower it: under lasting load no window runs without a
 * queue (the first ones overstate it), and a resource that became slower
 * for good would keep an old, low minLatency that starves it.
 */
export class LatencySampler {
  /** median latency of the last window, ms; 0 until one closed */
  latency = 0;
  /** handler latency without queueing, ms: the last probe's median, or a lower window median since; 0 until a window closed */
  minLatency = 0;
  /** a probe is under way: the limit is pinned low */
  probing = false;
  /**
   * clock time the probe was armed: the handlers started before it had
   * finished, down to the pinned limit (only handlers started since count,
   * as the others queued behind the old ones); Infinity until then
   */
  probeStart = Infinity;
  private probeBegan = 0;
  /** when the next probe is due; the first window sets it */
  private nextProbe = Infinity;
  private probes = 0;
  /** a probe has measured minLatency (windows may have lowered it since) */
  probed = false;
  private readonly kept = new Float64Array(MAX_KEPT);
  private readonly scratch = new Float64Array(MAX_KEPT);
  private count = 0;
  private windowStart = -1;
  private readonly probeSamples = new Float64Array(PROBE_SAMPLES);
  private probeCount = 0;

  constructor(
    /** false: no probes (a static limit needs only the window medians) */
    private readonly withProbes: boolean,
    private readonly random: () => number = Math.random,
  ) {}

  /** One sample: a handler started at `startedAt` took `latency` ms, finishing at `now`. */
  add(now: number, latency: number, startedAt: number): Sampled {
    if (this.probing) {
      if (startedAt >= this.probeStart && this.probeCount < PROBE_SAMPLES) this.probeSamples[this.probeCount++] = latency;
      if (this.probeCount < PROBE_SAMPLES && now - this.probeBegan < PROBE_TIMEOUT) return Sampled.Kept;
      this.endProbe(now);
      return Sampled.Probed;
    }
    if (this.windowStart < 0) this.windowStart = now;
    this.kept[this.count++ % MAX_KEPT] = latency;
    if (this.count < MIN_WINDOW_SAMPLES || now - this.windowStart < SAMPLE_WINDOW) return Sampled.Kept;
    const m = median(this.kept, Math.min(this.count, MAX_KEPT), this.scratch);
    this.latency = m;
    if (this.minLatency === 0 || m < this.minLatency) this.minLatency = m;
    if (this.nextProbe === Infinity) this.nextProbe = now; // the first window: probe now
    this.resetWindow();
    return Sampled.Window;
  }

  /** A probe is due at `now` (the interval passed). */
  due(now: number): boolean {
    return this.withProbes && !this.probing && now >= this.nextProbe;
  }

  /** Starts a probe at `now`; it takes samples once `arm`ed. */
  startProbe(now: number): void {
    if (!this.withProbes || this.probing) return;
    this.probing = true;
    this.probeBegan = now;
    this.probeStart = Infinity;
    this.probeCount = 0;
  }

  /** The probe's samples are handlers started from `now` on (the limiter saw the old ones drain). */
  arm(now: number): void {
    if (this.probing && this.probeStart === Infinity) this.probeStart = now;
  }

  private endProbe(now: number): void {
    // the probe's median is also the latest latency measured (the last window's ran at another limit)
    if (this.probeCount > 0) {
      this.latency = this.minLatency = median(this.probeSamples, this.probeCount, this.scratch);
      this.probed = true;
    }
    this.probing = false;
    this.probeCount = 0;
    const jitter = 1 + MIN_LATENCY_JITTER * (2 * this.random() - 1);
    this.nextProbe = now + (++this.probes === 1 ? FIRST_PROBE_INTERVAL : MIN_LATENCY_INTERVAL) * jitter;
    this.resetWindow();
  }

  private resetWindow(): void {
    this.count = 0;
    this.windowStart = -1;
  }
}

/** The median of `values[0..n)`, sorted in `scratch`. */
function median(values: Float64Array, n: number, scratch: Float64Array): number {
  const s = scratch.subarray(0, n);
  s.set(values.subarray(0, n));
  s.sort();
  return n % 2 === 1 ? s[n >> 1]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}
