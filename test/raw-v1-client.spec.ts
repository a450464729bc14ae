/**
 * A plain occams v1 client written from the reference tables alone (no code
 * from lib/), calling the Calculator sample the way the Rust crate would.
 */
import 'reflect-metadata';

import net from 'node:net';

import type { INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Packr } from 'msgpackr';

import { OccamsServer } from '../lib/nest/occams-server.js';
import { CalculatorModule } from '../sample/calculator/calculator.module.js';

const msgpack = new Packr({ useRecords: false });

interface V1Response {
  flag: number;
  seq: number;
  value?: unknown;
  errno?: number;
  errorBytes?: string;
}

/** Request: 32-byte header (magic, ver, format, action|0x80000000 len, seq u64, client_id u64, msg_len, blob_len). */
function request(seq: number, action: string, value: unknown): Buffer {
  const act = Buffer.from(action, 'utf8');
  const msg = msgpack.pack(value);
  const h = Buffer.alloc(32);
  h.writeUInt16LE(19749, 0);
  h.writeUInt8(1, 2);
  h.writeUInt8(0, 3);
  h.writeUInt32LE((0x80000000 | act.length) >>> 0, 4);
  h.writeBigUInt64LE(BigInt(seq), 8);
  h.writeBigUInt64LE(0xdeadbeefn, 16);
  h.writeUInt32LE(msg.length, 24);
  h.writeUInt32LE(0, 28);
  return Buffer.concat([h, act, msg]);
}

/** Response: 20-byte header (magic, ver, flag, msg_len, seq u64, blob_len i32), then msg, then blob. */
function parse(buf: Buffer): { frames: V1Response[]; rest: Buffer } {
  const frames: V1Response[] = [];
  let off = 0;
  while (buf.length - off >= 20) {
    expect(buf.readUInt16LE(off)).toBe(19749);
    expect(buf[off + 2]).toBe(1);
    const flag = buf[off + 3]!;
    const msgLen = buf.readUInt32LE(off + 4);
    const seq = Number(buf.readBigUInt64LE(off + 8));
    const blobLen = buf.readInt32LE(off + 16);
    const bodyLen = (flag === 1 ? 0 : msgLen) + blobLen;
    if (buf.length - off - 20 < bodyLen) break;
    const body = buf.subarray(off + 20, off + 20 + bodyLen);
    expect([0, 1, 2]).toContain(flag); // a v1 peer must only ever see these
    if (flag === 0) frames.push({ flag, seq, value: msgLen ? msgpack.unpack(body.subarray(0, msgLen)) : undefined });
    if (flag === 1) frames.push({ flag, seq, errno: msgLen });
    if (flag === 2) frames.push({ flag, seq, errorBytes: body.subarray(0, blobLen).toString('utf8') });
    off += 20 + bodyLen;
  }
  return { frames, rest: buf.subarray(off) };
}

describe('a raw occams v1 client against the Calculator sample', () => {
  let app: INestMicroservice;
  let port: number;
  beforeAll(async () => {
    const strategy = new OccamsServer({ port: 0 });
    app = await NestFactory.createMicroservice(CalculatorModule, { strategy, logger: false });
    await app.listen();
    port = (strategy.address as { port: number }).port;
  });
  afterAll(() => app.close());

  it('calls add, div, might_fail_with_errno, count and a ping, matching by seq', async () => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const frames: V1Response[] = [];
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      const out = parse(Buffer.concat([pending, c]));
      frames.push(...out.frames);
      pending = out.rest;
    });
    const ping = Buffer.alloc(32);
    ping.writeUInt16LE(19749, 0);
    ping.writeUInt8(1, 2);
    ping.writeBigUInt64LE(8n, 8);
    socket.write(
      Buffer.concat([
        request(1, 'Calculator.add', [2, 3]),
        request(2, 'Calculator.div', [7, 2]),
        request(3, 'Calculator.div', [1, 0]),
        request(4, 'Calculator.might_fail_with_errno', 21),
        request(5, 'Calculator.might_fail_with_errno', -1),
        request(6, 'Calculator.count', 3),
        request(7, 'Calculator.nope', 1),
        ping,
      ]),
    );
    const until = Date.now() + 5000;
    while (frames.length < 8 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    socket.destroy();
    const bySeq = new Map(frames.map((f) => [f.seq, f]));
    expect(bySeq.get(1)).toEqual({ flag: 0, seq: 1, value: 5 });
    expect(bySeq.get(2)).toEqual({ flag: 0, seq: 2, value: 3 });
    expect(bySeq.get(3)).toEqual({ flag: 2, seq: 3, errorBytes: 'division by zero' });
    expect(bySeq.get(4)).toEqual({ flag: 0, seq: 4, value: 42 });
    expect(bySeq.get(5)).toEqual({ flag: 1, seq: 5, errno: 22 });
    expect(bySeq.get(6)).toEqual({ flag: 0, seq: 6, value: 3 }); // a stream collapses to its last value
    expect(bySeq.get(7)).toEqual({ flag: 2, seq: 7, errorBytes: 'rpc_method_notfound' });
    expect(bySeq.get(8)).toEqual({ flag: 0, seq: 8, value: undefined });
    expect(frames).toHaveLength(8);
  });
});
