import { nonNegativeInt, optionNames, positiveInt, rejectUnknownKeys } from '../core/validate.js';
import { InvalidOptionError } from '../errors.js';

/** Envoy's consecutive_5xx: failures in a row that eject a server. */
export const DEFAULT_EJECTION_FAILURES = 5;
/** Envoy's base_ejection_time, ms; the n-th ejection in a row lasts n times this. */
export const DEFAULT_EJECTION_TIME = 30_000;
/** Envoy's max_ejection_time, ms. */
export const DEFAULT_MAX_EJECTION_TIME = 300_000;
/** Envoy's max_ejection_percent: at most this share of the servers is out at once (but always one may be). */
export const DEFAULT_MAX_EJECTION_PERCENT = 10;

/** Outlier ejection (Envoy's outlier detection, consecutive failures). */
export interface OutlierEjectionOptions {
  /** failed calls in a row (rpc_unreachable, rpc_io_err, rpc_timeout, rpc_internal_err) that eject a server; default 5 */
  consecutiveFailures?: number;
  /** ms a server stays out the first time; the n-th ejection without a quiet spell between lasts n times this; default 30 000 */
  baseEjectionTime?: number;
  /** longest ejection, ms; default 300 000 */
  maxEjectionTime?: number;
  /** most servers out at once, in percent of them (at least one); default 10 */
  maxEjectionPercent?: number;
}

const OPTIONS = optionNames<OutlierEjectionOptions>({ consecutiveFailures: true, baseEjectionTime: true, maxEjectionTime: true, maxEjectionPercent: true });

/** The failure record of one server. */
class Record {
  failures = 0;
  /** clock ms until which it is out; 0 when in */
  until = 0;
  /** ejections in a row, forgiven one per baseEjectionTime without one */
  ejections = 0;
  lastEnd = 0;
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

  constructor(o: OutlierEjectionOptions) {
    rejectUnknownKeys(o, OPTIONS, 'outlierEjection');
    this.failuresToEject = positiveInt(o.consecutiveFailures, DEFAULT_EJECTION_FAILURES, 'outlierEjection.consecutiveFailures');
    this.base = positiveInt(o.baseEjectionTime, DEFAULT_EJECTION_TIME, 'outlierEjection.baseEjectionTime');
    this.max = Math.max(this.base, positiveInt(o.maxEjectionTime, DEFAULT_MAX_EJECTION_TIME, 'outlierEjection.maxEjectionTime'));
    this.percent = nonNegativeInt(o.maxEjectionPercent, DEFAULT_MAX_EJECTION_PERCENT, 'outlierEjection.maxEjectionPercent');
    if (this.percent > 100) throw new InvalidOptionError('outlierEjection.maxEjectionPercent', `expected 0 to 100, got ${this.percent}`);
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
    const forgiven = r.lastEnd > 0 ? Math.floor((now - r.lastEnd) / this.base) : 0;
    r.ejections = Math.max(0, r.ejections - forgiven) + 1;
    r.until = now + Math.min(this.max, this.base * r.ejections);
    r.failures = 0;
    this.out.add(key);
    return true;
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
