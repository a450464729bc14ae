/**
 * Suspect before dead (issue 28, item 3): a server whose event loop is
 * busy for seconds is alive, not dead. Its connection turns suspect once
 * pings go unanswered, new calls go to the healthy server, and the calls
 * already on it complete once it answers again.
 */
import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';

import { FailoverPool } from '../lib/client/failover-pool.js';
import type { OccamsError } from '../lib/errors.js';
import { exited, message, root } from './support/processes.js';
import { startServer, waitFor } from './support/servers.js';

let child: ChildProcess | undefined;

async function busyServer(name: string): Promise<{ child: ChildProcess; url: string }> {
  child = fork(path.join(root, 'dist/bench/busy-server.js'), ['0', name], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const { port } = await message<{ port: number }>(child, 'ready', 15_000);
  return { child, url: `127.0.0.1:${port}` };
}

afterEach(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited(child);
  }
  child = undefined;
});

describe('suspect before dead: a server whose event loop is blocked for 3.5 s', () => {
  it('keeps the calls already on it (they complete after it unblocks), sends new calls to the healthy server meanwhile', async () => {
    const busy = await busyServer('busy');
    const healthy = await startServer({ who: () => 'healthy', work: (v: unknown) => v });
    // 'first': every call goes to the busy server while it is usable
    const pool = new FailoverPool([busy.url, healthy.url], { strategy: 'first', pingInterval: 200, maxMissedPings: 3, timeout: 10_000 });
    try {
      await pool.connect();
      await waitFor(() => pool.members.every((m) => m.ready), 5_000);
      expect(await pool.request('who')).toBe('busy');
      const blockedAt = Date.now();
      const blocking = pool.request('block', 3_500).then(
        (v) => ({ v, at: Date.now() - blockedAt }),
        (e: OccamsError) => ({ e: e.code, at: Date.now() - blockedAt }),
      );
      // calls sent right behind it wait in the busy server's socket
      const behind = Array.from({ length: 5 }, (_, i) =>
        pool.request('work', i).then(
          (v) => ({ v, at: Date.now() - blockedAt }),
          (e: OccamsError) => ({ e: e.code, at: Date.now() - blockedAt }),
        ),
      );
      // the connection turns suspect within pingInterval x maxMissedPings (+ a check step, + a loaded machine's lag)
      await waitFor(() => pool.members[0]!.state === 'suspect', 2_500);
      const suspectAfter = Date.now() - blockedAt;
      expect(suspectAfter).toBeLessThan(2_500);
      // while it is blocked, new calls go to the healthy server, at once
      const during: { who: unknown; ms: number }[] = [];
      for (let i = 0; i < 10 && Date.now() - blockedAt < 3_000; i++) {
        const t0 = Date.now();
        during.push({ who: await pool.request('who'), ms: Date.now() - t0 });
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(during.length).toBeGreaterThan(0);
      for (const d of during) {
        expect(d.who).toBe('healthy');
        expect(d.ms).toBeLessThan(500);
      }
      // what was on the blocked server completes once it answers again: nothing failed for the heartbeat
      const b = await blocking;
      expect(b).toMatchObject({ v: 'busy' });
      expect(b.at).toBeGreaterThanOrEqual(3_400);
      expect(await Promise.all(behind)).toEqual([0, 1, 2, 3, 4].map((v) => expect.objectContaining({ v })));
      // healthy again: with 'first', traffic goes back to it
      await waitFor(() => pool.members[0]!.state === 'ready', 2_000);
      const seen = JSON.stringify({ stats: pool.stats, conns: pool.members[0]!.connections.map((c) => [c.stats, c.suspect, c.draining]) });
      expect(await pool.request('who'), seen).toBe('busy');
    } finally {
      pool.destroy();
      await healthy.server.destroy();
    }
  }, 30_000);
});
