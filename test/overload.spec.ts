/**
 * Overload (docs/OVERLOAD.md): the server-wide concurrency limit, its
 * queue bounded by expected wait, requests that could not start before
 * their deadline never started, and fast refusals with a coded "not run"
 * error (rpc_overloaded; rpc_unreachable to plain v1 peers). Real servers
 * and sockets on 127.0.0.1; handlers held by gates the test opens.
 */
import dc from 'node:diagnostics_channel';

import { ClientStream } from '../lib/client/client-stream.js';
import { FailoverPool } from '../lib/client/failover-pool.js';
import { RetryPolicy, RetryVerdict } from '../lib/client/retry-policy.js';
import { CHANNELS, type ServerRequestRefusedMessage } from '../lib/core/diagnostics.js';
import { ErrorCode, errorFromWireBytes, InvalidOptionError, type OccamsError, OverloadedError, UnreachableError } from '../lib/errors.js';
import { FLAG_ERROR_BYTES, FLAG_OK } from '../lib/protocol/constants.js';
import { ALL_FEATURES, FEATURE_OVERLOADED, FEATURE_RECORDS, FORMAT_EXT_HEADER } from '../lib/protocol/extensions.js';
import { helloCodec } from '../lib/protocol/hello.js';
import { AimdLimit } from '../lib/server/aimd-limit.js';
import { GradientLimit } from '../lib/server/gradient-limit.js';
import { QueueWait } from '../lib/server/queue-wait.js';
import { RawPeer } from './support/raw-peer.js';
import { settle, sleep, startServer, waitFor } from './support/servers.js';

/** msgpack nil: a request with no argument. */
const NIL = Buffer.from([0xc0]);

/** A request msg with an extension header carrying `d` (ms to the caller's deadline), then `value` (a short string). */
function withDeadline(d: number, value: string): Buffer {
  const header = Buffer.from(helloCodec.encode({ d }));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  return Buffer.concat([len, header, Buffer.from(helloCodec.encode(value))]);
}

/** A promise the test resolves when it wants. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** Handlers: `block` waits for the gate; `work` records that it started and answers; `sleep` waits n ms. */
function handlers(g: { promise: Promise<void> }) {
  const started: unknown[] = [];
  return {
    started,
    methods: {
      block: () => g.promise.then(() => 'unblocked'),
      work: (v: unknown) => {
        started.push(v);
        return v;
      },
      sleep: (ms: number) => sleep(ms).then(() => ms),
    },
  };
}

/** Resolves to 'pending' if `p` has not settled within `ms` (a bound, not a timed assertion: the outcome that matters is which). */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> => Promise.race([p, sleep(ms).then(() => 'pending' as const)]);

describe('requests that cannot start before their deadline never start', () => {
  it('one whose deadline passed while it waited for the limit is answered rpc_overloaded and never runs', async () => {
    const g = gate();
    const h = handlers(g);
    // a static limit of 1; the wheel's ticks far apart, so only the limiter's own check can drop it
    const ctx = await startServer(h.methods, { concurrencyLimit: 1, timerResolution: 60_000 });
    const client = await ClientStream.connect(ctx.url);
    try {
      const blocked = client.request('block', null, { timeout: 10_000 });
      await waitFor(() => ctx.server.stats.inFlight === 1);
      const deadline = Date.now() + 100;
      const late = client.request('work', 'late', { deadline, timeout: 10_000 }).catch((e: OccamsError) => e);
      await waitFor(() => ctx.server.stats.limit?.queued === 1);
      await waitFor(() => Date.now() > deadline + 20);
      g.open();
      const err = (await late) as OccamsError;
      expect(err).toBeInstanceOf(OverloadedError);
      expect(err.code).toBe('rpc_overloaded');
      expect(err.neverRan).toBe(true);
      expect(err.retriable).toBe(true);
      expect(await blocked).toBe('unblocked');
      expect(h.started).toEqual([]);
      expect(ctx.server.stats.ended).toMatchObject({ expiredQueued: 1, overloaded: 0 });
      expect(ctx.server.stats.limit).toMatchObject({ running: 0, queued: 0 });
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  });

  it('one whose deadline would pass before it could start is refused at once, while the slot is still taken', async () => {
    const g = gate();
    const h = handlers(g);
    const ctx = await startServer(h.methods, { concurrencyLimit: 1, timerResolution: 60_000 });
    const client = await ClientStream.connect(ctx.url);
    try {
      // the limit measures the handlers' latency: 6 calls of 60 ms, one after another (a window is 100 ms and 5 samples)
      for (let i = 0; i < 6; i++) await client.request('sleep', 60, { timeout: 5_000 });
      await waitFor(() => (ctx.server.stats.limit?.latency ?? 0) >= 60);
      const blocked = client.request('block', null, { timeout: 10_000 });
      await waitFor(() => ctx.server.stats.inFlight === 1);
      // expected wait: 1 x ~60 ms / a limit of 1, past its 30 ms
      const refused = await within(settle(client.request('work', 'hopeless', { deadline: Date.now() + 30, timeout: 10_000 })), 3_000);
      expect(refused).toBe('rpc_overloaded');
      expect(ctx.server.stats.ended).toMatchObject({ overloaded: 1, expiredQueued: 0 });
      g.open();
      expect(await blocked).toBe('unblocked');
      expect(h.started).toEqual([]);
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  });

  it("under the client's default timeout alone (no per-call option): one whose caller gave up while it waited for the limit never runs", async () => {
    const g = gate();
    const h = handlers(g);
    // a static limit of 1; `spin` passes it (limitBypass), holds the whole process (server and clients) past the queued
    // call's deadline, then opens the gate: the slot frees before the client's CANCEL is read, so only the deadline can stop it
    const spin = (until: number) => {
      while (Date.now() < until);
      g.open();
      return 'spun';
    };
    const ctx = await startServer({ ...h.methods, spin }, { concurrencyLimit: 1, limitBypass: ['spin'] });
    const long = await ClientStream.connect(ctx.url);
    // 3 s: time enough, on a loaded machine, to see the call queued before its deadline passes
    const short = await ClientStream.connect(ctx.url, { timeout: 3_000 });
    try {
      const blocked = long.request('block', null);
      blocked.catch(() => {}); // awaited below; a failed check destroys the connection under it
      await waitFor(() => ctx.server.stats.inFlight === 1);
      const sentAt = Date.now();
      const late = settle(short.request('work', 'late'));
      await waitFor(() => ctx.server.stats.limit?.queued === 1);
      expect(await long.request('spin', sentAt + 3_200)).toBe('spun');
      expect(await blocked).toBe('unblocked');
      expect(await late).toBe('rpc_timeout'); // the client's own timeout: it gave up first
      expect(h.started).toEqual([]); // the old client sent no deadline: it ran once the slot freed, for nobody
      expect(ctx.server.stats.ended).toMatchObject({ expiredQueued: 1 });
    } finally {
      long.destroy();
      short.destroy();
      await ctx.server.destroy();
    }
  });

  it("under the client's default timeout alone: one that could not start before it is refused at once (rpc_overloaded, not a timeout)", async () => {
    const g = gate();
    const h = handlers(g);
    const ctx = await startServer(h.methods, { concurrencyLimit: 1, timerResolution: 60_000 });
    const client = await ClientStream.connect(ctx.url);
    const short = await ClientStream.connect(ctx.url, { timeout: 100 });
    try {
      // the limit measures the handlers' latency: 6 calls of 300 ms, one after another
      for (let i = 0; i < 6; i++) await client.request('sleep', 300);
      await waitFor(() => (ctx.server.stats.limit?.latency ?? 0) >= 300);
      const blocked = client.request('block', null);
      await waitFor(() => ctx.server.stats.inFlight === 1);
      // expected wait: 1 x ~300 ms / a limit of 1, past the 100 ms its caller waits
      expect(await within(settle(short.request('work', 'hopeless')), 3_000)).toBe('rpc_overloaded');
      expect(ctx.server.stats.ended).toMatchObject({ overloaded: 1, expiredQueued: 0 });
      g.open();
      expect(await blocked).toBe('unblocked');
      expect(h.started).toEqual([]);
    } finally {
      client.destroy();
      short.destroy();
      await ctx.server.destroy();
    }
  });

  it('one whose deadline passed while held on its connection (past maxInFlightPerConnection) never runs', async () => {
    const g = gate();
    const h = handlers(g);
    const ctx = await startServer(h.methods, { concurrencyLimit: false, maxInFlightPerConnection: 1, timerResolution: 60_000 });
    // a raw peer ignores the window HELLO announces (1): its second request is held by the server
    const peer = await RawPeer.hello(ctx.address.port, ALL_FEATURES & ~FEATURE_RECORDS);
    try {
      peer.send({ action: 'block', seq: 2, msg: NIL }, { action: 'work', seq: 3, format: FORMAT_EXT_HEADER, msg: withDeadline(100, 'late') });
      await waitFor(() => ctx.server.stats.inFlight === 1 && ctx.server.stats.queued === 1);
      const t = Date.now();
      await waitFor(() => Date.now() > t + 150);
      g.open();
      const answers = await peer.waitForResponses(2);
      const bySeq = new Map(answers.map((r) => [r.seq, r]));
      expect(bySeq.get(3)).toMatchObject({ flag: FLAG_ERROR_BYTES });
      expect(bySeq.get(3)!.blob.toString('latin1')).toBe('rpc_overloaded');
      expect(bySeq.get(2)!.flag).toBe(FLAG_OK);
      expect(h.started).toEqual([]);
      expect(ctx.server.stats.ended).toMatchObject({ expiredQueued: 1 });
    } finally {
      peer.destroy();
      await ctx.server.destroy();
    }
  });
});

describe('fast refusal past the limit and its queue', () => {
  it('answers rpc_overloaded to peers that negotiated it, rpc_unreachable to plain v1 peers, and runs neither', async () => {
    const g = gate();
    const h = handlers(g);
    const ctx = await startServer(h.methods, { concurrencyLimit: 1, maxQueued: 1 });
    const modern = await ClientStream.connect(ctx.url);
    const v1 = await ClientStream.connect(ctx.url, { extensions: false });
    const refusals: ServerRequestRefusedMessage[] = [];
    const onRefused = (m: unknown) => refusals.push(m as ServerRequestRefusedMessage);
    dc.subscribe(CHANNELS.serverRequestRefused, onRefused);
    try {
      const blocked = modern.request('block', null, { timeout: 10_000 });
      await waitFor(() => ctx.server.stats.inFlight === 1);
      const waiting = modern.request('work', 'waits', { timeout: 10_000 });
      await waitFor(() => ctx.server.stats.limit?.queued === 1);
      // the queue holds maxQueued (1): both are refused at once, while the slot is still taken
      const refused = await within(Promise.all([settle(modern.request('work', 'a', { timeout: 10_000 })), settle(v1.request('work', 'b', { timeout: 10_000 }))]), 3_000);
      expect(refused).toEqual(['rpc_overloaded', 'rpc_unreachable']);
      expect(h.started).toEqual([]);
      expect(ctx.server.stats.ended.overloaded).toBe(2);
      expect(refusals.map((m) => [m.reason, m.code, m.request.msg])).toEqual([
        ['limit', 'rpc_overloaded', 'a'],
        ['limit', 'rpc_unreachable', 'b'],
      ]);
      g.open();
      expect(await blocked).toBe('unblocked');
      expect(await waiting).toBe('waits');
      expect(h.started).toEqual(['waits']);
    } finally {
      dc.unsubscribe(CHANNELS.serverRequestRefused, onRefused);
      modern.destroy();
      v1.destroy();
      await ctx.server.destroy();
    }
  });

  it('a connection past its own queue refuses with rpc_overloaded too when its peer negotiated it', async () => {
    const g = gate();
    const h = handlers(g);
    const ctx = await startServer(h.methods, { concurrencyLimit: false, maxInFlightPerConnection: 1, maxQueuedPerConnection: 1 });
    const peer = await RawPeer.hello(ctx.address.port);
    const old = await RawPeer.hello(ctx.address.port, ALL_FEATURES & ~FEATURE_OVERLOADED);
    try {
      for (const p of [peer, old]) p.send({ action: 'block', seq: 2, msg: NIL }, { action: 'work', seq: 3, msg: NIL }, { action: 'work', seq: 4, msg: NIL });
      await peer.waitForResponses(1);
      await old.waitForResponses(1);
      expect([peer, old].map((p) => [p.responses[0]!.seq, p.responses[0]!.blob.toString('latin1')])).toEqual([
        [4, 'rpc_overloaded'],
        [4, 'rpc_unreachable'],
      ]);
      g.open();
      await peer.waitForResponses(3);
      await old.waitForResponses(3);
    } finally {
      peer.destroy();
      old.destroy();
      await ctx.server.destroy();
    }
  });
});

describe('the server-wide concurrency limit', () => {
  it('holds at most `limit` handlers at once across connections; the rest wait and start as slots free', async () => {
    const g = gate();
    const h = handlers(g);
    const ctx = await startServer(h.methods, { concurrencyLimit: 2 });
    const clients = await Promise.all([0, 1, 2].map(() => ClientStream.connect(ctx.url)));
    try {
      // one after another: the first handlers of a server count as fast ones until a turn shows they outlive it
      const calls: Promise<unknown>[] = [];
      for (const [i, c] of clients.entries()) {
        calls.push(c.request('block', null, { timeout: 10_000 }));
        await waitFor(() => ctx.server.stats.inFlight + (ctx.server.stats.limit?.queued ?? 0) === i + 1);
      }
      await waitFor(() => ctx.server.stats.inFlight === 2 && ctx.server.stats.limit?.queued === 1);
      expect(ctx.server.stats.limit).toMatchObject({ algorithm: 'static', limit: 2, running: 2, queued: 1 });
      expect(clients.map((c) => c.stats.inFlight)).toEqual([1, 1, 1]); // each connection is under its own cap
      g.open();
      expect(await Promise.all(calls)).toEqual(['unblocked', 'unblocked', 'unblocked']);
      expect(ctx.server.stats.limit).toMatchObject({ running: 0, queued: 0 });
      expect(ctx.server.stats.ended).toMatchObject({ overloaded: 0, expiredQueued: 0 });
    } finally {
      for (const c of clients) c.destroy();
      await ctx.server.destroy();
    }
  });

  it('never holds back handlers that settle within their turn: 2,000 pipelined async calls with a limit of 1 and no queue', async () => {
    const ctx = await startServer({ echo: async (v: unknown) => v }, { concurrencyLimit: 1, maxQueued: 0 });
    const client = await ClientStream.connect(ctx.url, { maxInFlight: 1024 });
    try {
      const answers = await Promise.all(Array.from({ length: 2000 }, (_, i) => client.request('echo', i, { timeout: 10_000 })));
      expect(answers).toEqual(Array.from({ length: 2000 }, (_, i) => i));
      expect(ctx.server.stats.ended.overloaded).toBe(0);
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  });

  it('a stream leaves the count once it streams; an action in limitBypass is neither counted nor held', async () => {
    const g = gate();
    const h = handlers(g);
    const ctx = await startServer(
      {
        ...h.methods,
        feed: async function* () {
          yield 1;
          await g.promise;
          yield 2;
        },
        watch: () => g.promise.then(() => 'seen'),
      },
      { concurrencyLimit: 1, maxQueued: 0, limitBypass: ['watch'] },
    );
    const client = await ClientStream.connect(ctx.url);
    try {
      const items: unknown[] = [];
      const feed = new Promise<void>((resolve, reject) =>
        client.call('feed', null, { onItem: (v) => items.push(v), onResult: () => resolve(), onError: reject }, { timeout: 10_000 }),
      );
      await waitFor(() => items.length === 1);
      const watches = [client.request('watch', null, { timeout: 10_000 }), client.request('watch', null, { timeout: 10_000 })];
      await waitFor(() => ctx.server.stats.inFlight === 3);
      expect(ctx.server.stats.limit).toMatchObject({ running: 0, queued: 0 });
      // the slot is free: with no queue, only a request that may start now is let in
      expect(await within(client.request('work', 'runs', { timeout: 10_000 }), 3_000)).toBe('runs');
      g.open();
      await feed;
      expect(items).toEqual([1, 2]);
      expect(await Promise.all(watches)).toEqual(['seen', 'seen']);
      expect(ctx.server.stats.ended.overloaded).toBe(0);
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  });
});

describe('clients: rpc_overloaded is retriable and never ran', () => {
  it('maps to OverloadedError; the retry policy retries it without idempotence, within retryLimit', () => {
    const err = errorFromWireBytes(Buffer.from('rpc_overloaded', 'latin1'));
    expect(err).toBeInstanceOf(OverloadedError);
    expect([err.code, err.retriable, err.neverRan, err.name]).toEqual([ErrorCode.Overloaded, true, true, 'OverloadedError']);
    expect(new UnreachableError().neverRan).toBe(false);
    const policy = new RetryPolicy(2, false);
    const sent = { sent: true, delivered: false, retries: 0, moves: 0 };
    expect(policy.verdict(err, sent, 'pay', undefined)).toBe(RetryVerdict.Retry);
    expect(policy.verdict(new UnreachableError(), sent, 'pay', undefined)).toBe(RetryVerdict.Fail); // may have run: only if idempotent
    expect(policy.verdict(err, { ...sent, retries: 2 }, 'pay', undefined)).toBe(RetryVerdict.Fail);
    expect(policy.verdict(err, sent, 'pay', { retry: false })).toBe(RetryVerdict.Fail);
  });

  it('a FailoverPool moves a non-idempotent call an overloaded server refused to the next server', async () => {
    const g = gate();
    const a = handlers(g);
    const b = handlers(g);
    const overloaded = await startServer(a.methods, { concurrencyLimit: 1, maxQueued: 0 });
    const healthy = await startServer(b.methods);
    const blocker = await ClientStream.connect(overloaded.url);
    const pool = new FailoverPool([overloaded.url, healthy.url], { strategy: 'first', timeout: 5_000 });
    try {
      const blocked = blocker.request('block', null, { timeout: 10_000 });
      await waitFor(() => overloaded.server.stats.inFlight === 1);
      expect(await pool.request('work', 'once')).toBe('once');
      expect(a.started).toEqual([]);
      expect(b.started).toEqual(['once']);
      expect(overloaded.server.stats.ended.overloaded).toBe(1);
      g.open();
      await blocked;
    } finally {
      await pool.close();
      blocker.destroy();
      await overloaded.server.destroy();
      await healthy.server.destroy();
    }
  });
});

describe('options', () => {
  it('are checked by name', async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ concurrencyLimit: 'vegas' }, 'concurrencyLimit'],
      [{ concurrencyLimit: -1 }, 'concurrencyLimit'],
      [{ maxQueueWait: 'soon' }, 'maxQueueWait'],
      [{ minConcurrencyLimit: 50, maxConcurrencyLimit: 10 }, 'minConcurrencyLimit'],
      [{ maxQueued: -1 }, 'maxQueued'],
      [{ limitBypass: 'watch' }, 'limitBypass'],
    ];
    for (const [options, name] of bad) {
      const err = await startServer({}, options).then(
        (ctx) => ctx.server.destroy().then(() => undefined),
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).option).toBe(name);
    }
    // off, and strings as env or ConfigService give them
    for (const [value, limit] of [
      [false, undefined],
      ['0', undefined],
      ['16', 'static'],
      ['aimd', 'aimd'],
    ] as const) {
      const ctx = await startServer({}, { concurrencyLimit: value as never });
      expect(ctx.server.stats.limit?.algorithm).toBe(limit);
      await ctx.server.destroy();
    }
  });
});

describe('the pure parts: limit algorithms and the queue-wait policy', () => {
  const w = (latency: number, minLatency: number, peak: number, queued: number) => ({ latency, minLatency, peak, queued });

  it('gradient: shrinks by the latency gradient (at most halving), slow-starts while requests wait, holds when unused', () => {
    const g = new GradientLimit();
    expect(g.next(20, w(50, 10, 20, 5))).toBe(Math.floor(10 + Math.sqrt(10))); // gradient 12.5 / 50, clamped to 0.5
    expect(g.next(20, w(11, 10, 20, 0))).toBe(Math.floor(20 * (12.5 / 11) + Math.sqrt(20 * (12.5 / 11))));
    expect(g.next(20, w(10, 10, 20, 3))).toBe(Math.floor(40 + Math.sqrt(40))); // no queue in the handlers, requests wait: doubles
    expect(g.next(20, w(10, 10, 5, 0))).toBe(20); // app-limited: a limit never approached does not grow
    expect(g.next(20, w(40, 10, 5, 0))).toBeLessThan(20); // but shrinks
  });

  it('aimd: one more per window within the target, x 0.9 past it', () => {
    const a = new AimdLimit();
    expect(a.next(20, w(12, 10, 20, 0))).toBe(21);
    expect(a.next(20, w(13, 10, 20, 0))).toBe(18);
    expect(a.next(20, w(12, 10, 5, 0))).toBe(20);
  });

  it('queue wait: a burst may wait 4 latencies and drains; a queue that stands, 1 latency, counted on what it waited, for a while after', () => {
    const view = { queued: 10, limit: 8, latency: 10, unqueuedHandlers: false };
    expect(new QueueWait(25).bound(0, view)).toBe(25);
    expect(new QueueWait(25).counts(0, view)).toBe(true);
    const q = new QueueWait('auto');
    expect(q.bound(0, { ...view, latency: 0 })).toBe(Infinity);
    q.filling(1_000);
    expect([q.bound(1_050, view), q.counts(1_050, view)]).toEqual([40, false]); // a burst, so far
    expect(q.bound(1_200, view)).toBe(40); // 200 ms on, but no handler finished: a stall, not overload
    for (let i = 0; i < 8; i++) q.finished();
    expect(q.bound(1_200, { ...view, unqueuedHandlers: true })).toBe(40); // the limit is what holds them back, not the resource
    expect([q.bound(1_200, view), q.counts(1_200, view)]).toEqual([10, true]); // stands
    expect(q.bound(2_100, { ...view, queued: 0 })).toBe(10); // emptied now and then: still held to it...
    expect(q.bound(2_300, { ...view, queued: 0 })).toBe(40); // ...for STANDING_MEMORY
    q.refused(3_000);
    expect(q.bound(3_500, { ...view, queued: 0 })).toBe(10);
  });
});
