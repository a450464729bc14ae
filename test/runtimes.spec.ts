/**
 * Runtime independence: the built package (dist/, built once per run by
 * globalSetup) under Bun and Deno, the pinned dev dependencies, talking to
 * Node over 127.0.0.1 in both directions:
 * - the stream-layer demo runs to its end under each runtime;
 * - the stream-layer server and the Nest Calculator sample, run under each
 *   runtime, answer clients in this (Node) process, and a raw v1 client
 *   byte for byte as the same servers in this process do;
 * - servers in this process answer the stream-layer client run under each;
 * - TLS, mutual TLS, Unix sockets, DNS and diagnostics_channel behave as under Node.
 * Speeds are printed, not asserted (`npm run demo:runtimes` for figures).
 */
import 'reflect-metadata';

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { firstValueFrom, toArray } from 'rxjs';

import { ClientStream } from '../lib/client/client-stream.js';
import { type OccamsError, RemoteErrnoError } from '../lib/errors.js';
import { OccamsClient } from '../lib/nest/occams-client.js';
import { OccamsServer } from '../lib/nest/occams-server.js';
import { silentLogger } from '../lib/server/logger.js';
import { MethodDispatch } from '../lib/server/method-dispatch.js';
import { RpcServer } from '../lib/server/rpc-server.js';
import type { TcpAddress } from '../lib/transport/address.js';
import { CalculatorModule } from '../sample/calculator/calculator.module.js';
import { calculatorMethods } from '../sample/calculator-methods.js';
import { runtimeBinary, runtimeCommand, type RuntimeName } from '../sample/runtime-commands.js';
import { testPki } from './support/certs.js';
import { type ProcessCommand, runProcess, type Started, startProcess, stopAll, stopProcess } from './support/child-processes.js';
import { v1Exchange, v1Hold, v1Ping, v1Request } from './support/raw-v1.js';

const root = path.resolve(import.meta.dirname, '..');
const pinned = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).devDependencies as Record<RuntimeName, string>;
/** Bounds: a child's run, a test (above the child's bound, so the child's own error is what is reported). */
const RUN_MS = 15_000;
const TEST_MS = 40_000;
const dist = (file: string) => path.join(root, 'dist', file);
const command = (runtime: RuntimeName, script: string, args: string[] = [], env: Record<string, string> = {}, grants = {}): ProcessCommand => {
  const c = runtimeCommand(runtime, root, script, args, grants);
  return { file: c.file, args: c.args, env: { ...c.env, ...env }, cwd: root };
};
/** how a call ended, comparable across clients and runtimes */
const outcome = (p: Promise<unknown>) =>
  p.then(
    (value) => ({ value }),
    (e: OccamsError) => (e instanceof RemoteErrnoError ? { code: e.code, errno: e.errno } : { code: e.code, message: e.message }),
  );

/** The Calculator's answers through any client (both servers give the same ones). */
async function expectCalculator(request: (action: string, value: unknown) => Promise<unknown>): Promise<void> {
  expect(await request('Calculator.add', [2, 3])).toBe(5);
  expect(await request('Calculator.div', [7, 2])).toBe(3);
  expect(await outcome(request('Calculator.div', [1, 0]))).toEqual({ code: 'user_error', message: 'division by zero' });
  expect(await request('Calculator.might_fail_with_errno', 21)).toBe(42);
  expect(await outcome(request('Calculator.might_fail_with_errno', -1))).toEqual({ code: 'user_errno', errno: 22 });
  expect(await outcome(request('Calculator.nope', 1))).toMatchObject({ code: 'rpc_method_notfound' });
  const sums = await Promise.all(Array.from({ length: 500 }, (_, i) => request('Calculator.add', [i, 1])));
  expect(sums).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
}

/** A plain v1 client's batch (no HELLO): every response frame, as hex, sorted by seq. */
const v1Batch = [
  v1Request(1, 'Calculator.add', [2, 3]),
  v1Request(2, 'Calculator.div', [7, 2]),
  v1Request(3, 'Calculator.div', [1, 0]),
  v1Request(4, 'Calculator.might_fail_with_errno', 21),
  v1Request(5, 'Calculator.might_fail_with_errno', -1),
  v1Request(6, 'Calculator.count', 3),
  v1Request(7, 'Calculator.nope', 1),
  v1Ping(8),
];
const v1Answers = async (port: number) => (await v1Exchange(port, v1Batch, v1Batch.length)).map((f) => f.toString('hex'));

/** What the probe (test/fixtures/runtimes/probe.mjs) must report, as Node does. */
const probeExpected = {
  tls: { trusted: 5, untrustedCa: 'rpc_unreachable', wrongName: 'rpc_unreachable', minVersion13: 5 },
  mutualTls: { withCert: 'client', withoutCert: 'rpc_unreachable' },
  unix: 5,
  dns: 5,
  diagnosticsChannel: { before: false, during: true, after: false, seen: { seq: 1 } },
  occamsChannels: {
    value: 5,
    calls: ['occams:client:call:start', 'occams:client:call:sent', 'occams:server:request:start', 'occams:server:request:end', 'occams:client:call:response'],
    opened: 2,
  },
};

/** The same two servers in this Node process: what a runtime's must match, and what its clients call. */
const node = {} as { stream: RpcServer; streamPort: number; nest: INestMicroservice; nestPort: number; streamV1: string[]; nestV1: string[] };
beforeAll(async () => {
  node.stream = new RpcServer(new MethodDispatch(calculatorMethods, silentLogger), { logger: silentLogger });
  node.streamPort = ((await node.stream.listen('127.0.0.1:0')) as TcpAddress).port;
  const strategy = new OccamsServer({ host: '127.0.0.1', port: 0 });
  node.nest = await NestFactory.createMicroservice(CalculatorModule, { strategy, logger: false });
  await node.nest.listen();
  node.nestPort = (strategy.address as TcpAddress).port;
  node.streamV1 = await v1Answers(node.streamPort);
  node.nestV1 = await v1Answers(node.nestPort);
});
afterAll(async () => {
  await node.nest?.close();
  await node.stream?.close();
});

/**
 * Stops a server process with SIGTERM while a client holds a connection
 * open: the server must end it, see the client end its side in turn, finish
 * its graceful close and exit 0 after printing `stopped`.
 */
async function stopWithClientConnected(server: Started, port: number, stopped: RegExp): Promise<void> {
  const held = await v1Hold(port);
  try {
    const exit = stopProcess(server);
    await held.ended;
    held.socket.end();
    const { code, signal } = await exit;
    expect({ code, signal }, server.output()).toEqual({ code: 0, signal: null });
    expect(server.output()).toMatch(stopped);
  } finally {
    held.socket.destroy();
  }
}

let pkiDir: string;
beforeAll(() => {
  pkiDir = fs.mkdtempSync(path.join(os.tmpdir(), 'occams-runtimes-'));
  const pki = testPki();
  const files = { 'ca.crt': pki.ca, 'server.key': pki.serverKey, 'server.crt': pki.serverCert, 'client.key': pki.clientKey, 'client.crt': pki.clientCert };
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(pkiDir, name), bytes);
}, 60_000); // key generation: over 20 s on a machine loaded by other work
afterAll(() => fs.rmSync(pkiDir, { recursive: true, force: true }));
afterEach(() => stopAll());

/** Runs the probe under `runtime` with the files and socket it needs. */
async function probe(runtime: RuntimeName): Promise<unknown> {
  const socket = path.join(pkiDir, `probe-${runtime}.sock`);
  const grants = { net: [`unix:${socket}`], read: [pkiDir], write: [socket] };
  const run = await runProcess(command(runtime, path.join(root, 'test/fixtures/runtimes/probe.mjs'), [], { PROBE_PKI: pkiDir, PROBE_SOCKET: socket }, grants), RUN_MS);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!);
}

it(
  'node: the probe gives the answers the other runtimes must match',
  async () => {
    expect(await probe('node')).toEqual(probeExpected);
  },
  TEST_MS,
);

describe.each(['bun', 'deno'] as const)('%s', (runtime) => {
  beforeAll(async () => {
    const v = await runProcess({ file: runtimeBinary(runtime, root), args: ['--version'], env: { NO_COLOR: '1' } }, 10_000);
    if (v.code !== 0) throw new Error(`${runtime} does not run (npm ci installs it from its platform package): ${v.stderr}`);
    expect(v.stdout).toContain(pinned[runtime]); // the pinned dev dependency, not one from PATH
    console.log(`${runtime} ${v.stdout.trim().split('\n')[0]}`);
  });

  it(
    'runs the stream-layer demo to its end',
    async () => {
      // 20,000 requests, not its 100,000: timing-sensitive suites run beside this one
      const run = await runProcess(command(runtime, dist('sample/stream-demo.js'), ['20000']), RUN_MS);
      expect(run.stderr).toBe('');
      expect(run.stdout).toMatch(/add\(2, 3\) += 5\n/);
      expect(run.stdout).toMatch(/div\(1, 0\) +-> user_error "division by zero"/);
      expect(run.stdout).toMatch(/might_fail\(-1\) +-> user_errno errno 22/);
      expect(run.stdout).toMatch(/20000 pipelined requests \(1024 in flight\): \d+ req\/s, sum 40000/);
      expect(run.stdout).toMatch(/closed cleanly\n$/);
      expect(run.code).toBe(0);
      console.log(`${runtime} stream demo: ${/\d+ req\/s/.exec(run.stdout)![0]}`);
    },
    TEST_MS,
  );

  it(
    'the stream-layer server under it answers a Node ClientStream and a raw v1 client as Node does, and stops gracefully on SIGTERM with a client connected',
    async () => {
      const server = await startProcess(command(runtime, dist('sample/stream-server.js'), [], { OCCAMS_PORT: '0' }), /stream server listening on 127\.0\.0\.1:(\d+)/);
      const port = Number(server.match[1]);
      const client = await ClientStream.connect(`127.0.0.1:${port}`, { connectTimeout: 5000 });
      try {
        expect(client.features).not.toBe(0); // the extensions were negotiated
        await expectCalculator((a, v) => client.request(a, v, { timeout: 5000 }));
      } finally {
        client.destroy();
      }
      expect(await v1Answers(port)).toEqual(node.streamV1); // a plain v1 peer gets the same bytes
      await stopWithClientConnected(server, port, /stream server stopped \(SIGTERM\)/);
    },
    TEST_MS,
  );

  it(
    'the Nest Calculator under it answers a Node OccamsClient (results, both error forms, a stream, an event) and a raw v1 client as Node does, and stops gracefully on SIGTERM with a client connected',
    async () => {
      const app = await startProcess(command(runtime, dist('sample/calculator/main.js'), [], { OCCAMS_PORT: '0' }), /calculator listening on 127\.0\.0\.1:(\d+)/);
      const port = Number(app.match[1]);
      const client = new OccamsClient({ port, timeout: 5000 });
      try {
        await expectCalculator((a, v) => firstValueFrom(client.send(a, v)));
        const errno = (await firstValueFrom(client.send('Calculator.might_fail_with_errno', -1)).catch((e: unknown) => e)) as RemoteErrnoError;
        expect(errno.message).toBe('v must be >= 0'); // errno with its message (flag 6)
        expect(await firstValueFrom(client.send('Calculator.count', 3).pipe(toArray()))).toEqual([1, 2, 3]);
        await firstValueFrom(client.emit('Calculator.log', { from: 'node' }), { defaultValue: undefined });
        let events: unknown[] = [];
        for (const until = Date.now() + 5000; events.length === 0 && Date.now() < until;) events = await firstValueFrom(client.send('Calculator.events', {}));
        expect(events).toEqual([{ from: 'node' }]);
      } finally {
        await client.close();
      }
      expect(await v1Answers(port)).toEqual(node.nestV1); // a plain v1 peer gets the same bytes
      await stopWithClientConnected(app, port, /calculator stopped \(SIGTERM\)/);
    },
    TEST_MS,
  );

  it(
    'servers in this Node process answer the stream-layer client run under it',
    async () => {
      for (const port of [node.streamPort, node.nestPort]) {
        const run = await runProcess(command(runtime, dist('sample/stream-client.js'), [`127.0.0.1:${port}`, '2000']), RUN_MS);
        expect(run.stderr).toBe('');
        expect(run.stdout).toMatch(/all answers right\n$/);
        expect(run.code).toBe(0);
      }
    },
    TEST_MS,
  );

  it(
    'TLS, mutual TLS, Unix sockets, DNS and diagnostics_channel behave as under Node',
    async () => {
      expect(await probe(runtime)).toEqual(probeExpected);
    },
    TEST_MS,
  );
});
