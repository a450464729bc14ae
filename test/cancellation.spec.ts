/**
 * Every call's life reaches the server: a call abandoned on the client
 * (timeout, unsubscribe, destroy) ends its handler on the server and frees
 * its slot; deadlines and handlerTimeout are enforced on the server; a
 * connection at its in-flight cap still reads (pings, CANCELs, FIN).
 */
import 'reflect-metadata';

import { Controller, type INestMicroservice, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { Observable } from 'rxjs';

import { ClientStream } from '../lib/client/client-stream.js';
import type { OccamsError } from '../lib/errors.js';
import { OccamsClient, OccamsContext, OccamsServer, type ServerRequest, type TcpAddress } from '../lib/index.js';
import { encodeRequest } from '../lib/protocol/request-frame.js';
import { ResponseDecoder } from '../lib/protocol/response-decoder.js';
import { FakeClock } from './support/fake-clock.js';
import { rawConnect, sleep, startServer, waitFor } from './support/servers.js';

const settle = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: OccamsError) => e.code,
  );

/** A `never` handler that records how its signal ended. */
function neverHandlers() {
  const aborts: string[] = [];
  let started = 0;
  const never = (_: unknown, req: ServerRequest) => {
    started++;
    req.signal.addEventListener('abort', () => aborts.push((req.signal.reason as OccamsError).code));
    return new Promise(() => {});
  };
  return { aborts, started: () => started, never };
}

describe('cancel on timeout', () => {
  it('1,100 calls to a never-answering handler time out; the server frees every slot (at their deadlines or their CANCELs) and serves on', async () => {
    const h = neverHandlers();
    // the concurrency limit off: this is about the connection's own cap (with it, most of these would be refused unrun)
    const ctx = await startServer({ never: h.never, echo: (v: unknown) => v }, { concurrencyLimit: false });
    // a window above the server's cap: HELLO clamps it to 1024
    const client = await ClientStream.connect(ctx.url, { maxInFlight: 2048, maxQueued: 2048, timerResolution: 100 });
    try {
      const outcomes = await Promise.all(Array.from({ length: 1100 }, () => settle(client.request('never', null, { timeout: 1000 }))));
      expect(new Set(outcomes)).toEqual(new Set(['rpc_timeout']));
      expect(h.started()).toBeLessThanOrEqual(1100);
      expect(ctx.server.stats.queued).toBe(0); // the window never exceeded the cap
      await waitFor(() => ctx.server.stats.inFlight === 0, 2000);
      expect(await client.request('echo', 'next', { timeout: 1000 })).toBe('next');
      // each call told the server its deadline: the server ends it there, or the client's CANCEL does, whichever comes first
      const { cancelled, deadlines } = ctx.server.stats.ended;
      expect(cancelled + deadlines).toBe(h.started());
      expect(h.aborts.length).toBe(h.started());
      expect(['rpc_cancelled', 'rpc_timeout']).toEqual(expect.arrayContaining([...new Set(h.aborts)]));
      expect(client.stats).toMatchObject({ inFlight: 0, pending: 0, queued: 0 });
      const t0 = Date.now();
      await client.close(); // nothing owed any more: settles at once (it hung for good before)
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  }, 20_000);

  it('plain v1 peers: handlerTimeout ends a handler that never answers with rpc_timeout and frees its slot (fake clock)', async () => {
    const h = neverHandlers();
    const clock = new FakeClock(Date.now());
    const ctx = await startServer({ never: h.never, echo: (v: unknown) => v }, { handlerTimeout: 30_000, maxInFlightPerConnection: 1000, clock, concurrencyLimit: false });
    const v1 = await ClientStream.connect(ctx.url, { extensions: false, maxInFlight: 1100, maxQueued: 1100 });
    try {
      // 100 of these wait in the server's queue (past its cap of 1000): their time counts from arrival
      const outcomes = Promise.all(Array.from({ length: 1100 }, () => settle(v1.request('never', null, { timeout: 10_000 }))));
      await waitFor(() => ctx.server.stats.inFlight === 1000 && ctx.server.stats.queued === 100);
      clock.advance(29_000);
      expect(ctx.server.stats.inFlight).toBe(1000);
      clock.advance(2_000); // past handlerTimeout, one wheel tick (1 s) at most
      expect(new Set(await outcomes)).toEqual(new Set(['rpc_timeout'])); // answered by the server, long before the client's own timeout
      expect(ctx.server.stats).toMatchObject({ inFlight: 0, queued: 0 });
      expect(ctx.server.stats.ended.handlerTimeouts).toBe(1100);
      expect(h.started()).toBe(1000); // the queued ones' time was up before a slot freed
      expect(new Set(h.aborts)).toEqual(new Set(['rpc_timeout']));
      expect(await v1.request('echo', 'v1 again')).toBe('v1 again');
    } finally {
      v1.destroy();
      await ctx.server.destroy();
    }
  });

  it('the deadline the client sends is enforced on the server, CANCEL or not (fake clock)', async () => {
    const h = neverHandlers();
    const clock = new FakeClock(Date.now());
    const ctx = await startServer({ never: h.never }, { clock });
    // extensions on, but a client that never cancels: a long client timeout, a short deadline
    const client = await ClientStream.connect(ctx.url);
    try {
      const err = settle(client.request('never', null, { deadline: Date.now() + 3000, timeout: 10_000 }));
      await waitFor(() => ctx.server.stats.inFlight === 1);
      clock.advance(2_000);
      expect(ctx.server.stats.inFlight).toBe(1);
      clock.advance(2_000);
      expect(await err).toBe('rpc_timeout'); // the server's answer
      expect(ctx.server.stats.ended.deadlines).toBe(1);
      expect(h.aborts).toEqual(['rpc_timeout']);
      expect(ctx.server.stats.inFlight).toBe(0);
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  });
});

describe('a connection at its in-flight cap never wedges', () => {
  it('answers pings, applies CANCELs and serves again once a slot frees', async () => {
    const h = neverHandlers();
    const ctx = await startServer({ never: h.never, echo: (v: unknown) => v }, { maxInFlightPerConnection: 16 });
    const client = await ClientStream.connect(ctx.url, { maxInFlight: 100 });
    try {
      const handler = { onResult() {}, onError() {} };
      const calls = Array.from({ length: 16 }, () => client.call('never', null, handler));
      await waitFor(() => ctx.server.stats.inFlight === 16);
      expect(client.stats.window).toBe(16); // clamped to the server's cap, announced in HELLO
      expect(client.available).toBe(false);
      expect(await client.ping(1000)).toBeGreaterThanOrEqual(0);
      calls[0]!.cancel();
      await waitFor(() => ctx.server.stats.inFlight === 15, 1000);
      expect(await client.request('echo', 'room again', { timeout: 1000 })).toBe('room again');
      for (const c of calls) c.cancel();
      await waitFor(() => ctx.server.stats.inFlight === 0, 1000);
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  });

  it('a raw v1 peer past the cap: pings answered, and its reset is noticed (handlers cancelled within 1 s)', async () => {
    const h = neverHandlers();
    const ctx = await startServer({ never: h.never }, { maxInFlightPerConnection: 64, concurrencyLimit: false });
    const raw = await rawConnect(ctx.address.port);
    const answered: number[] = [];
    const decoder = new ResponseDecoder({ onResponse: (_f, seq) => answered.push(seq) });
    raw.on('data', (c: Buffer) => decoder.push(c));
    raw.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => encodeRequest({ action: 'never', seq: i + 1, msg: Buffer.from([0xc0]) }))));
    raw.write(encodeRequest({ action: 0, seq: 101 })); // a PING behind 100 requests, 36 of them over the cap
    await waitFor(() => answered.includes(101), 2000);
    expect(ctx.server.stats).toMatchObject({ inFlight: 64, queued: 36 });
    const t0 = Date.now();
    raw.destroy();
    await waitFor(() => ctx.server.stats.connections === 0 && h.aborts.length === 64, 1000);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(new Set(h.aborts)).toEqual(new Set(['rpc_io_err']));
    expect(ctx.server.stats.ended).toMatchObject({ disconnected: 100, droppedQueued: 36 });
    await ctx.server.destroy();
  });

  it('past the cap and the queue, requests are refused at once (rpc_unreachable: never run)', async () => {
    const h = neverHandlers();
    const ctx = await startServer({ never: h.never }, { maxInFlightPerConnection: 4, maxQueuedPerConnection: 4 });
    const v1 = await ClientStream.connect(ctx.url, { extensions: false, maxInFlight: 20 });
    try {
      const outcomes = Array.from({ length: 12 }, () => settle(v1.request('never', null, { timeout: 3000 })));
      const refused = await Promise.all(outcomes.slice(8));
      expect(refused).toEqual(['rpc_unreachable', 'rpc_unreachable', 'rpc_unreachable', 'rpc_unreachable']);
      expect(ctx.server.stats).toMatchObject({ inFlight: 4, queued: 4 });
      expect(h.started()).toBe(4);
      expect(ctx.server.stats.ended.refused).toBe(4);
    } finally {
      v1.destroy();
      await ctx.server.destroy();
    }
  });
});

describe('ctx.signal', () => {
  it('aborts on cancel, on deadline, on handler timeout and on disconnect, with the reason', async () => {
    const reasons: Record<string, string> = {};
    const ctx = await startServer(
      {
        wait: (name: string, req: ServerRequest) => {
          req.signal.addEventListener('abort', () => (reasons[name] = (req.signal.reason as OccamsError).code));
          return new Promise(() => {});
        },
      },
      { timerResolution: 50, handlerTimeout: 300 },
    );
    const client = await ClientStream.connect(ctx.url);
    const v1 = await ClientStream.connect(ctx.url, { extensions: false });
    const doomed = await ClientStream.connect(ctx.url, { extensions: false });
    try {
      const cancelled = client.call('wait', 'cancel', { onResult() {}, onError() {} });
      void settle(client.request('wait', 'deadline', { deadline: Date.now() + 200, timeout: 10_000 }));
      void settle(v1.request('wait', 'handlerTimeout', { timeout: 10_000 }));
      void settle(doomed.request('wait', 'disconnect', { timeout: 10_000 }));
      await waitFor(() => ctx.server.stats.inFlight === 4);
      cancelled.cancel();
      doomed.destroy();
      await waitFor(() => Object.keys(reasons).length === 4, 3000);
      expect(reasons).toEqual({ cancel: 'rpc_cancelled', deadline: 'rpc_timeout', handlerTimeout: 'rpc_timeout', disconnect: 'rpc_io_err' });
      expect(ctx.server.stats.inFlight).toBe(0);
    } finally {
      client.destroy();
      v1.destroy();
      await ctx.server.destroy();
    }
  });
});

@Injectable()
class Teardowns {
  subscribed = 0;
  tornDown = 0;
  aborted = 0;
}

@Controller()
class SilentController {
  constructor(private readonly t: Teardowns) {}

  @MessagePattern('silent')
  silent(): Observable<never> {
    return new Observable<never>(() => {
      this.t.subscribed++;
      return () => this.t.tornDown++;
    });
  }

  @MessagePattern('query')
  query(@Payload() _: unknown, @Ctx() ctx: OccamsContext) {
    ctx.signal.addEventListener('abort', () => this.t.aborted++);
    return new Promise(() => {});
  }
}

@Module({ controllers: [SilentController], providers: [Teardowns] })
class SilentModule {}

describe('Nest: cancellation reaches the handler', () => {
  let app: INestMicroservice;
  let strategy: OccamsServer;
  let client: OccamsClient;
  let t: Teardowns;
  beforeAll(async () => {
    // thousands of handlers that never answer: the concurrency limit would (rightly) refuse most of them
    strategy = new OccamsServer({ port: 0, maxInFlightPerConnection: 2048, concurrencyLimit: false });
    app = await NestFactory.createMicroservice(SilentModule, { strategy, logger: false });
    await app.listen();
    t = app.get(Teardowns);
    client = new OccamsClient({ port: (strategy.address as TcpAddress).port, maxInFlight: 2048, maxQueued: 4096 });
    await client.connect();
  });
  afterAll(async () => {
    await client.close();
    await app.close();
  });

  it('unsubscribing 10,000 never-emitting streams tears down all 10,000 on the server', async () => {
    const rpc = strategy.unwrap<{ stats: { inFlight: number } }>();
    for (let batch = 0; batch < 5; batch++) {
      const subs = Array.from({ length: 2000 }, () => client.send('silent', {}).subscribe({ error: () => {} }));
      await waitFor(() => t.subscribed === (batch + 1) * 2000, 5000);
      for (const s of subs) s.unsubscribe();
      await waitFor(() => t.tornDown === (batch + 1) * 2000, 5000);
    }
    expect(t).toMatchObject({ subscribed: 10_000, tornDown: 10_000 });
    await waitFor(() => rpc.stats.inFlight === 0, 2000);
  }, 30_000);

  it('a timed-out call aborts ctx.signal on the server', async () => {
    const before = t.aborted;
    const codes = await Promise.all(Array.from({ length: 50 }, () => settle(client.request('query', {}, { timeout: 200 }))));
    expect(new Set(codes)).toEqual(new Set(['rpc_timeout']));
    await waitFor(() => t.aborted === before + 50, 2000);
  });
});

describe('client close and destroy reach the server', () => {
  it('a destroyed client cancels what it had in flight', async () => {
    const h = neverHandlers();
    const ctx = await startServer({ never: h.never });
    const client = await ClientStream.connect(ctx.url);
    const calls = Array.from({ length: 30 }, () => settle(client.request('never', null)));
    await waitFor(() => ctx.server.stats.inFlight === 30);
    client.destroy();
    expect(new Set(await Promise.all(calls))).toEqual(new Set(['rpc_closed']));
    await waitFor(() => h.aborts.length === 30, 1000);
    expect(ctx.server.stats.inFlight).toBe(0);
    await sleep(10);
    await ctx.server.destroy();
  });
});
