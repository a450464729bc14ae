/**
 * Flow-controlled streams: a producer slows to what the socket and the
 * consumer take; a stream that outruns its buffer fails alone; a peer is
 * cut only when nothing drains for writeTimeout, never for volume.
 */
import 'reflect-metadata';

import net from 'node:net';

import { Controller, type INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import { interval, map, type Observable, range } from 'rxjs';

import { ClientStream } from '../lib/client/client-stream.js';
import { streamCall } from '../lib/client/stream-iterator.js';
import { msgpackCodec } from '../lib/codec/msgpack-codec.js';
import type { OccamsError } from '../lib/errors.js';
import { OccamsClient, OccamsServer, type RpcServer, type TcpAddress } from '../lib/index.js';
import { encodeRequest } from '../lib/protocol/request-frame.js';
import { ResponseDecoder } from '../lib/protocol/response-decoder.js';
import { lifecycleServer, message } from './support/processes.js';
import { rawConnect, sleep, startServer, waitFor } from './support/servers.js';

const KiB = 1024;

/** An endless generator of `size`-byte buffers that counts what it produced and whether it was stopped. */
function producer(size = KiB) {
  const state = { produced: 0, stopped: false };
  async function* gen(): AsyncGenerator<Buffer> {
    const chunk = Buffer.alloc(size, 1);
    try {
      for (let i = 0; i < 10_000_000; i++) {
        state.produced++;
        yield chunk;
      }
    } finally {
      state.stopped = true;
    }
  }
  return { state, gen };
}

describe('flow-controlled streams (separate server process)', () => {
  it('8 concurrent streams of 100,000 x 1 KiB all complete; the server peak RSS stays under 200 MiB', async () => {
    const { child, port } = await lifecycleServer('nest');
    const clients = await Promise.all(Array.from({ length: 8 }, () => ClientStream.connect({ host: '127.0.0.1', port })));
    try {
      const counts = await Promise.all(
        clients.map(async (c, i) => {
          let n = 0;
          let bytes = 0;
          if (i % 2 === 0) {
            // an async iterator granting credit as it consumes
            for await (const v of streamCall<Buffer>(c, 'blobs', [100_000, KiB], { timeout: 60_000 })) {
              n++;
              bytes += v.length;
            }
          } else {
            // a plain handler taking each item as it comes (credit renewed as items arrive)
            await new Promise((resolve, reject) =>
              c.call('blobs', [100_000, KiB], { onItem: (v) => (n++, (bytes += (v as Buffer).length)), onResult: resolve, onError: reject }, { timeout: 60_000 }),
            );
          }
          return [n, bytes];
        }),
      );
      expect(counts).toEqual(Array.from({ length: 8 }, () => [100_000, 100_000 * KiB]));
      child.send('stats');
      const { rssMiB, stats } = await message<{ rssMiB: number; stats: RpcServer['stats'] }>(child, 'stats');
      expect(rssMiB).toBeLessThan(200);
      expect(stats.ended.overflowed).toBe(0);
    } finally {
      for (const c of clients) c.destroy();
      child.kill('SIGKILL');
    }
  }, 60_000);
});

describe('an AsyncIterable paced by its consumer', () => {
  it('a consumer taking 1 item per ms keeps the producer within its credit, and the server buffers under it', async () => {
    const p = producer(KiB);
    const ctx = await startServer({ stream: () => p.gen() });
    const client = await ClientStream.connect(ctx.url);
    const window = 16;
    let maxAhead = 0;
    let maxServerBuffered = 0;
    try {
      const it = streamCall<Buffer>(client, 'stream', null, { window });
      for (let consumed = 1; consumed <= 300; consumed++) {
        const r = await it.next();
        expect(r.done).toBe(false);
        await sleep(1);
        maxAhead = Math.max(maxAhead, p.state.produced - consumed);
        const s = ctx.server.stats;
        const conn = [...(ctx.server as unknown as { connections: Set<{ stats: { writeBuffer: number; streamBuffer: number } }> }).connections][0]!;
        maxServerBuffered = Math.max(maxServerBuffered, conn.stats.writeBuffer + s.streamBuffer);
        expect(it.buffered).toBeLessThanOrEqual(window);
      }
      // the producer ran at most a window (plus the item being produced) ahead of the consumer
      expect(maxAhead).toBeLessThanOrEqual(window + 1);
      expect(maxServerBuffered).toBeLessThanOrEqual(window * (KiB + 64));
      await it.return();
      await waitFor(() => p.state.stopped && ctx.server.stats.inFlight === 0, 2000);
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  });

  it('a client that stops reading one stream does not disturb the other calls on its connection', async () => {
    const p = producer(KiB);
    const ctx = await startServer({ stream: () => p.gen(), echo: (v: unknown) => v });
    const client = await ClientStream.connect(ctx.url);
    try {
      const window = 8;
      const stalled = streamCall<Buffer>(client, 'stream', null, { window, timeout: 10_000 });
      for (let i = 0; i < 3; i++) await stalled.next();
      await sleep(50);
      // documented bound: the stalled stream holds one slot, `window` items on the client, nothing queued on the server
      expect(p.state.produced).toBeLessThanOrEqual(3 + window + 1);
      const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => client.request('echo', i, { timeout: 2000 })));
      expect(answers).toEqual(Array.from({ length: 500 }, (_, i) => i));
      expect(ctx.server.stats.streamBuffer).toBe(0);
      expect(p.state.produced).toBeLessThanOrEqual(3 + window + 1);
      await stalled.return();
      await waitFor(() => p.state.stopped && ctx.server.stats.inFlight === 0, 2000);
      expect(ctx.server.stats.ended.cancelled).toBe(1);
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  });
});

@Controller()
class FloodController {
  @MessagePattern('flood')
  flood(): Observable<Buffer> {
    const chunk = Buffer.alloc(KiB, 2);
    return range(0, 100_000).pipe(map(() => chunk)); // synchronous: outruns any consumer
  }
  @MessagePattern('drip')
  drip(): Observable<number> {
    return interval(1);
  }
  @MessagePattern('echo')
  echo(v: unknown) {
    return v;
  }
}

@Module({ controllers: [FloodController] })
class FloodModule {}

describe('an Observable that outruns its buffer', () => {
  let app: INestMicroservice;
  let client: OccamsClient;
  let rpc: RpcServer;
  beforeAll(async () => {
    const strategy = new OccamsServer({ port: 0, streamBufferBytes: 64 * KiB });
    app = await NestFactory.createMicroservice(FloodModule, { strategy, logger: false });
    await app.listen();
    rpc = strategy.unwrap<RpcServer>();
    client = new OccamsClient({ port: (strategy.address as TcpAddress).port });
    await client.connect();
  });
  afterAll(async () => {
    await client.close();
    await app.close();
  });

  it('fails that stream alone with rpc_stream_overflow; other calls on the connection go on', async () => {
    const others = Array.from({ length: 100 }, (_, i) => client.request('echo', i));
    let items = 0;
    let message = '';
    const flood = await new Promise<string>((resolve) =>
      client.send('flood', {}).subscribe({
        next: () => items++,
        error: (e: OccamsError) => {
          message = e.message;
          resolve(e.code);
        },
        complete: () => resolve('complete'),
      }),
    );
    expect(flood).toBe('rpc_stream_overflow');
    // says which option it ran into and what to do instead
    expect(message).toMatch(/streamBufferBytes.*return an AsyncIterable/);
    expect(items).toBeGreaterThan(0);
    expect(items).toBeLessThan(100_000);
    expect(await Promise.all(others)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(await client.request('echo', 'same connection')).toBe('same connection');
    expect(rpc.stats.ended.overflowed).toBe(1);
    expect(rpc.stats.ended.peakStreamBuffer).toBeLessThanOrEqual(64 * KiB + KiB + 64);
  });

  it('a stalled async consumer of a pushing Observable: bounded, then that stream fails; the rest is served', async () => {
    const it = client.stream<number>('drip', {}, { window: 4 });
    expect((await it.next()).value).toBe(0);
    // no more next(): the server queues the drip (small items) up to 64 KiB, then fails the stream
    await waitFor(() => rpc.stats.ended.overflowed === 2, 15_000);
    expect(await client.request('echo', 'still fine')).toBe('still fine');
    const rest: unknown[] = [];
    const end = await (async () => {
      try {
        for (let i = 0; i < 10; i++) {
          const r = await it.next();
          if (r.done) return 'done';
          rest.push(r.value);
        }
        return 'more';
      } catch (e) {
        return (e as OccamsError).code;
      }
    })();
    expect(rest.length).toBeLessThanOrEqual(4); // what was already buffered (its window), then the error
    expect(end).toBe('rpc_stream_overflow');
  }, 20_000);
});

describe('a peer is cut for stalling, never for volume', () => {
  it('requests held while writes are backed up pause reading at maxQueuedBytes; none is refused (a queue of 1 MiB, 256 KiB values)', async () => {
    // 8 MiB values x 64 in flight against the default 32 MiB were refused rpc_overloaded: a request was held only if it fitted
    // under the bound, while reading paused only once the bound was reached, so the one that did not fit was read and refused
    const value = Buffer.alloc(256 * KiB, 5);
    const ctx = await startServer({ echo: (v: unknown) => v }, { highWaterMark: 64 * KiB, maxQueuedBytes: 1024 * KiB, writeTimeout: 10_000 });
    const raw = await rawConnect(ctx.address.port);
    const flags: number[] = [];
    const decoder = new ResponseDecoder({ onResponse: (flag) => flags.push(flag) }, 1 << 20);
    raw.on('data', (c: Buffer) => decoder.push(c));
    raw.pause(); // takes none of its answers yet: the server's writes back up after the first one
    const msg = msgpackCodec.encode(value) as Buffer;
    raw.write(Buffer.concat(Array.from({ length: 96 }, (_, i) => encodeRequest({ action: 'echo', seq: i + 1, msg })))); // 24 MiB: past what the kernel buffers
    await waitFor(() => ctx.server.stats.connections === 1);
    await sleep(500); // the server answers until the kernel's buffers are full, holds the rest up to the bound and stops reading
    raw.resume();
    await waitFor(() => flags.length === 96, 20_000);
    expect(flags.filter((f) => f !== 0)).toEqual([]);
    expect(ctx.logger.lines.filter((l) => /already wait/.test(l))).toEqual([]);
    raw.destroy();
    await ctx.server.destroy();
  }, 30_000);

  it('a client reading in short bursts gets 50 MiB through a 64 KiB high-water mark and a 400 ms writeTimeout', async () => {
    const big = Buffer.alloc(256 * KiB, 3);
    const ctx = await startServer({ big: () => big }, { highWaterMark: 64 * KiB, writeTimeout: 400 });
    const raw = await rawConnect(ctx.address.port);
    let answered = 0;
    const decoder = new ResponseDecoder({ onResponse: (flag) => flag === 0 && answered++ }, 1 << 20);
    raw.on('data', (c: Buffer) => decoder.push(c));
    raw.write(Buffer.concat(Array.from({ length: 200 }, (_, i) => encodeRequest({ action: 'big', seq: i + 1, msg: Buffer.from([0xc0]) }))));
    // read 5 ms out of every 100 ms: slow, but never stalled for writeTimeout
    for (let round = 0; round < 400 && answered < 200; round++) {
      raw.pause();
      await sleep(95);
      raw.resume();
      await sleep(5);
    }
    expect(answered).toBe(200);
    expect(ctx.logger.lines.some((l) => /write timeout|not reading/.test(l))).toBe(false);
    raw.destroy();
    await ctx.server.destroy();
  }, 60_000);
});

describe('a client holds about highWaterMark of encoded requests, not a window of them', () => {
  /** A TCP proxy in front of `port` whose reading from the client stops on `hold()` and goes on on `release()`. */
  async function gate(port: number) {
    const clients: net.Socket[] = [];
    const ups: net.Socket[] = [];
    const server = net.createServer((c) => {
      const up = net.connect(port, '127.0.0.1');
      c.pipe(up);
      up.pipe(c);
      clients.push(c);
      ups.push(up);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      port: (server.address() as net.AddressInfo).port,
      hold: () => clients.forEach((c, i) => (c.unpipe(ups[i]), c.pause())),
      release: () => clients.forEach((c, i) => (c.pipe(ups[i]!), c.resume())),
      close: () => (clients.concat(ups).forEach((s) => s.destroy()), new Promise((r) => server.close(r))),
    };
  }

  it.each([
    [1024 * KiB, 4 * 1024 * KiB],
    [256 * KiB, 2 * 1024 * KiB],
  ])(
    '64 x 512 KiB in flight to a server that reads nothing: the socket holds under highWaterMark %i plus one frame, all answered once it reads',
    async (highWaterMark, bound) => {
      const ctx = await startServer({ echo: (v: Buffer) => v.length });
      const proxy = await gate(ctx.address.port);
      const socket = await rawConnect(proxy.port);
      const client = new ClientStream(socket, { maxInFlight: 64, highWaterMark, pingInterval: 0, timeout: 20_000 });
      try {
        await client.handshake();
        expect(await client.request('echo', Buffer.alloc(10))).toBe(10);
        proxy.hold();
        const value = Buffer.alloc(512 * KiB, 9);
        let peak = 0;
        const calls: Promise<unknown>[] = [];
        for (let i = 0; i < 64; i++) {
          calls.push(client.request('echo', value));
          peak = Math.max(peak, socket.writableLength);
        }
        // the kernel takes a few MiB; the rest waits, encoded (before: 64 x 512 KiB, less what the kernel took) or not
        for (let i = 0; i < 20; i++) {
          await sleep(10);
          peak = Math.max(peak, socket.writableLength);
        }
        expect(client.stats.queued).toBeGreaterThan(0);
        expect(peak).toBeLessThan(bound);
        proxy.release();
        expect(await Promise.all(calls)).toEqual(Array.from({ length: 64 }, () => 512 * KiB));
        expect(client.stats.queued).toBe(0);
      } finally {
        client.destroy();
        await proxy.close();
        await ctx.server.destroy();
      }
    },
    30_000,
  );
});
