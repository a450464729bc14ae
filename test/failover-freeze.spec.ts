/**
 * A server frozen with SIGSTOP (what a paused VM, a long GC pause or a
 * partition looks like) behind a FailoverPool of three real server
 * processes, then resumed with SIGCONT. `npm run freeze` is the long run
 * whose figures the README quotes.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

describe('failover: one of three servers frozen (SIGSTOP) and resumed', () => {
  it('recovers within pingInterval x maxMissedPings + 1 s, runs no non-idempotent call twice, fails no never-sent call', () => {
    const run = spawnSync(process.execPath, ['dist/bench/freeze.js', '--freeze', '6', '--before', '2', '--after', '1', '--json'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
    const seen = JSON.stringify(report); // printed when an expectation fails
    // back to >= 80 % of the pre-freeze rate within the bound, and it stays there until the thaw
    expect(report.recoveredAfterMs, seen).not.toBeNull();
    expect(report.recoveredAfterMs, seen).toBeLessThanOrEqual(report.bound);
    // nothing executed twice unless idempotent; idempotent calls were retried and succeeded
    expect(report.executedTwice.nonIdempotent).toBe(0);
    expect(report.idempotentSucceeded).toBeGreaterThan(0);
    // every call settled, none past its timeout (+ resolution), no never-sent call failed
    const failedTotal = Object.values(report.failed as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(report.sent).toBe(report.succeeded + failedTotal);
    expect(report.lateNonIdempotent, seen).toBe(0);
    expect(report.neverSentFailed, seen).toBe(0);
    for (const code of Object.keys(report.failed)) expect(['rpc_timeout', 'rpc_unreachable', 'rpc_io_err']).toContain(code);
  }, 90_000);
});
