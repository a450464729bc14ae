/**
 * The ceiling: bare `net` sockets, a minimal [u32 len][u32 id] frame, writes
 * coalesced per tick on both sides, no window, no timers. With `codec` the
 * payload goes through the same msgpack encode/decode as ours on both sides.
 */
import net from 'node:net';
import { Packr } from 'msgpackr';
import type { BenchClient, BenchServer, BenchTransport } from '../transport.js';

const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true });

class Batcher {
  private parts: Buffer[] = [];
  private scheduled = false;
  constructor(private readonly socket: net.Socket) {}
  push(b: Buffer): void {
    this.parts.push(b);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => {
        this.scheduled = false;
        const parts = this.parts;
        this.parts = [];
        this.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
      });
    }
  }
}

function frame(id: number, body: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(8 + body.length);
  b.writeUInt32LE(body.length, 0);
  b.writeUInt32LE(id, 4);
  b.set(body, 8);
  return b;
}

function reader(onFrame: (id: number, body: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer | undefined;
  return (chunk) => {
    let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 8) {
      const len = buf.readUInt32LE(off);
      if (buf.length - off - 8 < len) break;
      onFrame(buf.readUInt32LE(off + 4), buf.subarray(off + 8, off + 8 + len));
      off += 8 + len;
    }
    pending = off < buf.length ? buf.subarray(off) : undefined;
    buf = undefined as unknown as Buffer;
  };
}

export function limitTransport(name: string, codec: boolean): BenchTransport {
  return {
    name,
    async serve(): Promise<BenchServer> {
      const server = net.createServer((socket) => {
        socket.setNoDelay(true);
        const out = new Batcher(socket);
        socket.on(
          'data',
          reader((id, body) => out.push(frame(id, codec ? packr.pack(packr.unpack(body)) : body))),
        );
        socket.on('error', () => {});
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
    },
    async connect(port: number): Promise<BenchClient> {
      const socket = net.connect(port, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      socket.setNoDelay(true);
      const out = new Batcher(socket);
      const pending = new Map<number, (v: unknown) => void>();
      let nextId = 1;
      let raw: Buffer | undefined;
      socket.on(
        'data',
        reader((id, body) => {
          const resolve = pending.get(id)!;
          pending.delete(id);
          resolve(codec ? packr.unpack(body) : body);
        }),
      );
      return {
        call(payload: unknown) {
          const id = nextId++ >>> 0;
          const body = codec ? packr.pack(payload) : (raw ??= Buffer.from(packr.pack(payload)));
          out.push(frame(id, body));
          return new Promise((resolve) => pending.set(id, resolve));
        },
        async close() {
          socket.destroy();
        },
      };
    },
  };
}
