/**
 * What the Rust crate (occams-rpc 0.2.1, razor-rpc 0.3) speaks, against
 * stand-ins written here byte by byte from what it was observed to do
 * (issue 13): 64-bit integers as uint64/int64, `rpc_service_notfound` for
 * an unknown service, and `rpc_decode` as its answer to HELLO (any numeric
 * action it does not know). Frames are built and parsed here by hand, not
 * with lib/protocol.
 */
import 'reflect-metadata';

import net from 'node:net';

import type { INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { ClientStream } from '../lib/client/client-stream.js';
import { FailoverPool } from '../lib/client/failover-pool.js';
import type { OccamsError } from '../lib/errors.js';
import { OccamsServer } from '../lib/nest/occams-server.js';
import { MethodDispatch } from '../lib/server/method-dispatch.js';
import { RpcServer } from '../lib/server/rpc-server.js';
import type { TcpAddress } from '../lib/transport/address.js';
import { CalculatorModule } from '../sample/calculator/calculator.module.js';
import { MemoryLogger, rawConnect, waitFor } from './support/servers.js';

const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');
const T = 'cf 00 00 01 8b cf e5 68 00'; // 1,700,000,000,000
const N = 'd3 ff ff ff fe d5 fa 0e 00'; // -5,000,000,000
const TWO_32 = 'cf 00 00 00 01 00 00 00 00';
/** What the Rust server answers to HELLO (seq 1): flag 2, msg_len 0, blob_len 10, `rpc_decode`. */
const RPC_DECODE_SEQ1 = hex('25 4d 01 02  00 00 00 00  01 00 00 00 00 00 00 00  0a 00 00 00  72 70 63 5f 64 65 63 6f 64 65');

interface V1Request {
  format: number;
  action: number | string;
  seq: bigint;
  msg: Buffer;
}
interface V1Response {
  flag: number;
  seq: number;
  msg: Buffer;
  blob: Buffer;
}

/** Request header: magic, ver, format, action (high bit: string length), seq u64, client_id u64, msg_len, blob_len. */
function v1Request(seq: number, action: string, msg: Buffer): Buffer {
  const a = Buffer.from(action);
  const h = Buffer.alloc(32);
  h.writeUInt16LE(19749, 0);
  h[2] = 1;
  h.writeUInt32LE((0x80000000 | a.length) >>> 0, 4);
  h.writeBigUInt64LE(BigInt(seq), 8);
  h.writeBigUInt64LE(7n, 16);
  h.writeUInt32LE(msg.length, 24);
  return Buffer.concat([h, a, msg]);
}

/** Response header: magic, ver, flag, msg_len (flag 1: the errno), seq u64, blob_len i32. */
function v1Response(flag: number, seq: bigint, msg: Buffer, blob: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16LE(19749, 0);
  h[2] = 1;
  h[3] = flag;
  h.writeUInt32LE(msg.length, 4);
  h.writeBigUInt64LE(seq, 8);
  h.writeInt32LE(blob.length, 16);
  return Buffer.concat([h, msg, blob]);
}

/** Splits a byte stream into whole frames; `header` is 32 (requests) or 20 (responses). */
function frames<F>(header: number, bodyLength: (b: Buffer) => number, parse: (frame: Buffer) => F, onFrame: (f: F) => void) {
  let pending = Buffer.alloc(0);
  return (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= header && pending.length >= header + bodyLength(pending)) {
      const size = header + bodyLength(pending);
      onFrame(parse(pending.subarray(0, size)));
      pending = pending.subarray(size);
    }
  };
}
const requestFrames = (onFrame: (r: V1Request) => void) =>
  frames(
    32,
    (b) => (b.readUInt32LE(4) >= 0x80000000 ? b.readUInt32LE(4) & 0x7fffffff : 0) + b.readUInt32LE(24) + b.readUInt32LE(28),
    (f) => {
      const raw = f.readUInt32LE(4);
      const actionLen = raw >= 0x80000000 ? raw & 0x7fffffff : 0;
      const action = raw >= 0x80000000 ? f.toString('utf8', 32, 32 + actionLen) : raw;
      return { format: f[3]!, action, seq: f.readBigUInt64LE(8), msg: Buffer.from(f.subarray(32 + actionLen, 32 + actionLen + f.readUInt32LE(24))) };
    },
    onFrame,
  );
const responseFrames = (onFrame: (r: V1Response) => void) =>
  frames(
    20,
    (b) => (b[3] === 1 ? 0 : b.readUInt32LE(4)) + b.readInt32LE(16),
    (f) => {
      const msgLen = f[3] === 1 ? 0 : f.readUInt32LE(4);
      return { flag: f[3]!, seq: Number(f.readBigUInt64LE(8)), msg: Buffer.from(f.subarray(20, 20 + msgLen)), blob: Buffer.from(f.subarray(20 + msgLen)) };
    },
    onFrame,
  );

type HelloAnswer = 'rpc_decode' | 'rpc_method_notfound' | 'hang-up';

/**
 * A stand-in for the Rust crate's server: a PING gets an empty ok; any other
 * numeric action (our HELLO) gets `hello` (the crate: flag 2 `rpc_decode`);
 * a string action gets `answer(action, msg)` as an ok msg.
 */
async function rustLikeServer(hello: HelloAnswer, answer: (action: string, msg: Buffer) => Buffer) {
  const seen = {
    connections: 0,
    hellos: [] as number[],
    helloAnswers: [] as Buffer[],
    requests: [] as { connection: number; action: string; msg: Buffer }[],
    formats: [] as number[],
  };
  const server = net.createServer((socket) => {
    const connection = seen.connections++;
    socket.on('error', () => {});
    socket.on(
      'data',
      requestFrames((req) => {
        if (req.action === 0) return void socket.write(v1Response(0, req.seq, Buffer.alloc(0), Buffer.alloc(0)));
        if (typeof req.action === 'number') {
          seen.hellos.push(connection);
          if (hello === 'hang-up') return void socket.destroy();
          const frame = v1Response(2, req.seq, Buffer.alloc(0), Buffer.from(hello));
          seen.helloAnswers.push(frame);
          return void socket.write(frame);
        }
        seen.requests.push({ connection, action: req.action, msg: req.msg });
        seen.formats.push(req.format);
        socket.write(v1Response(0, req.seq, answer(req.action, req.msg), Buffer.alloc(0)));
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, seen, port: (server.address() as net.AddressInfo).port };
}

const catchErr = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: OccamsError) => e,
  );

describe('a client against a server that answers like the Rust crate', () => {
  const cases: [HelloAnswer, number][] = [
    ['rpc_decode', 1], // what the crate answers: same connection, plain v1
    ['rpc_method_notfound', 1],
    ['hang-up', 2], // dialled again, without HELLO
  ];
  for (const [hello, connections] of cases) {
    it(`HELLO answered with ${hello}: plain v1 on ${connections} connection(s), 64-bit integers both ways`, async () => {
      const rust = await rustLikeServer(hello, (_action, msg) => msg); // echo
      const client = await ClientStream.connect({ host: '127.0.0.1', port: rust.port });
      try {
        expect(client.features).toBe(0);
        expect(rust.seen.connections).toBe(connections);
        expect(rust.seen.hellos).toEqual([0]); // HELLO once, on the first connection only
        if (hello === 'rpc_decode') expect(rust.seen.helloAnswers).toEqual([RPC_DECODE_SEQ1]);
        const value = [1_700_000_000_000, -5_000_000_000, 2 ** 32];
        expect(await client.request('Echo.ints', value)).toEqual(value);
        expect(rust.seen.requests).toEqual([{ connection: connections - 1, action: 'Echo.ints', msg: hex(`93 ${T} ${N} ${TWO_32}`) }]);
        expect(client.stats.state).toBe('ready');
      } finally {
        client.destroy();
        rust.server.close();
      }
    });
  }

  it('decodes what rmp-serde sends: u64 and i64 fields, one beyond 2^53 as BigInt', async () => {
    // struct { id: u64, max: u64, list: Vec<i64> } encoded by rmp_serde::to_vec_named
    const reply = hex(`83 a2 6964 ${T}  a3 6d6178 cf ff ff ff ff ff ff ff ff  a4 6c697374 92 ${N} 05`);
    const rust = await rustLikeServer('rpc_decode', () => reply);
    const client = await ClientStream.connect({ host: '127.0.0.1', port: rust.port });
    try {
      expect(await client.request('Clock.now', null)).toEqual({ id: 1_700_000_000_000, max: 2n ** 64n - 1n, list: [-5_000_000_000, 5] });
    } finally {
      client.destroy();
      rust.server.close();
    }
  });
});

describe('what a plain v1 server (the Rust crate) gets, as docs/PROTOCOL.md says', () => {
  it("an event ({ event: true }) goes as an ordinary request and resolves with the server's answer (v1 has no events)", async () => {
    const rust = await rustLikeServer('rpc_decode', () => hex('a2 6f6b')); // "ok"
    const client = await ClientStream.connect({ host: '127.0.0.1', port: rust.port });
    try {
      expect(await client.request('Audit.log', 'entry', { event: true })).toBe('ok');
      expect(rust.seen.requests).toEqual([{ connection: 0, action: 'Audit.log', msg: hex('a5 656e747279') }]);
    } finally {
      client.destroy();
      rust.server.close();
    }
  });

  it('no deadline header (it negotiated no FEATURE_DEADLINE): not under the default timeout, a per-call one, nor through a pool', async () => {
    const rust = await rustLikeServer('rpc_decode', () => hex('c0'));
    const address = { host: '127.0.0.1', port: rust.port };
    const client = await ClientStream.connect(address, { timeout: 5_000 });
    const pool = new FailoverPool([address, address], { timeout: 5_000 });
    try {
      await client.request('Echo.a', 1);
      await client.request('Echo.b', 2, { timeout: 1_000 });
      await pool.request('Echo.c', 3);
      await pool.request('Echo.d', 4, { timeout: 1_000 });
      expect(rust.seen.requests.map((r) => [r.action, r.msg])).toEqual([
        ['Echo.a', hex('01')],
        ['Echo.b', hex('02')],
        ['Echo.c', hex('03')],
        ['Echo.d', hex('04')],
      ]);
      expect(rust.seen.formats).toEqual([0, 0, 0, 0]);
    } finally {
      client.destroy();
      pool.destroy();
      rust.server.close();
    }
  });

  it('-0 goes out as the integer 0 (a Rust f64 field reads +0.0), 0.5 and -1.5 as float64', async () => {
    const rust = await rustLikeServer('rpc_decode', () => hex('c0'));
    const client = await ClientStream.connect({ host: '127.0.0.1', port: rust.port });
    try {
      await client.request('Geo.at', [-0, 0.5, -1.5]);
      expect(rust.seen.requests[0]!.msg).toEqual(hex('93 00 cb 3fe0000000000000 cb bff8000000000000'));
    } finally {
      client.destroy();
      rust.server.close();
    }
  });
});

describe('the Nest server to a plain v1 client, as the Rust crate calls it', () => {
  let app: INestMicroservice;
  let strategy: OccamsServer;
  let port: number;
  beforeAll(async () => {
    strategy = new OccamsServer({ port: 0 });
    app = await NestFactory.createMicroservice(CalculatorModule, { strategy, logger: false });
    await app.listen();
    port = (strategy.address as { port: number }).port;
  });
  afterAll(() => app.close());

  /** Sends the requests on one raw connection, returns the responses by seq. */
  async function call(requests: [string, Buffer][]): Promise<Map<number, V1Response>> {
    const socket = await rawConnect(port);
    const bySeq = new Map<number, V1Response>();
    socket.on(
      'data',
      responseFrames((r) => bySeq.set(r.seq, r)),
    );
    socket.write(Buffer.concat(requests.map(([action, msg], i) => v1Request(i + 1, action, msg))));
    try {
      await waitFor(() => bySeq.size === requests.length);
    } finally {
      socket.destroy();
    }
    return bySeq;
  }

  it('reads and writes whole numbers beyond 32 bits as uint64 / int64', async () => {
    const r = await call([
      ['Calculator.add', hex(`92 ${T} 01`)],
      ['Calculator.add', hex(`92 ${N} 00`)],
      ['Calculator.add', hex(`92 ce ff ff ff ff 01`)],
      ['Calculator.add', hex('92 cb 3f f8 00 00 00 00 00 00 01')], // 1.5 + 1
    ]);
    expect(r.get(1)).toMatchObject({ flag: 0, msg: hex('cf 00 00 01 8b cf e5 68 01') });
    expect(r.get(2)).toMatchObject({ flag: 0, msg: hex(N) });
    expect(r.get(3)).toMatchObject({ flag: 0, msg: hex(TWO_32) });
    expect(r.get(4)).toMatchObject({ flag: 0, msg: hex('cb 40 04 00 00 00 00 00 00') });
  });

  it('rpc_method_notfound for a missing method of a known service, rpc_service_notfound for an unknown service', async () => {
    const r = await call([
      ['Calculator.nope', hex('01')],
      ['Nope.x', hex('01')],
      ['nope', hex('01')], // not of the Service.method form
      ['Calculator.add', hex('92 01 02')],
    ]);
    expect([1, 2, 3, 4].map((seq) => [r.get(seq)!.flag, r.get(seq)!.blob.toString()])).toEqual([
      [2, 'rpc_method_notfound'],
      [2, 'rpc_service_notfound'],
      [2, 'rpc_method_notfound'],
      [0, ''],
    ]);
  });

  it('a handler added later makes its service known', async () => {
    expect((await call([['Later.y', hex('01')]])).get(1)!.blob.toString()).toBe('rpc_service_notfound');
    strategy.addHandler('Later.x', async (v: number) => v + 1);
    const r = await call([
      ['Later.y', hex('01')],
      ['Later.x', hex('01')],
    ]);
    expect(r.get(1)!.blob.toString()).toBe('rpc_method_notfound');
    expect(r.get(2)).toMatchObject({ flag: 0, msg: hex('02') });
  });
});

describe('MethodDispatch (the stream layer without Nest)', () => {
  it('tells a missing method from a missing service, and learns services added later', async () => {
    const logger = new MemoryLogger();
    const dispatch = new MethodDispatch({ 'Calc.add': ([a, b]: [number, number]) => a + b, echo: (m: unknown) => m }, logger);
    const server = new RpcServer(dispatch, { logger });
    const address = (await server.listen()) as TcpAddress;
    const client = await ClientStream.connect(address);
    try {
      expect((await catchErr(client.request('Calc.nope', 1))).code).toBe('rpc_method_notfound');
      expect((await catchErr(client.request('Later.y', 1))).code).toBe('rpc_service_notfound');
      expect((await catchErr(client.request('nope', 1))).code).toBe('rpc_method_notfound');
      dispatch.add('Later.x', (v: number) => v + 1);
      expect((await catchErr(client.request('Later.y', 1))).code).toBe('rpc_method_notfound');
      expect(await client.request('Later.x', 1)).toBe(2);
    } finally {
      client.destroy();
      await server.close();
    }
  });
});
