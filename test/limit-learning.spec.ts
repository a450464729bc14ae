/**
 * Learnt concurrency limits (docs/OVERLOAD.md): the gradient and AIMD
 * controllers shrink the server-wide limit when handler latencies climb,
 * and probe for the latency without queueing. Real servers and sockets on
 * 127.0.0.1 in front of a resource of few slots.
 *
 * The controllers read latencies from a millisecond clock, so this file runs
 * in the 'alone' project (vitest.config.ts): a machine busy with other test
 * files stretches every handler's sleep, and a probe measured then takes a
 * crowded machine's latency for the unqueued one.
 */
import dc from 'node:diagnostics_channel';

import { describe, expect, it } from 'vitest';

import { ClientStream } from '../lib/client/client-stream.js';
import { CHANNELS, type ServerLimitMessage } from '../lib/core/diagnostics.js';
import { settle, sleep, startServer } from './support/servers.js';

/**
 * A resource of `n` slots held `ms` each, as a database pool: past `n` at
 * once, a handler's latency grows with the queue in front of it. `peak`:
 * the most handlers in it at once, counted from the `after`-th use on.
 */
function slots(n: number, ms: number, after = 0) {
  let free = n;
  let inside = 0;
  let uses = 0;
  let peak = 0;
  const waiters: (() => void)[] = [];
  return {
    peak: () => peak,
    use: async (): Promise<number> => {
      inside++;
      if (uses++ >= after) peak = Math.max(peak, inside);
      if (free > 0) free--;
      else await new Promise<void>((r) => waiters.push(r));
      await sleep(ms);
      const next = waiters.shift();
      if (next !== undefined) next();
      else free++;
      inside--;
      return 1;
    },
  };
}

/** The limit's changes, for a failure's message: limit, window latency, minLatency, queued (p: probing). */
const trace = (limits: ServerLimitMessage[]): string =>
  'limits ' + limits.map((m) => `${m.limit}/${Math.round(m.latency)}/${Math.round(m.minLatency)}/${m.queued}${m.probing ? 'p' : ''}`).join(' ');

describe('a learnt limit', () => {
  for (const algorithm of ['gradient', 'aimd'] as const) {
    it(`${algorithm}: learns a limit below its start from latencies that climb (a 4-slot resource, 48 callers)`, async () => {
      const r = slots(4, 10, 150);
      const resource = r.use;
      const ctx = await startServer({ use: resource }, { concurrencyLimit: algorithm });
      const limits: ServerLimitMessage[] = [];
      const onLimit = (m: unknown) => limits.push(m as ServerLimitMessage);
      dc.subscribe(CHANNELS.serverLimit, onLimit);
      const client = await ClientStream.connect(ctx.url, { maxInFlight: 64 });
      try {
        const outcomes: Record<string, number> = {};
        await Promise.all(
          Array.from({ length: 48 }, async () => {
            for (let i = 0; i < 25; i++) {
              const code = await settle(client.request('use', null, { timeout: 5_000 }));
              outcomes[code] = (outcomes[code] ?? 0) + 1;
              if (code !== 'ok') await sleep(5); // refused: come back a little later, as a client backing off would
            }
          }),
        );
        const stats = ctx.server.stats.limit!;
        expect(stats.algorithm).toBe(algorithm);
        expect(stats.limit, trace(limits)).toBeLessThan(20); // its initial limit
        expect(stats.minLatency).toBeGreaterThanOrEqual(10);
        expect(r.peak()).toBeGreaterThan(0);
        expect(r.peak()).toBeLessThan(48); // never every caller at once
        expect(Object.keys(outcomes).every((c) => c === 'ok' || c === 'rpc_overloaded')).toBe(true);
        expect(outcomes.ok).toBeGreaterThan(0);
        expect(limits.length).toBeGreaterThan(0);
        expect(limits.every((m) => m.algorithm === algorithm)).toBe(true);
      } finally {
        dc.unsubscribe(CHANNELS.serverLimit, onLimit);
        client.destroy();
        await ctx.server.destroy();
      }
    }, 20_000);
  }
});

describe('probes for the latency without queueing', () => {
  it('never hold the limit down at light load, and come as soon as requests wait', async () => {
    const r = slots(4, 10);
    const ctx = await startServer({ use: r.use });
    const limits: ServerLimitMessage[] = [];
    const onLimit = (m: unknown) => limits.push(m as ServerLimitMessage);
    dc.subscribe(CHANNELS.serverLimit, onLimit);
    const client = await ClientStream.connect(ctx.url, { maxInFlight: 64 });
    const callers = (n: number, calls: number) =>
      Promise.all(
        Array.from({ length: n }, async () => {
          for (let i = 0; i < calls; i++) if ((await settle(client.request('use', null, { timeout: 5_000 }))) !== 'ok') await sleep(5);
        }),
      );
    try {
      // light: 2 callers of a 4-slot resource, past several windows (100 ms, 5 samples each)
      await callers(2, 40);
      expect(ctx.server.stats.limit!.latency).toBeGreaterThan(0);
      expect(limits.filter((m) => m.probing)).toEqual([]);
      expect(ctx.server.stats.limit!.limit).toBe(20);
      // heavy: 48 callers; requests wait, so the due probe runs, and once it
      // measured, the limit moves (rounds of 10 calls each, at most 8 s: a slow
      // machine's probe may take most of the first round)
      const heavyUntil = Date.now() + 8_000;
      for (let round = 0; round < 8 && Date.now() < heavyUntil; round++) {
        await callers(48, 10);
        if (limits.some((m) => !m.probing && m.limit < 20)) break;
      }
      expect(limits.some((m) => m.probing)).toBe(true);
      expect(limits.some((m) => !m.probing && m.limit < 20)).toBe(true);
      expect(ctx.server.stats.limit!.limit, trace(limits)).toBeLessThan(20);
    } finally {
      dc.unsubscribe(CHANNELS.serverLimit, onLimit);
      client.destroy();
      await ctx.server.destroy();
    }
  }, 20_000);
});
