/**
 * Issue 34: the client always tells the server its deadline. Every User
 * call to a peer that negotiated FEATURE_DEADLINE carries its time left as
 * `d` in the request's ext header: under the client's default timeout, a
 * pool's, a FailoverPool's retry (the time left of the whole call) and the
 * Nest OccamsClient's client-level `timeout`, with no per-call options.
 * Plain v1 peers and events get none. The common header `{d: n}` is
 * written and read by hand; these check its bytes against msgpack's.
 * Real servers and sockets on 127.0.0.1.
 */
import 'reflect-metadata';

import { Writable } from 'node:stream';

import { Call, CallKind, IGNORE } from '../lib/client/call.js';
import { ClientPool } from '../lib/client/client-pool.js';
import { ClientStream } from '../lib/client/client-stream.js';
import { FailoverPool } from '../lib/client/failover-pool.js';
import { RequestWriter } from '../lib/client/request-writer.js';
import { msgpackCodec } from '../lib/codec/msgpack-codec.js';
import { systemClock } from '../lib/core/clock.js';
import { FrameWriter } from '../lib/core/frame-writer.js';
import { OccamsClient } from '../lib/index.js';
import { REQUEST_HEADER_SIZE } from '../lib/protocol/constants.js';
import {
  ALL_FEATURES,
  deadlineHeaderSize,
  FEATURE_DEADLINE,
  FORMAT_EVENT,
  FORMAT_EXT_HEADER,
  MAX_DEADLINE_LEFT,
  readDeadlineHeader,
  writeDeadlineHeader,
} from '../lib/protocol/extensions.js';
import { helloCodec } from '../lib/protocol/hello.js';
import { RequestDecoder } from '../lib/protocol/request-decoder.js';
import type { ServerRequest } from '../lib/server/server-request.js';
import { FakeClock } from './support/fake-clock.js';
import { TestAppModule } from './support/nest-apps.js';
import { startMicroservice } from './support/nest-boot.js';
import { startServer, waitFor } from './support/servers.js';

/** `header` as a request msg starts: u32 LE length, then the bytes. */
const withLength = (header: Uint8Array): Buffer => {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  return Buffer.concat([len, header, Buffer.from([0xc0])]);
};

/** `n` as the smallest msgpack uint. */
function uint(n: number): number[] {
  if (n < 0x80) return [n];
  if (n < 0x100) return [0xcc, n];
  if (n < 0x1_0000) return [0xcd, n >> 8, n & 0xff];
  return [0xce, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

describe('the header {d: n}, by hand', () => {
  const values = [0, 1, 127, 128, 255, 256, 20_000, 65_535, 65_536, 2 ** 31, MAX_DEADLINE_LEFT];

  it('writes the bytes msgpack writes for the map, and reads them back', () => {
    for (const d of values) {
      const buf = Buffer.alloc(8);
      const n = writeDeadlineHeader(buf, 0, d);
      expect(n).toBe(deadlineHeaderSize(d));
      expect(buf.subarray(0, n)).toEqual(Buffer.from([0x81, 0xa1, 0x64, ...uint(d)])); // standard msgpack: fixmap 1, fixstr "d", the smallest uint
      expect(readDeadlineHeader(withLength(buf.subarray(0, n)))).toBe(d);
      // msgpackr writes the map as map16: read by hand too
      expect(readDeadlineHeader(withLength(Buffer.from(helloCodec.encode({ d }))))).toBe(d);
    }
  });

  it('reads any other header as not its shape (-1): the general decoder takes it', () => {
    const others = [{ d: -1 }, { d: 1.5 }, { m: { a: 'b' } }, { d: 5, c: 3 }, { c: 5 }, { D: 5 }, {}];
    for (const header of others) expect(readDeadlineHeader(withLength(Buffer.from(helloCodec.encode(header))))).toBe(-1);
    // as uint64 (0xcf), a length that overruns the msg, a length that says more than the map
    expect(readDeadlineHeader(withLength(Buffer.from([0x81, 0xa1, 0x64, 0xcf, 0, 0, 0, 0, 0, 0, 0, 5])))).toBe(-1);
    expect(readDeadlineHeader(Buffer.from([9, 0, 0, 0, 0x81, 0xa1, 0x64, 5]))).toBe(-1);
    expect(readDeadlineHeader(Buffer.from([5, 0, 0, 0, 0x81, 0xa1, 0x64, 5, 0xc0]))).toBe(-1);
    expect(readDeadlineHeader(Buffer.from([4, 0, 0, 0, 0x81]))).toBe(-1);
    expect(readDeadlineHeader(withLength(Buffer.from([0xde, 0, 2, 0xa1, 0x64, 5, 0xa1, 0x63, 1])))).toBe(-1); // map16 of two entries
  });
});

describe('the frame a call without options goes out in', () => {
  /** The frames a RequestWriter writes, as one buffer. */
  function capture() {
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(Buffer.from(chunk));
        cb();
      },
    });
    const writer = new FrameWriter(sink);
    const out = new RequestWriter(writer, msgpackCodec, 7);
    return {
      out,
      frame: (): Buffer => {
        writer.flush();
        return Buffer.concat(chunks.splice(0));
      },
    };
  }
  const owner = { cancel() {}, handedOff: () => false };

  it('carries {d} between the action and the msg, flagged FORMAT_EXT_HEADER, to a FEATURE_DEADLINE peer; nothing to others or for events', () => {
    const { out, frame } = capture();
    const call = new Call(owner, CallKind.User, 'echo', 'hi', IGNORE, undefined);
    const now = systemClock.now();
    call.expiresAt = now + 20_000;
    out.request(call, 1, ALL_FEATURES, now + 1_500); // written 1.5 s after it was armed (it waited for a window slot)
    const f = frame();
    expect(f[3]).toBe(FORMAT_EXT_HEADER);
    const msg = f.subarray(REQUEST_HEADER_SIZE + 4, REQUEST_HEADER_SIZE + 4 + f.readUInt32LE(24));
    expect(readDeadlineHeader(msg)).toBe(18_500); // the time left when it is written, not when it was armed
    expect(msg.subarray(4 + msg.readUInt32LE(0))).toEqual(Buffer.from(msgpackCodec.encode('hi')));

    for (const features of [0, ALL_FEATURES & ~FEATURE_DEADLINE]) {
      out.request(call, 2, features, now);
      const plain = frame();
      expect(plain[3]).toBe(0);
      expect(plain.subarray(REQUEST_HEADER_SIZE + 4)).toEqual(Buffer.from(msgpackCodec.encode('hi')));
    }
    const event = new Call(owner, CallKind.Event, 'echo', 'hi', IGNORE, { event: true });
    out.request(event, 3, ALL_FEATURES, now);
    const e = frame();
    expect(e[3]).toBe(FORMAT_EVENT); // no caller waits for an event: no deadline
    expect(e.subarray(REQUEST_HEADER_SIZE + 4)).toEqual(Buffer.from(msgpackCodec.encode('hi')));
  });

  it("is read by the server's decoder once the peer negotiated the extensions: {d} taken off the msg, any other header left to the reader", () => {
    const { out, frame } = capture();
    const now = systemClock.now();
    const call = new Call(owner, CallKind.User, 'echo', 'hi', IGNORE, undefined);
    call.expiresAt = now + 20_000;
    const withMeta = new Call(owner, CallKind.User, 'echo', 'hi', IGNORE, { meta: { k: 1 } });
    withMeta.expiresAt = now + 20_000;
    out.request(call, 1, ALL_FEATURES, now);
    out.request(withMeta, 2, ALL_FEATURES, now);
    const bytes = frame();
    const seen: { seq: number; msg: Buffer; left: number }[] = [];
    const decoder = new RequestDecoder({ onRequest: (_f, _a, seq, _c, msg, _b, left) => void seen.push({ seq, msg: Buffer.from(msg), left }) });
    const hi = Buffer.from(msgpackCodec.encode('hi'));
    // a plain v1 peer's (the default): the msgs as sent, header and all
    expect(decoder.push(bytes)).toBeUndefined();
    expect(seen.map((r) => r.left)).toEqual([-1, -1]);
    expect(readDeadlineHeader(seen[0]!.msg)).toBe(20_000);
    expect(seen[1]!.msg.subarray(seen[1]!.msg.length - hi.length)).toEqual(hi);
    seen.length = 0;
    decoder.deadlines = true;
    // one byte at a time too: the body is assembled, then read the same way
    for (const chunk of [bytes, ...Array.from(bytes, (b) => Buffer.from([b]))]) expect(decoder.push(chunk)).toBeUndefined();
    expect(seen.map((r) => [r.seq, r.left])).toEqual([
      [1, 20_000],
      [2, -1],
      [1, 20_000],
      [2, -1],
    ]);
    for (const r of seen) {
      if (r.left >= 0) expect(r.msg).toEqual(hi);
      else expect(helloCodec.decode(r.msg.subarray(4, 4 + r.msg.readUInt32LE(0)))).toEqual({ m: { k: 1 }, d: 20_000 });
    }
  });
});

/** A handler that answers what the server knows of the request's deadline. */
const peek = (_v: unknown, req: ServerRequest) => ({ hasDeadline: req.deadline !== undefined, timeLeft: req.deadline === undefined ? null : req.timeLeft });
type Peek = { hasDeadline: boolean; timeLeft: number | null };

describe('the server gets the deadline of every call', () => {
  it("a call the server refused unrun because its deadline passed while it waited fails as the call's own timeout, whoever noticed first", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // one handler at a time (a static limit): the second call waits on the server, and its deadline passes there
    const ctx = await startServer({ hold: () => gate, echo: (v: unknown) => v }, { concurrencyLimit: 1, maxQueueWait: 10_000 });
    // the client's time moves only when the test says, and its own timers never fire: the server's refusal is what it gets
    const clock = new FakeClock(Date.now());
    const client = await ClientStream.connect(ctx.url, { clock });
    try {
      const first = client.request('hold', 1, { timeout: 5000 });
      await waitFor(() => ctx.server.stats.inFlight === 1);
      const second = client.request('echo', 2, { timeout: 200 }).catch((e: unknown) => e);
      clock.time += 250; // past its deadline here too, no timer run
      const err = (await second) as { code?: string; message?: string };
      const { expiredQueued, overloaded } = ctx.server.stats.ended;
      expect(expiredQueued + overloaded).toBe(1); // it never ran: the server refused it (rpc_overloaded on the wire)
      expect(err.code).toBe('rpc_timeout');
      expect(err.message).toContain('timed out after 200 ms');
      release();
      expect(await first).toBeUndefined();
    } finally {
      release();
      client.destroy();
      await ctx.server.close();
    }
  });

  it('under the default timeout (no per-call options), a per-call timeout, and with metadata too', async () => {
    const ctx = await startServer({ peek }, { concurrencyLimit: false });
    const client = await ClientStream.connect(ctx.url, { timeout: 5_000 });
    try {
      const byDefault = (await client.request('peek', null)) as Peek;
      expect(byDefault.hasDeadline).toBe(true);
      expect(byDefault.timeLeft).toBeGreaterThan(4_000);
      expect(byDefault.timeLeft).toBeLessThanOrEqual(5_000);
      const perCall = (await client.request('peek', null, { timeout: 2_000 })) as Peek;
      expect(perCall.timeLeft).toBeGreaterThan(1_000);
      expect(perCall.timeLeft).toBeLessThanOrEqual(2_000);
      const withMeta = (await client.request('peek', null, { meta: { tenant: 'acme' } })) as Peek;
      expect(withMeta.timeLeft).toBeGreaterThan(4_000);
      expect(withMeta.timeLeft).toBeLessThanOrEqual(5_000);
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  });

  it("a pool's call queued for a connection sends the time left of the whole call", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const ctx = await startServer({ peek, hold: () => held.then(() => 'done') }, { concurrencyLimit: false });
    const pool = new ClientPool(ctx.address, { timeout: 5_000, maxInFlight: 1, connections: 1, maxConnections: 1 });
    try {
      const first = pool.request('hold', null);
      await waitFor(() => ctx.server.stats.inFlight === 1);
      const queued = pool.request('peek', null) as Promise<Peek>;
      expect(pool.stats.queued).toBe(1);
      const t = Date.now();
      await waitFor(() => Date.now() > t + 500);
      release();
      expect(await first).toBe('done');
      const seen = await queued;
      expect(seen.timeLeft).toBeGreaterThan(3_000);
      expect(seen.timeLeft).toBeLessThanOrEqual(4_500); // it waited 500 ms of its 5 s
    } finally {
      pool.destroy();
      await ctx.server.destroy();
    }
  });

  it("a FailoverPool's retry on the next server sends the timeout it waits: a fresh one (README: each retry with a fresh timeout)", async () => {
    const a = await startServer(
      {
        peek: () => {
          setTimeout(() => void a.server.destroy(), 400); // the call fails with rpc_io_err after 400 ms, and moves on
          return new Promise(() => {});
        },
      },
      { concurrencyLimit: false },
    );
    const b = await startServer({ peek }, { concurrencyLimit: false });
    const pool = new FailoverPool([a.url, b.url], { timeout: 4_000, idempotent: true });
    try {
      const t0 = Date.now();
      const seen = (await pool.request('peek', null)) as Peek;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(400); // the first attempt failed after 400 ms
      expect(seen.hasDeadline).toBe(true);
      expect(seen.timeLeft).toBeGreaterThan(3_000);
      expect(seen.timeLeft).toBeLessThanOrEqual(4_000);
    } finally {
      pool.destroy();
      await a.server.destroy();
      await b.server.destroy();
    }
  });

  it('plain v1 connections and events carry none', async () => {
    const events: boolean[] = [];
    const ctx = await startServer({ peek, note: (_v: unknown, req: ServerRequest) => void events.push(req.deadline !== undefined) }, { concurrencyLimit: false });
    const v1 = await ClientStream.connect(ctx.url, { extensions: false, timeout: 5_000 });
    const client = await ClientStream.connect(ctx.url, { timeout: 5_000 });
    try {
      expect(v1.features).toBe(0);
      expect(await v1.request('peek', null)).toEqual({ hasDeadline: false, timeLeft: null });
      await client.request('note', null, { event: true });
      await waitFor(() => events.length === 1);
      expect(events).toEqual([false]);
    } finally {
      v1.destroy();
      client.destroy();
      await ctx.server.destroy();
    }
  });

  it("Nest: the OccamsClient's client-level timeout reaches the handler's OccamsContext with no per-call options", async () => {
    const ms = await startMicroservice(TestAppModule, { concurrencyLimit: false });
    const client = new OccamsClient({ port: ms.port, timeout: 4_000 });
    try {
      const seen = (await client.request('ctx', {})) as { timeLeft: number | null };
      expect(seen.timeLeft).toBeGreaterThan(3_000);
      expect(seen.timeLeft).toBeLessThanOrEqual(4_000);
    } finally {
      await client.close();
      await ms.app.close();
    }
  });
});
