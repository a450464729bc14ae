/**
 * Lifecycle figures: what happens to a call's life on the server when the
 * client gives up, when the consumer is slow, and at a graceful close.
 * Each scenario runs against a fresh server process (lifecycle-server.js)
 * unless it needs in-process stats. Usage (after `npm run build`):
 *   node dist/bench/lifecycle.js [--json]
 * Writes bench/results/lifecycle.json. Figures: handlers cancelled vs left
 * running, time for a reset to be noticed, bytes buffered per stream, peak
 * RSS under 8 x 100,000 x 1 KiB streams, close durations, requests lost at
 * SIGTERM.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { lastValueFrom } from 'rxjs';

import { ClientStream, MethodDispatch, msgpackCodec, OccamsClient, type OccamsError, RpcServer, silentLogger, streamCall, type TcpAddress } from '../lib/index.js';
import * as protocol from '../lib/protocol/index.js';
import { waitMessage } from './ipc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const json = process.argv.includes('--json');
const log = (m: string) => !json && console.log(m);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- process helpers ---------------------------------------------------------

async function server(mode: 'nest' | 'stream', options: Record<string, unknown> = {}) {
  const child = fork(path.join(here, 'lifecycle-server.js'), [mode, JSON.stringify(options)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const { port } = await waitMessage<{ port: number }>(child, 'ready');
  const stats = async () => {
    child.send('stats');
    return waitMessage<any>(child, 'stats');
  };
  const exit = new Promise<number | string>((r) => child.once('exit', (code, signal) => r(code ?? signal!)));
  return { child, port, stats, exit, kill: () => child.kill('SIGKILL') };
}

async function until(cond: () => Promise<boolean> | boolean, ms: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < 100_000 && performance.now() - t0 < ms; i++) {
    if (await cond()) return performance.now() - t0;
    await sleep(5);
  }
  return -1;
}

const settle = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: OccamsError) => e.code ?? 'unknown',
  );
const tally = (codes: string[]) => codes.reduce<Record<string, number>>((t, c) => ((t[c] = (t[c] ?? 0) + 1), t), {});

/** A plain v1 request (no HELLO was said, so the server answers in v1 only). */
function v1Request(seq: number, action: string, value: unknown): Buffer {
  return protocol.encodeRequest({ action, seq, msg: msgpackCodec.encode(value) });
}

/** Counts v1 responses on a raw socket, by flag. */
function countResponses(socket: net.Socket): { ok: Set<number>; errors: number } {
  const out = { ok: new Set<number>(), errors: 0 };
  let pending = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => {
    let buf = Buffer.concat([pending, c]);
    while (buf.length >= 20) {
      const flag = buf[3]!;
      const bodyLen = (flag === 1 ? 0 : buf.readUInt32LE(4)) + buf.readInt32LE(16);
      if (buf.length < 20 + bodyLen) break;
      if (flag === 0) out.ok.add(Number(buf.readBigUInt64LE(8)));
      else out.errors++;
      buf = buf.subarray(20 + bodyLen);
    }
    pending = buf;
  });
  return out;
}

// ---- scenarios ----------------------------------------------------------------

/** 1,100 calls to a handler that never answers, each timed out after 1 s by the client. */
async function cancelOnTimeout() {
  const s = await server('nest');
  const client = await ClientStream.connect({ host: '127.0.0.1', port: s.port }, { maxInFlight: 2048, maxQueued: 2048 });
  const codes = await Promise.all(Array.from({ length: 1100 }, () => settle(client.request('never', null, { timeout: 1000 }))));
  const settledMs = await until(async () => (await s.stats()).stats.inFlight === 0, 5000);
  const after = await s.stats();
  const t0 = performance.now();
  const next = await settle(client.request('echo', 1, { timeout: 2000 }));
  const nextMs = performance.now() - t0;
  client.destroy();
  s.kill();
  return {
    calls: 1100,
    clientOutcomes: tally(codes),
    clientWindow: client.stats.window,
    handlersStarted: after.stats.ended.cancelled + after.stats.inFlight,
    handlersCancelled: after.stats.ended.cancelled,
    signalsAborted: after.aborted,
    handlersLeftRunning: after.stats.inFlight,
    msUntilServerIdle: Math.round(settledMs),
    nextCall: next,
    nextCallMs: Number(nextMs.toFixed(1)),
  };
}

/** The same from a plain v1 client (no CANCEL): the server's handlerTimeout ends them. */
async function handlerTimeoutV1() {
  const s = await server('nest', { handlerTimeout: 2000 });
  const client = await ClientStream.connect({ host: '127.0.0.1', port: s.port }, { extensions: false, maxInFlight: 1100, maxQueued: 1100 });
  const codes = await Promise.all(Array.from({ length: 1100 }, () => settle(client.request('never', null, { timeout: 10_000 }))));
  const after = await s.stats();
  client.destroy();
  s.kill();
  return {
    calls: 1100,
    handlerTimeout: 2000,
    clientOutcomes: tally(codes),
    handlersEndedByHandlerTimeout: after.stats.ended.handlerTimeouts,
    endedWhileQueued: after.stats.ended.droppedQueued,
    handlersLeftRunning: after.stats.inFlight,
  };
}

/** 10,000 subscribe-then-unsubscribe calls to an Observable that never emits, in batches of 2,000. */
async function unsubscribe() {
  const s = await server('nest', { maxInFlightPerConnection: 2048 });
  const client = new OccamsClient({ port: s.port, maxInFlight: 2048, maxQueued: 4096 });
  await client.connect();
  for (let batch = 1; batch <= 5; batch++) {
    const subs = Array.from({ length: 2000 }, () => client.send('silent', {}).subscribe({ error: () => {} }));
    await until(async () => (await s.stats()).subscribed === batch * 2000, 10_000);
    for (const sub of subs) sub.unsubscribe();
  }
  await until(async () => (await s.stats()).tornDown === 10_000, 10_000);
  const after = await s.stats();
  await client.close();
  s.kill();
  return { unsubscribed: 10_000, serverSubscribed: after.subscribed, serverTornDown: after.tornDown, handlersLeftRunning: after.stats.inFlight };
}

/** A raw v1 client past the cap (1,024 running, 76 queued) destroys its socket. */
async function resetAtCap() {
  const s = await server('nest');
  const raw = net.connect(s.port, '127.0.0.1');
  await new Promise((r) => raw.once('connect', r));
  raw.on('data', () => {});
  raw.write(Buffer.concat(Array.from({ length: 1100 }, (_, i) => v1Request(i + 1, 'never', null))));
  await until(async () => (await s.stats()).stats.inFlight === 1024, 5000);
  const before = await s.stats();
  const t0 = performance.now();
  raw.destroy();
  await until(async () => {
    const st = await s.stats();
    return st.stats.connections === 0 && st.stats.inFlight === 0;
  }, 5000);
  const ms = performance.now() - t0;
  const after = await s.stats();
  s.kill();
  return {
    running: before.stats.inFlight,
    queued: before.stats.queued,
    msUntilNoticedAndCancelled: Math.round(ms),
    signalsAborted: after.aborted,
    droppedQueued: after.stats.ended.droppedQueued,
  };
}

/** 8 concurrent streams of 100,000 x 1 KiB to clients that read normally (an AsyncIterable handler). */
async function bigStreams() {
  const s = await server('nest');
  const idle = await s.stats();
  const clients = await Promise.all(Array.from({ length: 8 }, () => ClientStream.connect({ host: '127.0.0.1', port: s.port })));
  const t0 = performance.now();
  const items = await Promise.all(
    clients.map(async (c, i) => {
      let n = 0;
      if (i % 2 === 0) for await (const _ of streamCall(c, 'blobs', [100_000, 1024], { timeout: 60_000 })) n++;
      else await new Promise((res, rej) => c.call('blobs', [100_000, 1024], { onItem: () => n++, onResult: res, onError: rej }, { timeout: 60_000 }));
      return n;
    }),
  );
  const ms = performance.now() - t0;
  const after = await s.stats();
  for (const c of clients) c.destroy();
  s.kill();
  return {
    streams: 8,
    itemsPerStream: 100_000,
    itemBytes: 1024,
    allComplete: items.every((n) => n === 100_000),
    seconds: Number((ms / 1000).toFixed(2)),
    MiBPerSecond: Math.round((8 * 100_000 * 1024) / 2 ** 20 / (ms / 1000)),
    serverIdleRssMiB: Math.round(idle.rssMiB),
    serverPeakRssMiB: Math.round(after.rssMiB),
    overflowed: after.stats.ended.overflowed,
    connectionsCut: 0,
  };
}

/** An AsyncIterable consumed at 1 item per ms with a window of 16 (in process, to read the connection's buffers). */
async function slowConsumer() {
  let produced = 0;
  const server = new RpcServer(
    new MethodDispatch(
      {
        stream: async function* () {
          const chunk = Buffer.alloc(1024, 1);
          for (let i = 0; i < 1_000_000; i++) {
            produced++;
            yield chunk;
          }
        },
      },
      silentLogger,
    ),
    { logger: silentLogger },
  );
  const address = (await server.listen('127.0.0.1:0')) as TcpAddress;
  const client = await ClientStream.connect(address);
  const window = 16;
  const it = streamCall<Buffer>(client, 'stream', null, { window });
  let maxAhead = 0;
  let maxServerBytes = 0;
  const conns = (server as unknown as { connections: Set<{ stats: { writeBuffer: number; streamBuffer: number } }> }).connections;
  for (let consumed = 1; consumed <= 1000; consumed++) {
    await it.next();
    await sleep(1);
    maxAhead = Math.max(maxAhead, produced - consumed);
    for (const c of conns) maxServerBytes = Math.max(maxServerBytes, c.stats.writeBuffer + c.stats.streamBuffer);
  }
  await it.return();
  client.destroy();
  await server.destroy();
  return { consumed: 1000, window, itemBytes: 1024, creditBytes: window * 1024, maxProducerLeadItems: maxAhead, maxServerBufferedBytes: maxServerBytes };
}

/** A synchronous Observable of 100,000 x 1 KiB: fails alone at the per-stream buffer (default 1 MiB). */
async function observableOverflow() {
  const server = new RpcServer(
    {
      dispatch(req) {
        if (req.action === 'echo') return void req.ok(req.msg);
        const chunk = Buffer.alloc(1024, 2);
        for (let i = 0; i < 100_000 && req.item(chunk); i++);
        req.end();
      },
    },
    { logger: silentLogger },
  );
  const address = (await server.listen('127.0.0.1:0')) as TcpAddress;
  const client = await ClientStream.connect(address);
  let items = 0;
  const outcome = await new Promise<string>((resolve) =>
    client.call('flood', null, { onItem: () => items++, onResult: () => resolve('complete'), onError: (e) => resolve(e.code) }),
  );
  const other = await settle(client.request('echo', 1));
  const stats = server.stats;
  client.destroy();
  await server.destroy();
  return { outcome, itemsDelivered: items, otherCallOnConnection: other, peakBytesBufferedForTheStream: stats.ended.peakStreamBuffer, streamBufferBytes: 1024 * 1024 };
}

/** SIGTERM while a raw v1 client has 1,000 pipelined requests (50 ms each) in the server's socket. */
async function sigtermV1Pipelined() {
  const s = await server('nest');
  const raw = net.connect(s.port, '127.0.0.1');
  await new Promise((r) => raw.once('connect', r));
  const got = countResponses(raw);
  const closed = new Promise<void>((r) => raw.once('close', () => r()));
  await new Promise<void>((r) => raw.write(Buffer.concat(Array.from({ length: 1000 }, (_, i) => v1Request(i + 1, 'slow', [50, i + 1]))), () => r()));
  s.child.kill('SIGTERM');
  const report = await waitMessage<{ ms: number; executed: number[] }>(s.child, 'closed');
  await closed;
  const code = await s.exit;
  return { requests: 1000, answered: got.ok.size, errors: got.errors, lost: 1000 - got.ok.size, executed: report.executed.length, closeMs: Math.round(report.ms), exitCode: code };
}

/** SIGTERM under a closed loop of 128 in flight: a plain v1 client, and a client speaking the extensions. */
async function sigtermClosedLoop(extensions: boolean) {
  const s = await server('nest');
  const client = await ClientStream.connect({ host: '127.0.0.1', port: s.port }, { extensions, maxInFlight: 128 });
  const answered = new Set<number>();
  const failed: string[] = [];
  let next = 1;
  let sent = 0;
  const worker = async () => {
    for (let i = 0; i < 1_000_000; i++) {
      const id = next++;
      sent++;
      try {
        answered.add((await client.request('slow', [1, id], { timeout: 10_000 })) as number);
      } catch (e) {
        failed.push((e as OccamsError).code);
        return;
      }
    }
  };
  const workers = Promise.all(Array.from({ length: 128 }, worker));
  await sleep(500);
  s.child.kill('SIGTERM');
  const report = await waitMessage<{ ms: number; executed: number[] }>(s.child, 'closed');
  await workers;
  await s.exit;
  client.destroy();
  const executedNotAnswered = report.executed.filter((id) => !answered.has(id)).length;
  return {
    client: extensions ? 'extensions (GOAWAY + ack)' : 'plain v1',
    inFlight: 128,
    sent,
    answered: answered.size,
    failed: tally(failed),
    executedButUnanswered: executedNotAnswered,
    unsettled: sent - answered.size - failed.length,
    lost: executedNotAnswered + (sent - answered.size - failed.length),
    closeMs: Math.round(report.ms),
  };
}

/** SIGTERM with a stream open (the server grants it streamCloseGrace, 1 s). */
async function sigtermWithStream() {
  const s = await server('nest');
  const client = new OccamsClient({ port: s.port });
  await client.connect();
  let items = 0;
  const ended = new Promise<string>((resolve) =>
    client.send('ticks', {}).subscribe({ next: () => items++, error: (e: OccamsError) => resolve(e.code), complete: () => resolve('complete') }),
  );
  await until(() => items >= 5, 5000);
  s.child.kill('SIGTERM');
  const report = await waitMessage<{ ms: number }>(s.child, 'closed');
  const outcome = await ended;
  await s.exit;
  await client.close();
  return { streamOutcome: outcome, closeMs: Math.round(report.ms), streamCloseGrace: 1000, closeWait: 20_000 };
}

/** An event emitted (and resolved) just before SIGTERM. */
async function eventBeforeClose() {
  const s = await server('nest');
  const client = new OccamsClient({ port: s.port });
  await client.connect();
  await lastValueFrom(client.emit('audit', { n: 1 }), { defaultValue: undefined });
  s.child.kill('SIGTERM');
  const report = await waitMessage<{ ms: number; events: number }>(s.child, 'closed');
  await s.exit;
  await client.close();
  return { emitted: 1, run: report.events, closeMs: Math.round(report.ms) };
}

/** SIGTERM with idle clients connected: one speaking the extensions, one plain v1. */
async function sigtermIdle() {
  const s = await server('nest');
  const ext = await ClientStream.connect({ host: '127.0.0.1', port: s.port });
  const v1 = await ClientStream.connect({ host: '127.0.0.1', port: s.port }, { extensions: false });
  await ext.request('echo', 1);
  await v1.request('echo', 1);
  s.child.kill('SIGTERM');
  const report = await waitMessage<{ ms: number }>(s.child, 'closed');
  await s.exit;
  ext.destroy();
  v1.destroy();
  return { closeMs: Math.round(report.ms), drainGrace: 250 };
}

const scenarios: [string, () => Promise<unknown>][] = [
  ['cancelOnTimeout', cancelOnTimeout],
  ['handlerTimeoutV1', handlerTimeoutV1],
  ['unsubscribe', unsubscribe],
  ['resetAtCap', resetAtCap],
  ['bigStreams', bigStreams],
  ['slowConsumer', slowConsumer],
  ['observableOverflow', observableOverflow],
  ['sigtermV1Pipelined', sigtermV1Pipelined],
  ['sigtermV1ClosedLoop', () => sigtermClosedLoop(false)],
  ['sigtermExtensionsClosedLoop', () => sigtermClosedLoop(true)],
  ['sigtermWithStream', sigtermWithStream],
  ['eventBeforeClose', eventBeforeClose],
  ['sigtermIdle', sigtermIdle],
];

const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1]!.split(',') : undefined;
const results: Record<string, unknown> = {};
for (const [name, run] of scenarios) {
  if (only && !only.includes(name)) continue;
  log(`${name} ...`);
  results[name] = await run();
  log(`  ${JSON.stringify(results[name])}`);
}
const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const report = { date: new Date().toISOString(), machine, results };
if (json) console.log(JSON.stringify(report));
else if (!only) {
  const out = path.resolve(here, '../../bench/results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'lifecycle.json'), JSON.stringify(report, null, 2) + '\n');
  console.log(`wrote bench/results/lifecycle.json`);
}
process.exit(0);
