import type { Clock } from '../core/clock.js';
import type { RpcLogger } from './logger.js';

/** Why the server turned a connection away (or let it go); stable, for log searches. */
export const RefusalCode = {
  MaxConnections: 'max_connections',
  MaxPendingHandshakes: 'max_pending_handshakes',
  HandshakeTimeout: 'tls_handshake_timeout',
  HandshakeFailed: 'tls_handshake_failed',
  IdleTimeout: 'idle_timeout',
} as const;
export type RefusalCode = (typeof RefusalCode)[keyof typeof RefusalCode];

/** One line per code per this many ms at most. */
export const REFUSAL_LOG_INTERVAL = 1_000;

/**
 * Logs refused peers without letting a flood fill the log: at most one line
 * per code (and reason) per REFUSAL_LOG_INTERVAL; the lines left out are counted and the
 * count is told with the next line of that code.
 *
 *   code ─► last line at t0, suppressed n ─► t >= t0 + interval: "... (n more since)"
 */
export class RefusalLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: RpcLogger,
    private readonly clock: Clock,
    private readonly interval = REFUSAL_LOG_INTERVAL,
  ) {}

  /** `warn` for refusals; `log` for routine ends (idle). */
  note(code: RefusalCode, message: string, level: 'warn' | 'log' = 'warn', reason?: string): void {
    const now = this.clock.now();
    const key = reason === undefined ? code : `${code}:${reason}`;
    const entry = this.last.get(key);
    if (entry !== undefined && now - entry.at < this.interval) {
      entry.suppressed++;
      return;
    }
    const more = entry !== undefined && entry.suppressed > 0 ? ` (${entry.suppressed} more [${code}] not logged since the last line)` : '';
    this.last.set(key, { at: now, suppressed: 0 });
    this.logger[level](`${message} [${code}]${more}`);
  }
}
