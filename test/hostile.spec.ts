import net from 'node:net';

import fc from 'fast-check';

import { ClientPool } from '../lib/client/client-pool.js';
import { ClientStream } from '../lib/client/client-stream.js';
import { msgpackCodec } from '../lib/codec/msgpack-codec.js';
import type { OccamsError } from '../lib/errors.js';
import { RequestDecoder } from '../lib/protocol/request-decoder.js';
import { encodeRequest } from '../lib/protocol/request-frame.js';
import { encodeResponse } from '../lib/protocol/response-frame.js';
import { FakeClock } from './support/fake-clock.js';
import { rawConnect, sleep, startServer, waitFor } from './support/servers.js';

type Misbehaviour = (socket: net.Socket, seq: number, action: number | string) => void;

/**
 * A scriptable fake server: connection i behaves per `script[i]` (the last
 * entry repeats). `undefined` = a sane echo server. It never answers HELLO
 * unless sane, so clients speak plain v1 to it; it answers every PING.
 */
async function fakeServer(script: (Misbehaviour | undefined)[]) {
  let index = 0;
  const server = net.createServer((socket) => {
    const behave = script[Math.min(index++, script.length - 1)];
    const decoder = new RequestDecoder({
      onRequest: (_format, action, seq, _client, msg) => {
        // pings (the client proves a v1 server alive with one) are answered sanely
        if (action === 0) return void socket.write(encodeResponse({ seq }));
        if (behave) return behave(socket, seq, action);
        if (typeof action === 'number') return void socket.write(encodeResponse({ flag: 2, seq, blob: Buffer.from('rpc_method_notfound') }));
        socket.write(encodeResponse({ seq, msg: msg.length ? Buffer.from(msg) : undefined }));
      },
    });
    socket.on('data', (c: Buffer) => decoder.push(c));
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port };
}

const settleAll = (ps: Promise<unknown>[]) =>
  Promise.all(
    ps.map((p) =>
      p.then(
        () => 'ok',
        (e: OccamsError) => e.code,
      ),
    ),
  );

describe('client against a hostile server', () => {
  const cases: [string, Misbehaviour, RegExp][] = [
    ['garbage bytes', (s) => s.write(Buffer.from('HTTP/1.1 200 OK\r\n\r\nhello world, this is not occams')), /bad magic/],
    ['a response for a seq never sent', (s, seq) => s.write(encodeResponse({ seq: seq + 1000, msg: Buffer.from([1]) })), /never sent/],
    ['duplicate responses', (s, seq) => s.write(Buffer.concat([encodeResponse({ seq, msg: Buffer.from([1]) }), encodeResponse({ seq, msg: Buffer.from([1]) })])), /duplicate/],
    [
      'an oversized frame',
      (s, seq) => {
        const h = encodeResponse({ seq });
        h.writeUInt32LE(64 * 1024 * 1024, 4);
        s.write(h);
      },
      /exceeds maxFrameSize/,
    ],
    ['an extension flag to a v1 client', (s, seq) => s.write(encodeResponse({ flag: 3, seq, msg: Buffer.from([1]) })), /unknown response flag/],
  ];

  for (const [name, behave, reason] of cases) {
    it(`closes the connection on ${name} and settles every pending call with a coded error`, async () => {
      const fake = await fakeServer([behave]);
      const client = await ClientStream.connect({ host: '127.0.0.1', port: fake.port }, { extensions: false });
      const closed = new Promise<Error | undefined>((r) => client.once('close', r));
      const outcomes = await settleAll(Array.from({ length: 5 }, (_, i) => client.request('x', i)));
      const err = await closed;
      expect(client.state).toBe('closed');
      expect(err?.message).toMatch(reason);
      // the first call may have been answered before the violation; the rest fail, with a code
      expect(outcomes.filter((o) => o !== 'ok').length).toBeGreaterThanOrEqual(4);
      for (const o of outcomes) expect(['ok', 'rpc_io_err']).toContain(o);
      fake.server.close();
    });
  }

  it('a pool reconnects after a connection that misbehaved', async () => {
    const fake = await fakeServer([(s) => s.write(Buffer.from('garbage garbage garbage garbage!')), undefined]);
    const pool = new ClientPool({ host: '127.0.0.1', port: fake.port }, { extensions: false, backoff: { initial: 20 } });
    const first = await pool.request('x', 1).then(
      () => 'ok',
      (e: OccamsError) => e.code,
    );
    expect(first).toBe('rpc_io_err');
    await waitFor(() => pool.state === 'ready' && pool.stats.connections === 1, 3000);
    expect(await pool.request('x', 'sane now')).toBe('sane now');
    pool.destroy();
    fake.server.close();
  });

  it('drops a late answer to a timed-out call without closing (the client on a fake clock)', async () => {
    let answerLate: (() => void) | undefined;
    const fake = await fakeServer([
      (s, seq, action) => {
        const answer = () => s.write(encodeResponse({ seq, msg: Buffer.from(msgpackCodec.encode(action === 'x' ? 'late' : 'on time')) }));
        if (action === 'x') answerLate = answer;
        else answer();
      },
    ]);
    const clock = new FakeClock();
    const client = await ClientStream.connect({ host: '127.0.0.1', port: fake.port }, { extensions: false, timerResolution: 20, clock });
    const timedOut = client.request('x', 1, { timeout: 50 }).catch((e: OccamsError) => e);
    await waitFor(() => answerLate !== undefined, 2000); // the server holds it
    clock.advance(60);
    expect(await timedOut).toMatchObject({ code: 'rpc_timeout' });
    answerLate!(); // the answer comes after the call gave up: dropped
    expect(await client.request('y', 2)).toBe('on time'); // answered after the late one, on the same socket
    expect(client.state).toBe('ready');
    client.destroy();
    fake.server.close();
  });
});

describe('server under hostile input (short fuzz)', () => {
  it('keeps serving valid traffic while random and malformed connections come and go', async () => {
    const maxFrameSize = 64 * 1024;
    const ctx = await startServer({ echo: (v: unknown) => v }, { maxFrameSize, readTimeout: 200 });
    const good = await ClientStream.connect(ctx.url);
    let goodOk = 0;
    let stop = false;
    const traffic = (async () => {
      for (let i = 0; !stop && i < 1_000_000; i++) {
        expect(await good.request('echo', i)).toBe(i);
        goodOk++;
        if (i % 50 === 0) await sleep(1);
      }
    })();

    const header = (over: Partial<Record<'magic' | 'ver' | 'action' | 'msgLen' | 'blobLen', number>>) => {
      const h = encodeRequest({ action: 'echo', seq: 1 }).subarray(0, 32);
      if (over.magic !== undefined) h.writeUInt16LE(over.magic, 0);
      if (over.ver !== undefined) h[2] = over.ver;
      if (over.action !== undefined) h.writeUInt32LE(over.action >>> 0, 4);
      if (over.msgLen !== undefined) h.writeUInt32LE(over.msgLen >>> 0, 24);
      if (over.blobLen !== undefined) h.writeUInt32LE(over.blobLen >>> 0, 28);
      return Buffer.from(h);
    };
    const hostile = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 512 }).map((b) => ({ kind: 'random', bytes: Buffer.from(b) })),
      fc.integer({ min: 1, max: 31 }).map((n) => ({ kind: 'truncated', bytes: encodeRequest({ action: 'echo', seq: 1 }).subarray(0, n) })),
      fc
        .integer({ min: 0, max: 0xffff })
        .filter((m) => m !== 19749)
        .map((m) => ({ kind: 'magic', bytes: header({ magic: m }) })),
      fc
        .integer({ min: 0, max: 255 })
        .filter((v) => v !== 1)
        .map((v) => ({ kind: 'version', bytes: header({ ver: v }) })),
      fc.integer({ min: 1, max: 1000 }).map((n) => ({ kind: 'over-limit', bytes: header({ action: 0, msgLen: maxFrameSize - 32 + n }) })),
      fc.constant({ kind: 'absurd-action', bytes: header({ action: 0xffffffff }) }),
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((body) => ({
        kind: 'random-msgpack',
        bytes: encodeRequest({ action: 'echo', seq: 1, msg: body }),
      })),
    );
    const samples = fc.sample(hostile, { numRuns: 120, seed: 42 });
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < samples.length; i += 12) {
      await Promise.all(
        samples.slice(i, i + 12).map(async ({ bytes }) => {
          const s = await rawConnect(ctx.address.port);
          s.on('error', () => {});
          s.on('data', () => {});
          s.write(bytes);
          // every such connection is closed by the server (violation, read
          // timeout) or answered; we end the rest ourselves after a moment
          await Promise.race([new Promise((r) => s.once('close', r)), sleep(400)]);
          s.destroy();
        }),
      );
    }
    stop = true;
    await traffic;
    expect(goodOk).toBeGreaterThan(100);
    await waitFor(() => ctx.server.stats.connections === 1, 3000); // only the good client is left
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    const reasons = ctx.logger.lines.filter((l) => l.includes('closing connection'));
    expect(reasons.length).toBeGreaterThan(20);
    for (const r of reasons) expect(r).toMatch(/\[rpc_[a-z_]+\]|read timeout/);
    good.destroy();
    await ctx.server.destroy();
  });

  it('disconnects a peer that never reads once writes stall past writeTimeout', async () => {
    const big = 'y'.repeat(256 * 1024);
    const ctx = await startServer({ big: () => big }, { highWaterMark: 64 * 1024, writeTimeout: 300 });
    const other = await ClientStream.connect(ctx.url);
    const raw = await rawConnect(ctx.address.port);
    raw.pause();
    raw.write(Buffer.concat(Array.from({ length: 200 }, (_, i) => encodeRequest({ action: 'big', seq: i + 1, msg: Buffer.from([0xc0]) }))));
    // (a paused socket does not notice being closed: watch the server side)
    await waitFor(() => ctx.logger.lines.some((l) => /write timeout/.test(l)), 5000);
    await waitFor(() => ctx.server.stats.connections === 1, 2000);
    raw.destroy();
    expect((await other.request('big', null)) as string).toHaveLength(big.length);
    other.destroy();
    await ctx.server.destroy();
  });
});
