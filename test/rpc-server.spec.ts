import type net from 'node:net';

import { ClientStream } from '../lib/client/client-stream.js';
import { msgpackCodec } from '../lib/codec/msgpack-codec.js';
import { encodeRequest } from '../lib/protocol/request-frame.js';
import { ResponseDecoder } from '../lib/protocol/response-decoder.js';
import { rawConnect, sleep, startServer, waitFor } from './support/servers.js';

/** Collects decoded responses from a raw socket. */
function collect(socket: net.Socket) {
  const responses: { flag: number; seq: number; value: unknown }[] = [];
  const decoder = new ResponseDecoder({
    onResponse: (flag, seq, _len, msg) => responses.push({ flag, seq, value: msg.length ? msgpackCodec.decode(msg) : undefined }),
  });
  socket.on('data', (c: Buffer) => decoder.push(c));
  return responses;
}

const closed = (s: net.Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));

/** A server (highWaterMark 256 KiB) whose `big` answers 64 KiB, counting the requests it ran. */
async function bigAnswers() {
  let dispatched = 0;
  const big = 'x'.repeat(64 * 1024);
  const ctx = await startServer({ big: () => (dispatched++, big) }, { highWaterMark: 256 * 1024 });
  return { ctx, dispatched: () => dispatched };
}

describe('RpcServer with raw peers', () => {
  it('decodes requests that arrive one byte at a time', async () => {
    const ctx = await startServer({ echo: (v: unknown) => v });
    const raw = await rawConnect(ctx.address.port);
    const responses = collect(raw);
    const frames = Buffer.concat([
      encodeRequest({ action: 'echo', seq: 1, msg: Buffer.from(msgpackCodec.encode({ hello: 'byte by byte' })) }),
      encodeRequest({ action: 0, seq: 2 }),
    ]);
    for (let i = 0; i < frames.length; i++) {
      raw.write(frames.subarray(i, i + 1));
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => responses.length === 2);
    expect(responses).toEqual([
      { flag: 0, seq: 1, value: { hello: 'byte by byte' } },
      { flag: 0, seq: 2, value: undefined },
    ]);
    raw.destroy();
    await ctx.server.destroy();
  });

  it('a bad header closes only that connection, with a logged reason', async () => {
    const ctx = await startServer({ echo: (v: unknown) => v }, { readTimeout: 300 });
    const good = await ClientStream.connect(ctx.url);
    const bad = await rawConnect(ctx.address.port);
    bad.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n-----'));
    await closed(bad);
    expect(ctx.logger.lines.some((l) => /closing connection .*bad magic/.test(l))).toBe(true);
    const oversize = await rawConnect(ctx.address.port);
    const header = encodeRequest({ action: 'echo', seq: 1 });
    header.writeUInt32LE(0xffff_fff0, 24); // msg_len near 4 GiB: refused alone, its body read past; it never comes
    oversize.on('data', () => {}); // its answer (rpc_decode), then the end
    oversize.write(header);
    await closed(oversize); // the read timeout, mid-frame
    expect(ctx.logger.lines.some((l) => /refusing request 1 of \d+ bytes, past maxFrameSize/.test(l))).toBe(true);
    expect(await good.request('echo', 'still served')).toBe('still served');
    good.destroy();
    await ctx.server.destroy();
  });

  it('closes a connection that sends half a frame and stalls (read timeout)', async () => {
    const ctx = await startServer({ echo: (v: unknown) => v }, { readTimeout: 100 });
    const raw = await rawConnect(ctx.address.port);
    raw.write(encodeRequest({ action: 'echo', seq: 1 }).subarray(0, 10));
    await closed(raw);
    expect(ctx.logger.lines.some((l) => /read timeout/.test(l))).toBe(true);
    await ctx.server.destroy();
  });

  it('stops reading from a peer that does not read its responses, then catches up', async () => {
    const { ctx, dispatched } = await bigAnswers();
    const raw = await rawConnect(ctx.address.port);
    raw.pause(); // never read
    const n = 2000; // 2000 x 64 KiB = 125 MiB of responses
    const frames = Buffer.concat(Array.from({ length: n }, (_, i) => encodeRequest({ action: 'big', seq: i + 1, msg: Buffer.from([0xc0]) })));
    raw.write(frames);
    await sleep(300);
    const conn = [...(ctx.server as unknown as { connections: Set<{ stats: { writeBuffer: number } }> }).connections][0]!;
    expect(dispatched()).toBeLessThan(n);
    expect(conn.stats.writeBuffer).toBeLessThan(16 * 1024 * 1024);
    // now read everything: every request gets its answer
    let count = 0;
    const decoder = new ResponseDecoder({ onResponse: () => count++ });
    raw.on('data', (c: Buffer) => decoder.push(c));
    raw.resume();
    await waitFor(() => count === n, 15_000);
    expect(dispatched()).toBe(n);
    raw.destroy();
    await ctx.server.destroy();
  });

  it('while its writes are backed up, holds about highWaterMark bytes of requests, not maxQueuedBytes, then catches up', async () => {
    // requests of 16 KiB each: held decoded until the socket drains, so the
    // bytes held are bounded like the bytes waiting to be written (issue 29)
    const { ctx, dispatched } = await bigAnswers();
    const raw = await rawConnect(ctx.address.port);
    raw.pause(); // reads nothing until asked
    const n = 600; // 600 x 16 KiB = 9.4 MiB of requests (under maxQueuedBytes, 32 MiB), 37.5 MiB of answers
    const msg = Buffer.from(msgpackCodec.encode('r'.repeat(16 * 1024)));
    raw.write(Buffer.concat(Array.from({ length: n }, (_, i) => encodeRequest({ action: 'big', seq: i + 1, msg }))));
    await waitFor(() => ctx.server.stats.queued > 0, 5000);
    await sleep(300); // time to read on, if it would
    const held = ctx.server.stats.queued;
    expect(held).toBeGreaterThan(0);
    // 256 KiB / (16 KiB + overhead) = 15 requests, then reading stops (a chunk's frames may add a few)
    expect(held).toBeLessThanOrEqual(20);
    expect(dispatched() + held).toBeLessThan(n);
    let count = 0;
    const decoder = new ResponseDecoder({ onResponse: (flag) => (count += flag === 0 ? 1 : 1000) });
    raw.on('data', (c: Buffer) => decoder.push(c));
    raw.resume();
    await waitFor(() => count >= n, 15_000);
    expect(count).toBe(n); // every one answered, none refused
    expect(dispatched()).toBe(n);
    raw.destroy();
    await ctx.server.destroy();
  });

  it('refuses connections past maxConnections', async () => {
    const ctx = await startServer({ echo: (v: unknown) => v }, { maxConnections: 1 });
    const first = await ClientStream.connect(ctx.url);
    await expect(ClientStream.connect(ctx.url, { connectTimeout: 2000 })).rejects.toMatchObject({ code: 'rpc_unreachable' });
    expect(await first.request('echo', 1)).toBe(1);
    expect(ctx.logger.lines.some((l) => /maxConnections/.test(l))).toBe(true);
    first.destroy();
    await ctx.server.destroy();
  });
});

describe('what a handler sees of its connection', () => {
  it('a read-only view: who and where the client is, never the connection object', async () => {
    const seen: unknown[] = [];
    const ctx = await startServer({
      who: (_v: unknown, req) => {
        const c = req.connection as unknown as Record<string, unknown>;
        let assigned = 'no';
        try {
          (c as { id: number }).id = 99;
          assigned = 'yes';
        } catch {
          /* a getter only: strict mode throws */
        }
        seen.push({
          keys: ['destroy', 'socket', 'out', 'kill', 'release', 'options'].filter((k) => k in c),
          assigned,
          text: String(c),
        });
        return {
          id: req.connection.id,
          address: req.connection.remoteAddress,
          peer: req.connection.peer.text,
          features: req.connection.features,
          state: req.connection.state,
          clientId: req.connection.clientId,
        };
      },
    });
    const client = await ClientStream.connect(ctx.url);
    try {
      const got = (await client.request('who', null)) as { id: number; address: string; peer: string; features: number; state: string };
      expect(got.address).toBe('127.0.0.1');
      expect(got.peer).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(got.id).toBeGreaterThan(0);
      expect(got.features).toBeGreaterThan(0); // a ClientStream negotiates the extensions
      expect(got.state).toBe('open');
      expect(seen).toEqual([{ keys: [], assigned: 'no', text: expect.stringMatching(/^connection #\d+ 127\.0\.0\.1:\d+$/) }]);
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  });
});
