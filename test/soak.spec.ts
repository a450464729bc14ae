/**
 * A short soak (seconds; `npm run soak -- --seconds 60` is the long one):
 * real server and client processes, servers killed, restarted and frozen
 * (SIGSTOP/SIGCONT) at random under load; every request must settle and be
 * accounted for, and none may run twice.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

// dist/ is built by the global setup (test/support/build-dist.ts)
describe('soak: faults under load across processes', () => {
  it('loses nothing while servers are killed and restarted', () => {
    const run = spawnSync(process.execPath, ['dist/bench/soak.js', '--seconds', '8', '--servers', '2', '--clients', '2', '--concurrency', '16', '--json'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    });
    const report = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
    expect(report.faults.kills + report.faults.gracefulRestarts + report.faults.freezes).toBeGreaterThanOrEqual(1);
    expect(report.succeeded).toBeGreaterThan(1000);
    expect(report.lost).toBe(0);
    expect(report.wrongAnswers).toBe(0);
    expect(report.duplicates).toBe(0); // non-idempotent calls: none ran twice
    expect(report.sent).toBe(report.succeeded + report.failedTotal);
    for (const code of Object.keys(report.failed)) expect(['rpc_io_err', 'rpc_unreachable', 'rpc_timeout']).toContain(code);
    expect(run.status).toBe(0);
  }, 90_000);
});
