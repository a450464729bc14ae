// The process's one read buffer (lib/codec/read-buffer.ts, lib/transport/socket-reads.ts): plain TCP and Unix
// connections read into it on Node, so every byte anything keeps past a read must have been copied out of it.
// These tests keep what they are handed (decoded bins, blobs, a custom codec's views, a paused connection's
// unread frames) while other connections' reads write over the buffer, then check every byte.
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { type CallHandle, ClientStream } from '../lib/client/index.js';
import type { Codec } from '../lib/codec/codec.js';
import { MsgpackCodec } from '../lib/codec/msgpack-codec.js';
import { isReadBuffer, READ_BUFFER_SIZE, readBuffer } from '../lib/codec/read-buffer.js';
import { RpcServer } from '../lib/server/rpc-server.js';
import type { ServerConnection } from '../lib/server/server-connection.js';
import type { ServerRequest } from '../lib/server/server-request.js';
import { readSocket } from '../lib/transport/socket-reads.js';
import { FakeClock } from './support/fake-clock.js';
import { MemoryLogger, startServer, waitFor } from './support/servers.js';

const isNode = !('bun' in process.versions) && !('deno' in process.versions);

/** A Buffer of `size` bytes, every byte `fill`: a wrong byte anywhere shows another value's bytes. */
const filled = (size: number, fill: number) => Buffer.alloc(size, fill);
const intact = (b: Uint8Array, size: number, fill: number) => b.length === size && b.every((x) => x === fill);

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('the shared read buffer', () => {
  it.runIf(isNode)('TCP and Unix sockets read into it; chunks are views of it', async () => {
    for (const where of ['tcp', 'unix'] as const) {
      const file = path.join(os.tmpdir(), `occams-rb-${process.pid}-${Date.now()}.sock`);
      const server = net.createServer((s) => {
        s.write(filled(1000, 7));
        s.end();
      });
      await new Promise<void>((r) => (where === 'tcp' ? server.listen(0, '127.0.0.1', r) : server.listen(file, r)));
      const port = (server.address() as net.AddressInfo).port;
      const socket = where === 'tcp' ? net.connect(port, '127.0.0.1') : net.connect(file);
      await new Promise((r) => socket.once('connect', r));
      const seen: boolean[] = [];
      let bytes = 0;
      expect(readSocket(socket, (chunk) => void (seen.push(isReadBuffer(chunk)), (bytes += chunk.length)))).toBe(true);
      await new Promise((r) => socket.once('end', r));
      expect(bytes).toBe(1000);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every(Boolean)).toBe(true);
      expect(readBuffer().every((b) => b === 0)).toBe(true); // zeroed once read: no connection's bytes stay for the next
      socket.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it.runIf(isNode)("paused, a socket reading into it still sees its peer's FIN; told to stop (it holds bytes), it reads nothing more, FIN included, until resumed", async () => {
    const peers: net.Socket[] = [];
    const server = net.createServer((s) => peers.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const port = (server.address() as net.AddressInfo).port;
    const connect = async (hold: () => boolean) => {
      const socket = net.connect(port, '127.0.0.1');
      cleanups.push(() => socket.destroy());
      await new Promise((r) => socket.once('connect', r));
      const events: string[] = [];
      readSocket(socket, (chunk) => {
        events.push(`data ${chunk[0]}`);
        return !hold();
      });
      socket.on('end', () => events.push('end'));
      await waitFor(() => peers.length > 0 && peers.at(-1)!.remotePort === socket.localPort);
      return { socket, events, peer: peers.at(-1)! };
    };
    // paused, holding nothing: bytes still come in (as 'data' would buffer them) and a FIN is seen
    const idle = await connect(() => false);
    idle.socket.pause();
    idle.peer.write(filled(10, 1));
    await waitFor(() => idle.events.length === 1);
    idle.peer.end();
    await waitFor(() => idle.events.includes('end'));
    expect(idle.events).toEqual(['data 1', 'end']);
    // told to stop: nothing more is read until resume, and then in order
    let holding = true;
    const held = await connect(() => holding);
    held.socket.pause();
    held.peer.write(filled(10, 1));
    await waitFor(() => held.events.length === 1);
    held.peer.write(filled(10, 2));
    held.peer.end();
    await new Promise((r) => setTimeout(r, 100));
    expect(held.events).toEqual(['data 1']);
    holding = false;
    held.socket.resume();
    await waitFor(() => held.events.includes('end'));
    expect(held.events).toEqual(['data 1', 'data 2', 'end']);
  });

  it('TLS and OCCAMS_READ_BUFFER=0 keep the data event', async () => {
    const server = net.createServer((s) => s.end('x'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    process.env.OCCAMS_READ_BUFFER = '0';
    try {
      const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
      cleanups.push(() => socket.destroy());
      await new Promise((r) => socket.once('connect', r));
      let got = '';
      expect(readSocket(socket, (chunk) => void (got += chunk.toString()))).toBe(false);
      await waitFor(() => got === 'x');
    } finally {
      delete process.env.OCCAMS_READ_BUFFER;
    }
    const fake = Object.assign(new net.Socket(), { encrypted: true });
    expect(readSocket(fake, () => undefined)).toBe(false);
    expect(fake.listenerCount('data')).toBe(1);
  });
});

describe('nothing kept refers to the read buffer', () => {
  // sizes around the codec's paths: decoded from its scratch copy (<= 4 KiB), in place (larger), and frames
  // that fill most of a read or span several
  const SIZES = [100, 3_000, 6_000, 20_000, 50_000, READ_BUFFER_SIZE + 5_000];

  for (const records of [true, false]) {
    it(`bins decoded and kept by both ends stay intact while other connections read (${records ? 'record session' : 'plain msgpack'})`, async () => {
      const keptByServer: { b: Buffer; size: number; fill: number }[] = [];
      const ctx = await startServer(
        {
          keep: (v: { b: Buffer; size: number; fill: number }) => {
            keptByServer.push(v);
            return { b: filled(v.size, (v.fill + 1) & 0xff), size: v.size, fill: (v.fill + 1) & 0xff };
          },
        },
        { concurrencyLimit: false, codec: new MsgpackCodec({ records }) },
      );
      cleanups.push(() => ctx.server.close());
      const a = await ClientStream.connect(ctx.url, { timeout: 20_000, codec: new MsgpackCodec({ records }) });
      const b = await ClientStream.connect(ctx.url, { timeout: 20_000, codec: new MsgpackCodec({ records }) });
      cleanups.push(
        () => a.destroy(),
        () => b.destroy(),
      );
      const keptByClient: { b: Buffer; size: number; fill: number }[] = [];
      let fill = 0;
      for (let round = 0; round < 4; round++) {
        // both connections at once, pipelined: frames of one read follow each other in the buffer, and the
        // other connection's reads write over it in between
        const calls = SIZES.flatMap((size) =>
          [a, b].map((c) => {
            fill = (fill + 2) & 0xff;
            return c.request('keep', { b: filled(size, fill), size, fill }) as Promise<{ b: Buffer; size: number; fill: number }>;
          }),
        );
        keptByClient.push(...(await Promise.all(calls)));
      }
      expect(keptByServer).toHaveLength(4 * 2 * SIZES.length);
      for (const v of keptByServer) expect(intact(v.b, v.size, v.fill)).toBe(true);
      for (const v of keptByClient) expect(intact(v.b, v.size, v.fill)).toBe(true);
    });
  }

  it('blobs handed to a handler and to a caller stay intact', async () => {
    const keptByServer: { blob: Buffer; fill: number }[] = [];
    const server = new RpcServer(
      {
        dispatch: (req: ServerRequest) => {
          const fill = req.msg as number;
          keptByServer.push({ blob: req.blob, fill });
          req.ok(fill, filled(req.blob.length, (fill + 1) & 0xff));
        },
      },
      { logger: new MemoryLogger(), concurrencyLimit: false },
    );
    const { port } = (await server.listen()) as { port: number };
    cleanups.push(() => server.close());
    const clients = await Promise.all([0, 1].map(() => ClientStream.connect(`127.0.0.1:${port}`, { timeout: 20_000 })));
    cleanups.push(...clients.map((c) => () => c.destroy()));
    const keptByClient: { blob: Buffer; fill: number }[] = [];
    const handles: Promise<void>[] = [];
    let fill = 0;
    for (let round = 0; round < 4; round++) {
      for (const size of [10, 5_000, 30_000]) {
        for (const c of clients) {
          fill = (fill + 2) & 0xff;
          const f = fill;
          handles.push(
            new Promise<void>((resolve, reject) => {
              const h: CallHandle = c.call(
                'blob',
                f,
                { onResult: (_v, blob) => (keptByClient.push({ blob, fill: (f + 1) & 0xff }), resolve()), onError: reject },
                { blob: filled(size, f) },
              );
              expect(h).toBeDefined();
            }),
          );
        }
      }
    }
    await Promise.all(handles);
    expect(keptByServer).toHaveLength(24);
    for (const { blob, fill: f } of [...keptByServer, ...keptByClient]) expect(blob.every((x) => x === f) && blob.length > 0).toBe(true);
  });

  it("an application's codec that keeps views of its input is handed bytes of its own", async () => {
    // a codec whose decoded value is its input itself (a zero-copy codec may do that: the contract allows it)
    const viewCodec: Codec = { name: 'view', encode: (v) => v as Uint8Array, decode: (bytes) => bytes };
    const kept: Uint8Array[] = [];
    const ctx = await startServer(
      {
        keep: (v: Uint8Array) => {
          kept.push(v);
          return v;
        },
      },
      { concurrencyLimit: false, codec: viewCodec },
    );
    cleanups.push(() => ctx.server.close());
    const clients = await Promise.all([0, 1].map(() => ClientStream.connect(ctx.url, { timeout: 20_000, codec: viewCodec })));
    cleanups.push(...clients.map((c) => () => c.destroy()));
    const answers: { v: Uint8Array; fill: number }[] = [];
    let fill = 0;
    for (let round = 0; round < 4; round++) {
      const calls = [100, 8_000, 30_000].flatMap((size) =>
        clients.map((c) => {
          fill = (fill + 1) & 0xff;
          const f = fill;
          return (c.request('keep', filled(size, f)) as Promise<Uint8Array>).then((v) => answers.push({ v, fill: f }));
        }),
      );
      await Promise.all(calls);
    }
    expect(kept).toHaveLength(24);
    for (const v of kept) expect(v.every((x) => x === v[0])).toBe(true);
    // each copy in memory of its own: a view's .buffer reaches no other bytes (Node's pool would hold others')
    for (const v of kept) expect(v.buffer.byteLength).toBe(v.length);
    for (const { v, fill: f } of answers) expect(v.every((x) => x === f)).toBe(true);
  });

  it("a connection paused mid-read (its slice of the loop spent) decodes the frames it held back as they were sent, while another connection's reads fill the buffer", async () => {
    const ctx = await startServer({ echo: (v: unknown) => v }, { concurrencyLimit: false });
    cleanups.push(() => ctx.server.close());
    const flood = await ClientStream.connect(ctx.url, { timeout: 30_000, maxInFlight: 20_000, maxQueued: 20_000 });
    const other = await ClientStream.connect(ctx.url, { timeout: 30_000 });
    cleanups.push(
      () => flood.destroy(),
      () => other.destroy(),
    );
    // many small frames per read from `flood` (the server sits it out every 2 ms while `other` reads): the rest
    // of each chunk waits in the decoder while `other`'s bytes are read into the same buffer
    const values = Array.from({ length: 20_000 }, (_, i) => ({ i, s: String.fromCharCode(97 + (i % 26)).repeat(40 + (i % 50)) }));
    let stop = false;
    const background = (async () => {
      let n = 0;
      for (let i = 0; i < 2_000 && !stop; i++) {
        const v = { other: i, pad: 'z'.repeat(300) };
        expect(await other.request('echo', v)).toEqual(v);
        n++;
      }
      return n;
    })();
    const answers = await Promise.all(values.map((v) => flood.request('echo', v)));
    stop = true;
    expect(await background).toBeGreaterThan(0);
    expect(answers).toEqual(values);
  });

  it('frames that arrive while a connection is paced (paused between chunks) are decoded as sent, after other connections have read', async () => {
    // newKeyRate on a fake clock: the 6th request of 100 new names each takes the budget below zero, and the
    // connection stops reading after it, at the end of its chunk; what it sends next waits in the decoder
    const clock = new FakeClock();
    const ctx = await startServer({ echo: (v: unknown) => v }, { newKeyRate: 500, concurrencyLimit: false, clock });
    cleanups.push(() => ctx.server.close());
    const conns: ServerConnection[] = [];
    ctx.server.on('connection', (c: ServerConnection) => conns.push(c));
    const greedy = await ClientStream.connect(ctx.url, { timeout: 20_000, maxInFlight: 100, maxQueued: 100 });
    const steady = await ClientStream.connect(ctx.url, { timeout: 20_000 });
    cleanups.push(
      () => greedy.destroy(),
      () => steady.destroy(),
    );
    const shape = (tag: string) => Object.fromEntries(Array.from({ length: 100 }, (_, k) => [`${tag}_${k}`, k]));
    for (let i = 0; i < 6; i++) {
      const v = shape(`g${i}`);
      expect(await greedy.request('echo', v)).toEqual(v); // one chunk each
    }
    const late = [shape('late'), { s: 'q'.repeat(2_000) }];
    const answers = late.map((v) => greedy.request('echo', v));
    await new Promise((r) => setTimeout(r, 50)); // (arrived, held: not answered while paced)
    // and it stops reading: 4 MiB more sent, a little of it read (as a paused 'data' socket fills its buffer, then stops)
    const read = (conns[0] as unknown as { socket: net.Socket }).socket;
    const readBefore = read.bytesRead;
    const bulk = Array.from({ length: 40 }, (_, i) => ({ i, s: 'b'.repeat(100_000) }));
    const bulkAnswers = bulk.map((v) => greedy.request('echo', v));
    await new Promise((r) => setTimeout(r, 200));
    expect(read.bytesRead - readBefore).toBeLessThan(512 * 1024);
    for (let i = 0; i < 20; i++) {
      const v = { s: String(i % 10).repeat(8_000 + i) };
      expect(await steady.request('echo', v)).toEqual(v); // reads over the buffer
    }
    clock.advance(2_000);
    expect(await Promise.all(answers)).toEqual(late);
    expect(await Promise.all(bulkAnswers)).toEqual(bulk);
  });
});
