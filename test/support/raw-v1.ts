/**
 * A plain occams v1 exchange over a raw socket, from the reference tables
 * (as test/raw-v1-client.spec.ts): no HELLO, so the server must answer in
 * v1 only. Returns the response frames as sent, for byte comparisons.
 */
import net from 'node:net';

import { Packr } from 'msgpackr';

const msgpack = new Packr({ useRecords: false });
const MAGIC = 19749;

/** Request: 32-byte header (magic, ver, format, action|0x80000000 len, seq u64, client_id u64, msg_len, blob_len), action, msg. */
export function v1Request(seq: number, action: string, value: unknown): Buffer {
  const act = Buffer.from(action, 'utf8');
  const msg = msgpack.pack(value);
  const h = Buffer.alloc(32);
  h.writeUInt16LE(MAGIC, 0);
  h.writeUInt8(1, 2);
  h.writeUInt32LE((0x80000000 | act.length) >>> 0, 4);
  h.writeBigUInt64LE(BigInt(seq), 8);
  h.writeBigUInt64LE(0xdeadbeefn, 16);
  h.writeUInt32LE(msg.length, 24);
  return Buffer.concat([h, act, msg]);
}

/** A ping: a request header with no action. */
export function v1Ping(seq: number): Buffer {
  const h = Buffer.alloc(32);
  h.writeUInt16LE(MAGIC, 0);
  h.writeUInt8(1, 2);
  h.writeBigUInt64LE(BigInt(seq), 8);
  return h;
}

/** Splits response frames (20-byte header: magic, ver, flag, msg_len, seq u64, blob_len i32; flag 1 carries the errno in msg_len). */
function splitResponses(buf: Buffer): { frames: Buffer[]; rest: Buffer } {
  const frames: Buffer[] = [];
  let off = 0;
  while (buf.length - off >= 20) {
    const flag = buf[off + 3]!;
    const body = (flag === 1 ? 0 : buf.readUInt32LE(off + 4)) + buf.readInt32LE(off + 16);
    if (buf.length - off - 20 < body) break;
    frames.push(buf.subarray(off, off + 20 + body));
    off += 20 + body;
  }
  return { frames, rest: buf.subarray(off) };
}

/** Sends `requests` in one write and collects `count` response frames (within `ms`), sorted by seq. */
export async function v1Exchange(port: number, requests: Buffer[], count: number, ms = 5000): Promise<Buffer[]> {
  const socket = net.connect(port, '127.0.0.1');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const frames: Buffer[] = [];
    let pending = Buffer.alloc(0);
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${frames.length} of ${count} v1 responses within ${ms} ms`)), ms);
      socket.on('data', (chunk: Buffer) => {
        const out = splitResponses(Buffer.concat([pending, chunk]));
        frames.push(...out.frames);
        pending = Buffer.from(out.rest);
        if (frames.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    socket.write(Buffer.concat(requests));
    await done;
    return frames.sort((a, b) => Number(a.readBigUInt64LE(8) - b.readBigUInt64LE(8)));
  } finally {
    socket.destroy();
  }
}

/**
 * A plain v1 connection that has been answered once (a ping) and stays open;
 * `ended` resolves when the server ends it (its FIN), within `ms`.
 */
export async function v1Hold(port: number, ms = 10_000): Promise<{ socket: net.Socket; ended: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(v1Ping(1));
  await new Promise((resolve) => socket.once('data', resolve));
  const ended = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not end the connection within ${ms} ms`)), ms);
    socket.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume();
  });
  return { socket, ended };
}
