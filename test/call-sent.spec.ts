import net from 'node:net';

import fc from 'fast-check';

import type { CallHandle, CallOptions, ResponseHandler } from '../lib/client/call.js';
import { ClientStream } from '../lib/client/client-stream.js';
import { FailoverPool } from '../lib/client/failover-pool.js';
import { ARENA_SIZE, DEFAULT_FLUSH_THRESHOLD, FIRST_FLUSH } from '../lib/core/frame-writer.js';
import type { OccamsError } from '../lib/errors.js';
import { rawConnect, sleep, startServer, waitFor } from './support/servers.js';

// `sent` must mean exactly "the socket may have taken a byte of this call":
// a call marked not sent moves to another server as never run, so a call
// the server ran must never be marked not sent (issue 28).

const never = () => new Promise(() => {});
const nextLoop = () => new Promise<void>((r) => setImmediate(r));

interface Outcome {
  value?: unknown;
  error?: OccamsError;
}

/** A handler that records its call's outcome (and counts streamed items). */
class Recorder implements ResponseHandler {
  outcome: Outcome | undefined;
  items = 0;
  onItem(): void {
    this.items++;
  }
  onResult(value: unknown): void {
    this.outcome = { value };
  }
  onError(error: OccamsError): void {
    this.outcome = { error };
  }
}

/**
 * A TCP proxy in front of `port` that can kill what it carries: every
 * connection at once (`kill()`), or once the client has sent `n` more bytes
 * (`killAfter(n)`: exactly n of them reach the server, even mid-frame).
 * Once killed it hangs up on every new connection: the server is dead.
 */
async function faultProxy(port: number) {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  /** bytes from clients still carried before the kill */
  let budget = Infinity;
  let killed = false;
  const cut = (pair: { client: net.Socket; upstream: net.Socket }, last: Buffer | undefined): void => {
    pair.client.destroy();
    if (last !== undefined && last.length > 0 && !pair.upstream.destroyed) pair.upstream.write(last, () => pair.upstream.destroy());
    else pair.upstream.destroy();
  };
  const kill = (): void => {
    if (killed) return;
    killed = true;
    budget = Infinity;
    for (const pair of pairs) cut(pair, undefined);
  };
  const server = net.createServer((client) => {
    if (killed) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('data', (chunk: Buffer) => {
      if (chunk.length < budget) {
        budget -= chunk.length;
        upstream.write(chunk);
        return;
      }
      const last = chunk.subarray(0, budget);
      killed = true;
      budget = Infinity;
      for (const p of pairs) cut(p, p === pair ? last : undefined);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!client.destroyed) client.write(chunk);
    });
    client.on('close', () => {
      pairs.delete(pair);
      if (upstream.writableLength === 0) upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port: own } = server.address() as net.AddressInfo;
  return {
    url: `127.0.0.1:${own}`,
    killAfter(n: number): void {
      budget = n;
    },
    kill,
    close(): Promise<void> {
      for (const pair of pairs) cut(pair, undefined);
      return new Promise((r) => server.close(() => r()));
    },
  };
}

describe('a call is sent once the socket took any byte of it', () => {
  it('a call flushed at once is sent: when its server dies it fails, it does not run again on the next server', async () => {
    const ranA: number[] = [];
    const ranB: number[] = [];
    const a = await startServer({ run: (m: { id: number }) => (ranA.push(m.id), never()) });
    const b = await startServer({ run: (m: { id: number }) => (ranB.push(m.id), 'B') });
    const pool = new FailoverPool([a.url, b.url], { strategy: 'first', timeout: 5_000 });
    try {
      await pool.connect();
      await waitFor(() => pool.members[0]!.ready);
      const handler = new Recorder();
      // 70 KiB: past the flush threshold, so the frame goes to the socket inside call()
      const handle = pool.call('run', { id: 1, pad: 'x'.repeat(70 * 1024) }, handler);
      const sentAtOnce = handle.sent;
      await sleep(200);
      const sentLater = handle.sent;
      await waitFor(() => ranA.length === 1);
      await a.server.destroy();
      await waitFor(() => handler.outcome !== undefined);
      // the whole story at once: on failure, it shows where the call ran
      expect({ sentAtOnce, sentLater, ranA, ranB, failed: handler.outcome!.error !== undefined }).toEqual({
        sentAtOnce: true,
        sentLater: true,
        ranA: [1],
        ranB: [],
        failed: true,
      });
    } finally {
      pool.destroy();
      await a.server.destroy();
      await b.server.destroy();
    }
  });

  // Sizes of the msg around every place the writer flushes: FIRST_FLUSH, the
  // threshold, the arena (a frame past it gets an arena of its own).
  const around = (n: number) => [n - 48, n - 41, n - 40, n - 39, n - 38, n - 36, n, n + 1];
  const SIZES = [0, 1, 100, ...around(FIRST_FLUSH), 8 * 1024, ...around(DEFAULT_FLUSH_THRESHOLD), 100 * 1024, ...around(ARENA_SIZE), 300 * 1024];
  const PATHS: Record<string, CallOptions | undefined> = {
    'in place': undefined,
    'with options': { timeout: 5_000 },
    'with a blob': { blob: Buffer.alloc(100, 1) },
    event: { event: true },
  };

  it.each([undefined, 1, 1_000, FIRST_FLUSH, 20_000, 300 * 1024])(
    'right after call(), sent is whether the socket took the frame, for every size and write path (flushThreshold %s)',
    async (flushThreshold) => {
      const s = await startServer({ echo: (m: Buffer) => m.length });
      const socket = await rawConnect(s.address.port);
      const client = new ClientStream(socket, { flushThreshold, timeout: 10_000 });
      try {
        await client.handshake();
        const mismatches: string[] = [];
        const handlers: Recorder[] = [];
        for (const [path, options] of Object.entries(PATHS)) {
          for (const size of SIZES) {
            await nextLoop(); // what was written before is on the socket: nothing pending
            const before = socket.bytesWritten;
            const handler = new Recorder();
            const handle = client.call('echo', Buffer.alloc(size), handler, options);
            const took = socket.bytesWritten > before;
            if (handle.sent !== took) mismatches.push(`${path} ${size}: sent ${handle.sent}, socket took it ${took}`);
            await nextLoop();
            if (!handle.sent) mismatches.push(`${path} ${size}: not sent after the tick`);
            handlers.push(handler);
          }
        }
        expect(mismatches).toEqual([]);
        await waitFor(() => handlers.every((h) => h.outcome !== undefined), 10_000);
        expect(handlers.filter((h) => h.outcome!.error !== undefined)).toEqual([]);
      } finally {
        client.destroy();
        await s.server.destroy();
      }
    },
  );

  it('an event its socket never took (destroyed under it) fails as never sent, it does not resolve', async () => {
    const seen: unknown[] = [];
    const s = await startServer({ note: (m: unknown) => void seen.push(m) });
    const socket = await rawConnect(s.address.port);
    const client = new ClientStream(socket);
    try {
      await client.handshake();
      const handler = new Recorder();
      const handle = client.call('note', 'lost', handler, { event: true });
      socket.destroy(); // before the tick's flush: no byte of the event went out
      await waitFor(() => handler.outcome !== undefined);
      expect(handle.sent).toBe(false);
      expect(handler.outcome!.error?.code).toMatch(/^rpc_(io_err|unreachable|closed)$/);
      await sleep(50);
      expect(seen).toEqual([]);
    } finally {
      client.destroy();
      await s.server.destroy();
    }
  });

  it('property: connections killed at random points; no call the server ran is marked not sent, none runs twice', async () => {
    const ranA = new Map<number, number>();
    const ranB = new Map<number, number>();
    const note = (ran: Map<number, number>, id: number) => ran.set(id, (ran.get(id) ?? 0) + 1);
    type Msg = { id: number; hang: boolean; pad: Buffer };
    const a = await startServer({
      run: (m: Msg) => (note(ranA, m.id), m.hang ? never() : 'A'),
      items: async function* (m: Msg) {
        note(ranA, m.id);
        for (let i = 0; i < 40; i++) yield i; // past AUTO_GRANT: the client writes CREDIT
        await never();
      },
    });
    const b = await startServer({
      run: (m: Msg) => (note(ranB, m.id), 'B'),
      items: async function* (m: Msg) {
        note(ranB, m.id);
        for (let i = 0; i < 40; i++) yield i;
      },
    });
    let nextId = 1;

    const op = fc.record({
      kind: fc.constantFrom('hang', 'answered', 'event', 'stream'),
      size: fc.oneof(fc.integer({ min: 0, max: 200 * 1024 }), fc.integer({ min: 0, max: 8 * 1024 }), fc.constantFrom(FIRST_FLUSH - 40, DEFAULT_FLUSH_THRESHOLD - 40)),
      /** options on the call: the frame is written by FrameWriter.request, not encoded in place */
      meta: fc.boolean(),
      /** cancel the call this many loop turns later (CANCEL written), or never */
      cancelAfter: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }) }),
      /** what passes before the next call */
      gap: fc.constantFrom('none', 'none', 'microtask', 'loop', 'ms'),
    });
    const scenario = fc.record({
      ops: fc.array(op, { minLength: 1, maxLength: 10 }),
      /**
       * when A's connection dies: once the proxy carried this share of the
       * calls' bytes (maybe mid-frame), `ms` after the first call, or once
       * every call was issued and all is quiet (what A ran then is all it runs)
       */
      kill: fc.oneof(fc.record({ share: fc.double({ min: 0, max: 1, noNaN: true }) }), fc.record({ ms: fc.integer({ min: 0, max: 30 }) }), fc.constant({ quiet: true as const })),
      flushThreshold: fc.constantFrom(undefined, 1, FIRST_FLUSH, 16 * 1024, 300 * 1024),
    });

    await fc.assert(
      fc.asyncProperty(scenario, async ({ ops, kill, flushThreshold }) => {
        const proxy = await faultProxy(a.address.port);
        const pool = new FailoverPool([proxy.url, b.url], { strategy: 'first', timeout: 4_000, flushThreshold, backoff: { initial: 50, max: 200 } });
        const calls: { id: number; handle: CallHandle; handler: Recorder; cancelled: boolean }[] = [];
        try {
          await pool.connect();
          await waitFor(() => pool.members[0]!.ready && pool.members[1]!.ready);
          const bytes = ops.reduce((n, o) => n + o.size + 60, 0); // about a frame's overhead each
          if ('share' in kill) proxy.killAfter(Math.floor(kill.share * bytes));
          else if ('ms' in kill) setTimeout(proxy.kill, kill.ms);
          for (const o of ops) {
            const id = nextId++;
            const handler = new Recorder();
            const options: CallOptions | undefined = o.kind === 'event' ? { event: true, meta: o.meta ? { id } : undefined } : o.meta ? { meta: { id } } : undefined;
            const msg = { id, hang: o.kind === 'hang', pad: Buffer.alloc(o.size) };
            const handle = pool.call(o.kind === 'stream' ? 'items' : 'run', msg, handler, options);
            const entry = { id, handle, handler, cancelled: false };
            calls.push(entry);
            if (o.cancelAfter !== undefined && o.kind !== 'event') {
              void (async () => {
                for (let i = 0; i < o.cancelAfter!; i++) await nextLoop();
                if (entry.handler.outcome === undefined) {
                  entry.cancelled = true;
                  handle.cancel();
                }
              })();
            }
            if (o.gap === 'microtask') await Promise.resolve();
            else if (o.gap === 'loop') await nextLoop();
            else if (o.gap === 'ms') await sleep(1);
          }
          await sleep(30);
          proxy.kill(); // at the latest now: a kill past the bytes sent would leave calls hanging
          await waitFor(() => calls.every((c) => c.cancelled || c.handler.outcome !== undefined), 6_000);
          await sleep(20); // a server that still reads a frame runs it now
          for (const c of calls) {
            const onA = ranA.get(c.id) ?? 0;
            const onB = ranB.get(c.id) ?? 0;
            const where = `call ${c.id} (${JSON.stringify(ops[calls.indexOf(c)])})`;
            expect(onA + onB, `${where} ran more than once: ${onA} on A, ${onB} on B`).toBeLessThanOrEqual(1);
            if (onA === 1) expect(c.handle.sent, `${where} ran on A but is marked not sent`).toBe(true);
            if (c.handler.outcome?.value === 'A') expect(onA).toBe(1);
          }
        } finally {
          pool.destroy();
          await proxy.close();
        }
        await waitFor(() => a.server.stats.connections === 0, 3_000);
      }),
      { numRuns: 25, timeout: 15_000 },
    );
    await a.server.destroy();
    await b.server.destroy();
  }, 120_000);
});
