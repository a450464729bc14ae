import { nonNegativeInt, optionNames, positiveInt, rejectUnknownKeys, toNumber } from '../core/validate.js';
import { InvalidOptionError } from '../errors.js';

/** Envoy's consecutive_5xx: failures in a row that eject a server. */
export const DEFAULT_EJECTION_FAILURES = 5;
/** Envoy's base_ejection_time, ms; the n-th ejection in a row lasts n times this. */
export const DEFAULT_EJECTION_TIME = 30_000;
/** Envoy's max_ejection_time, ms. */
export const DEFAULT_MAX_EJECTION_TIME = 300_000;
/** Envoy's max_ejection_percent: at most this share of the servers is out at once (but always one may be). */
export const DEFAULT_MAX_EJECTION_PERCENT = 10;
/** ms between latency sweeps (Envoy's `interval`, shorter: a slow server costs every call it gets). */
export const DEFAULT_EJECTION_INTERVAL = 1_000;
/** A server whose mean latency over the last interval is more than this many times the others' median is slow. */
export const DEFAULT_LATENCY_FACTOR = 3;
/**
 * ms: a mean latency at or below this never ejects, however it compares (sub-millisecond latencies vary
 * by large factors). Low enough that a server answering in 10 ms beside peers answering in 1 ms (a
 * sliced or throttled path: bench/results/faults.md) is an outlier; the load-aware picker alone kept
 * half the callers on such a server, its peak-EWMA estimates being the recent peaks every server shares.
 */
export const DEFAULT_LATENCY_FLOOR = 5;
/** Answers in the last interval a server needs to be judged on latency (Envoy's success_rate_request_volume). */
export const DEFAULT_LATENCY_MIN_ANSWERS = 5;
/** Sweeps in a row a server must be found slow in: one interval's hiccup (a GC pause, a busy machine) never ejects. */
export const DEFAULT_LATENCY_INTERVALS = 2;

/**
 * Outlier ejection (Envoy's outlier detection): consecutive failures, and
 * latency outliers (as Envoy's success-rate detection, on latency): every
 * `interval` ms, among ready servers that answered at least
 * `latencyMinAnswers` calls in that interval (or have calls outstanding and
 * have not answered for a whole interval), one whose mean latency (or that
 * silence) is more than `latencyFactor` × the median of the others and
 * above `latencyFloor`, `latencyIntervals` sweeps in a row, is ejected. Latency ejection never leaves fewer than
 * half the servers (at least one) pickable.
 */
export interface OutlierEjectionOptions {
  /** failed calls in a row (rpc_unreachable, rpc_io_err, rpc_timeout, rpc_internal_err) that eject a server; default 5 */
  consecutiveFailures?: number;
  /** ms a server stays out the first time; the n-th ejection without a quiet spell between lasts n times this; default 30 000 */
  baseEjectionTime?: number;
  /** longest ejection, ms; default 300 000 */
  maxEjectionTime?: number;
  /** most servers out at once, in percent of them (at least one); default 10 */
  maxEjectionPercent?: number;
  /** ms between latency sweeps; default 1 000 */
  interval?: number;
  /** a server more than this many times slower than the others' median latency is ejected; 0: never for latency; default 3 */
  latencyFactor?: number;
  /** ms; a mean latency at or below this never ejects; default 5 */
  latencyFloor?: number;
  /** answers in the last interval a server needs to be judged (a silent one with calls outstanding is judged anyway); default 5 */
  latencyMinAnswers?: number;
  /** sweeps in a row a server must be found slow in before it is ejected; default 2 */
  latencyIntervals?: number;
}

const OPTIONS = optionNames<OutlierEjectionOptions>({
  consecutiveFailures: true,
  baseEjectionTime: true,
  maxEjectionTime: true,
  maxEjectionPercent: true,
  interval: true,
  latencyFactor: true,
  latencyFloor: true,
  latencyMinAnswers: true,
  latencyIntervals: true,
});

/** What a latency sweep needs to know of the members. */
export interface LatencyView<K> {
  /** a server that may be picked now (ready) */
  ready(key: K): boolean;
  /** its calls outstanding */
  load(key: K): number;
}

/** A latency ejection: the server, its latency and the others' median, ms. */
export interface SlowEjection<K> {
  key: K;
  latency: number;
  median: number;
}

/** The failure record of one server. */
class Record {
  failures = 0;
  /** clock ms until which it is out; 0 when in */
  until = 0;
  /** ejections in a row, forgiven one per baseEjectionTime without one */
  ejections = 0;
  lastEnd = 0;
  /** answers and their summed latency since the last sweep */
  answers = 0;
  total = 0;
  /** clock ms of the last answer; -1 before the first */
  lastAnswer = -1;
  /** sweeps in a row it was found slow in */
  slow = 0;
}

/**
 * Takes a server that fails call after call out of picking for a growing
 * interval. An ejected server is only skipped while another is usable, so
 * ejection never makes a call fail that could have run.
 *
 * Invariant: `out` holds exactly the keys whose record has `until > 0`.
 */
export class OutlierEjection<K> {
  private readonly records = new Map<K, Record>();
  private readonly out = new Set<K>();
  private readonly failuresToEject: number;
  private readonly base: number;
  private readonly max: number;
  private readonly percent: number;
  private readonly interval: number;
  private readonly factor: number;
  private readonly floor: number;
  private readonly minAnswers: number;
  private readonly intervals: number;
  /** clock ms of the next latency sweep; -1 before the first answer */
  private nextSweep = -1;

  constructor(o: OutlierEjectionOptions) {
    rejectUnknownKeys(o, OPTIONS, 'outlierEjection');
    this.failuresToEject = positiveInt(o.consecutiveFailures, DEFAULT_EJECTION_FAILURES, 'outlierEjection.consecutiveFailures');
    this.base = positiveInt(o.baseEjectionTime, DEFAULT_EJECTION_TIME, 'outlierEjection.baseEjectionTime');
    this.max = Math.max(this.base, positiveInt(o.maxEjectionTime, DEFAULT_MAX_EJECTION_TIME, 'outlierEjection.maxEjectionTime'));
    this.percent = nonNegativeInt(o.maxEjectionPercent, DEFAULT_MAX_EJECTION_PERCENT, 'outlierEjection.maxEjectionPercent');
    if (this.percent > 100) throw new InvalidOptionError('outlierEjection.maxEjectionPercent', `expected 0 to 100, got ${this.percent}`);
    this.interval = positiveInt(o.interval, DEFAULT_EJECTION_INTERVAL, 'outlierEjection.interval');
    this.factor = toNumber(o.latencyFactor ?? DEFAULT_LATENCY_FACTOR);
    if (!(this.factor === 0 || this.factor >= 1))
      throw new InvalidOptionError('outlierEjection.latencyFactor', `expected 0 (off) or a number >= 1, got ${String(o.latencyFactor)}`);
    this.floor = nonNegativeInt(o.latencyFloor, DEFAULT_LATENCY_FLOOR, 'outlierEjection.latencyFloor');
    this.minAnswers = positiveInt(o.latencyMinAnswers, DEFAULT_LATENCY_MIN_ANSWERS, 'outlierEjection.latencyMinAnswers');
    this.intervals = positiveInt(o.latencyIntervals, DEFAULT_LATENCY_INTERVALS, 'outlierEjection.latencyIntervals');
  }

  /** An attempt on `key` that went out ended after `rtt` ms (answer or failure). */
  answered(key: K, now: number, rtt: number): void {
    if (this.factor === 0) return;
    let r = this.records.get(key);
    if (r === undefined) this.records.set(key, (r = new Record()));
    r.answers++;
    r.total += rtt;
    r.lastAnswer = now;
    if (this.nextSweep < 0) this.nextSweep = now + this.interval;
  }

  /**
   * Once per interval (earlier calls return at once): ejects the servers
   * much slower than the median of the others (in `latencyIntervals`
   * sweeps in a row; one not judged or not slow starts again), slowest first, while the
   * caps allow (at most `maxEjectionPercent`, at least one, and never so
   * many that fewer than half the members, at least one, stay in). Every
   * server's interval counts start again. Returns the ejections made.
   */
  sweep(now: number, members: readonly K[], view: LatencyView<K>): SlowEjection<K>[] | undefined {
    if (this.factor === 0 || this.nextSweep < 0 || now < this.nextSweep) return undefined;
    this.nextSweep = now + this.interval;
    const sample: { key: K; latency: number; r: Record; wasSlow: number }[] = [];
    for (const key of members) {
      const r = this.records.get(key);
      if (r === undefined) continue;
      const answers = r.answers;
      const mean = answers > 0 ? r.total / answers : 0;
      r.answers = 0;
      r.total = 0;
      const wasSlow = r.slow;
      r.slow = 0;
      if (r.until > 0 || !view.ready(key)) continue;
      const silence = r.lastAnswer >= 0 && view.load(key) > 0 ? now - r.lastAnswer : 0;
      if (answers < this.minAnswers && silence < this.interval) continue;
      sample.push({ key, latency: Math.max(mean, silence), r, wasSlow });
    }
    if (sample.length < 2) return undefined;
    const n = members.length;
    const cap = Math.min(Math.max(1, Math.floor((n * this.percent) / 100)), n - Math.max(1, Math.ceil(n / 2)));
    sample.sort((a, b) => b.latency - a.latency);
    let made: SlowEjection<K>[] | undefined;
    // slowest first; leaving a faster one out of "the others" only raises their median, so the first not slow ends it
    for (let i = 0; i < sample.length; i++) {
      const { key, latency, r, wasSlow } = sample[i]!;
      const median = medianWithout(sample, i);
      if (latency <= this.floor || latency <= this.factor * median) break;
      r.slow = wasSlow + 1;
      if (r.slow < this.intervals || this.out.size >= cap) continue;
      r.slow = 0;
      this.eject(key, r, now);
      (made ??= []).push({ key, latency, median });
    }
    return made;
  }

  /** Servers out now (after `release`). */
  get ejected(): number {
    return this.out.size;
  }

  isEjected(key: K): boolean {
    return this.out.size > 0 && this.out.has(key);
  }

  /** A call on `key` succeeded (any answer that is not a framework failure). */
  succeeded(key: K): void {
    const r = this.records.get(key);
    if (r !== undefined) r.failures = 0;
  }

  /** A call on `key` failed; true when that ejected it. `members` is how many servers there are. */
  failed(key: K, now: number, members: number): boolean {
    let r = this.records.get(key);
    if (r === undefined) this.records.set(key, (r = new Record()));
    if (++r.failures < this.failuresToEject || r.until > 0) return false;
    if (this.out.size >= Math.max(1, Math.floor((members * this.percent) / 100))) return false;
    this.eject(key, r, now);
    return true;
  }

  private eject(key: K, r: Record, now: number): void {
    const forgiven = r.lastEnd > 0 ? Math.floor((now - r.lastEnd) / this.base) : 0;
    r.ejections = Math.max(0, r.ejections - forgiven) + 1;
    r.until = now + Math.min(this.max, this.base * r.ejections);
    r.failures = 0;
    this.out.add(key);
  }

  /** Brings back the servers whose time is up. */
  release(now: number): void {
    for (const key of this.out) {
      const r = this.records.get(key)!;
      if (r.until > now) continue;
      r.until = 0;
      r.lastEnd = now;
      this.out.delete(key);
    }
  }

  forget(key: K): void {
    this.records.delete(key);
    this.out.delete(key);
  }
}

/** The median latency of `sample` (sorted, slowest first) without entry `skip`. */
function medianWithout(sample: readonly { latency: number }[], skip: number): number {
  const m = sample.length - 1;
  const at = (j: number): number => sample[j < skip ? j : j + 1]!.latency;
  return m % 2 === 1 ? at((m - 1) / 2) : (at(m / 2 - 1) + at(m / 2)) / 2;
}
