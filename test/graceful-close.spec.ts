/**
 * A graceful close drops nothing: what reached the server's socket before
 * the close is read and answered (plain v1 peers included), events read
 * are run, open streams end after a short grace with a coded error, and
 * close() returns as soon as nothing is owed.
 */
import 'reflect-metadata';

import net from 'node:net';

import { Controller, type INestMicroservice, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { Packr } from 'msgpackr';
import { interval, lastValueFrom, type Observable } from 'rxjs';

import { ClientStream } from '../lib/client/client-stream.js';
import type { OccamsError } from '../lib/errors.js';
import { OccamsClient, OccamsServer, type OccamsServerOptions, type TcpAddress } from '../lib/index.js';
import { FakeClock } from './support/fake-clock.js';
import { exited, lifecycleServer, message } from './support/processes.js';
import { v1Request } from './support/raw-v1.js';
import { sleep, startServer, waitFor } from './support/servers.js';

const msgpack = new Packr({ useRecords: false });
const settle = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: OccamsError) => e.code,
  );

/** Parses v1 responses off a raw socket: seq -> [flag, value]. */
function v1Responses(socket: net.Socket): Map<number, [number, unknown]> {
  const out = new Map<number, [number, unknown]>();
  let pending = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => {
    let buf = Buffer.concat([pending, c]);
    while (buf.length >= 20) {
      const flag = buf[3]!;
      const msgLen = buf.readUInt32LE(4);
      const blobLen = buf.readInt32LE(16);
      const bodyLen = (flag === 1 ? 0 : msgLen) + blobLen;
      if (buf.length < 20 + bodyLen) break;
      const seq = Number(buf.readBigUInt64LE(8));
      const body = buf.subarray(20, 20 + bodyLen);
      out.set(seq, [flag, flag === 0 && msgLen ? msgpack.unpack(body) : body.toString('latin1')]);
      buf = buf.subarray(20 + bodyLen);
    }
    pending = buf;
  });
  return out;
}

describe('SIGTERM (separate server process)', () => {
  it('a raw v1 client pipelining 1,000 requests: all 1,000 answered, then the connection closes and the process exits', async () => {
    // (the concurrency limit off: 1,000 pipelined 50 ms calls without deadlines would rightly meet its queue bound on a busy machine; this is about the close)
    const { child, port } = await lifecycleServer('nest', { concurrencyLimit: false });
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const responses = v1Responses(socket);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    const frames = Buffer.concat(Array.from({ length: 1000 }, (_, i) => v1Request(i + 1, 'slow', [50, i + 1])));
    await new Promise<void>((r) => socket.write(frames, () => r())); // handed to the kernel: it reached the server's socket
    child.kill('SIGTERM');
    const report = await message<{ ms: number; executed: number[] }>(child, 'closed', 15_000);
    await closed;
    expect(await exited(child)).toBe(0);
    expect(responses.size).toBe(1000);
    for (let seq = 1; seq <= 1000; seq++) expect(responses.get(seq)).toEqual([0, seq]);
    expect(report.executed).toHaveLength(1000);
    expect(report.ms).toBeLessThan(5000); // far below closeWait (20 s): it returned once nothing was owed
  }, 30_000);
});

describe('graceful close, in process', () => {
  it('a closed-loop v1 client: everything executed is answered; the rest fails retriably, never run', async () => {
    const executed = new Set<number>();
    const ctx = await startServer({
      work: async (id: number) => {
        await sleep(2);
        executed.add(id);
        return id;
      },
    });
    const v1 = await ClientStream.connect(ctx.url, { extensions: false, maxInFlight: 128 });
    const answered = new Set<number>();
    const failed: string[] = [];
    let next = 1;
    let stop = false;
    const worker = async () => {
      for (let i = 0; i < 100_000 && !stop; i++) {
        const id = next++;
        try {
          answered.add((await v1.request('work', id, { timeout: 5000 })) as number);
        } catch (e) {
          failed.push((e as OccamsError).code);
          return;
        }
      }
    };
    const workers = Promise.all(Array.from({ length: 128 }, worker));
    await waitFor(() => answered.size > 1000, 10_000); // traffic flowing (a loaded machine may take more than a moment)
    const t0 = Date.now();
    await ctx.server.close();
    const closeMs = Date.now() - t0;
    stop = true;
    await workers;
    for (const id of executed) expect(answered.has(id)).toBe(true); // nothing ran without its answer reaching the client
    for (const code of failed) expect(['rpc_io_err', 'rpc_unreachable']).toContain(code);
    expect(closeMs).toBeLessThan(5000);
    v1.destroy();
  });

  it('close() returns at once when nothing is owed, extension and v1 clients connected', async () => {
    const ctx = await startServer({ echo: (v: unknown) => v });
    const ext = await ClientStream.connect(ctx.url);
    const v1 = await ClientStream.connect(ctx.url, { extensions: false });
    expect(await ext.request('echo', 1)).toBe(1);
    expect(await v1.request('echo', 2)).toBe(2);
    const t0 = Date.now();
    await ctx.server.close();
    expect(Date.now() - t0).toBeLessThan(2000); // closeWait is 20 s
    await waitFor(() => ext.state === 'closed' && v1.state === 'closed', 2000);
  });

  it('a connection the server ended is destroyed when the peer never closes its side', async () => {
    const ctx = await startServer({ echo: (v: unknown) => v }, { drainGrace: 50 });
    const halfOpen = net.connect({ port: ctx.address.port, host: '127.0.0.1', allowHalfOpen: true });
    await new Promise((r) => halfOpen.once('connect', r));
    halfOpen.on('data', () => {});
    let sawEnd = false;
    halfOpen.once('end', () => (sawEnd = true)); // our FIN arrives; this peer keeps its side open
    const t0 = Date.now();
    await ctx.server.close();
    expect(sawEnd).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000); // END_TIMEOUT (1 s) after the FIN, not closeWait
    halfOpen.destroy();
  });

  it('after GOAWAY an extension client sends nothing new on that connection (rpc_unreachable, not sent)', async () => {
    const ctx = await startServer({ slow: async (ms: number) => (await sleep(ms), ms) });
    const client = await ClientStream.connect(ctx.url);
    const owed = client.request('slow', 100);
    const goaway = new Promise((r) => client.once('goaway', r));
    const closing = ctx.server.close();
    await goaway;
    expect(await settle(client.request('slow', 1))).toBe('rpc_unreachable');
    expect(await owed).toBe(100);
    await closing;
    client.destroy();
  });
});

@Injectable()
class Seen {
  events: unknown[] = [];
}

@Controller()
class CloseController {
  constructor(private readonly seen: Seen) {}

  @EventPattern('audit')
  async audit(@Payload() entry: unknown) {
    await sleep(50);
    this.seen.events.push(entry);
  }

  @MessagePattern('ticks')
  ticks(): Observable<number> {
    return interval(10);
  }
}

@Module({ controllers: [CloseController], providers: [Seen] })
class CloseModule {}

async function nestApp(options: OccamsServerOptions = {}) {
  const strategy = new OccamsServer({ port: 0, ...options });
  const app: INestMicroservice = await NestFactory.createMicroservice(CloseModule, { strategy, logger: false });
  await app.listen();
  const client = new OccamsClient({ port: (strategy.address as TcpAddress).port });
  await client.connect();
  return { app, client, strategy, seen: app.get(Seen) };
}

describe('Nest app.close()', () => {
  it('runs an event emitted just before the close', async () => {
    const { app, client, seen } = await nestApp();
    await lastValueFrom(client.emit('audit', { who: 'last' }), { defaultValue: undefined }); // resolves once handed to the socket
    await app.close();
    expect(seen.events).toEqual([{ who: 'last' }]);
    await client.close();
  });

  it('with an open stream, the close ends it after streamCloseGrace (1 s on the server clock), with rpc_going_away, and finishes well before closeWait', async () => {
    const clock = new FakeClock();
    const { app, client, strategy } = await nestApp({ clock });
    let items = 0;
    let end: string | undefined;
    client.send('ticks', {}).subscribe({ next: () => items++, error: (e: OccamsError) => (end = e.code), complete: () => (end = 'complete') });
    await waitFor(() => items >= 3);
    let closed = false;
    const closing = app.close().then(() => (closed = true));
    await waitFor(() => strategy.unwrap().stats.state === 'closing', 2000); // the connection drains from the clock's now
    clock.advance(999);
    const at = items;
    await waitFor(() => items >= at + 3, 2000); // items still written after the advance: the stream is open
    expect(end).toBeUndefined();
    clock.advance(1);
    await waitFor(() => end !== undefined, 2000);
    expect(end).toBe('rpc_going_away');
    // the rest of the close runs on the same clock: done within 15 s of it (closeWait is 20 s)
    await waitFor(() => (clock.advance(100), closed), 1500);
    await closing;
    await client.close();
  });
});
