/**
 * The bare reference as it stood before this session (commit e664e10), kept
 * so an A/B shows what the change to bench/transports/limit.ts did:
 * bodies packed by msgpackr into its own buffer (a fresh one, 4x the room,
 * every few large values), a tick's frames joined with Buffer.concat while
 * small, written corked (one writev of header and body views) once large.
 */
import net from 'node:net';

import { Packr } from 'msgpackr';

import type { BenchClient, BenchServer, BenchTransport } from '../transport.js';

const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, mapsAsObjects: true, moreTypes: false, bundleStrings: false, structuredClone: false });

/** A tick's frames up to this many bytes are joined into one buffer (one copy of small bodies); beyond, written corked. */
const JOIN_BELOW = 64 * 1024;

class Batcher {
  private parts: Uint8Array[] = [];
  private bytes = 0;
  private scheduled = false;
  private readonly flush = (): void => {
    this.scheduled = false;
    const parts = this.parts;
    const socket = this.socket;
    this.parts = [];
    if (this.bytes <= JOIN_BELOW) socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.bytes));
    else {
      socket.cork();
      for (const part of parts) socket.write(part);
      socket.uncork();
    }
    this.bytes = 0;
  };
  constructor(private readonly socket: net.Socket) {}
  push(id: number, body: Uint8Array): void {
    const head = Buffer.allocUnsafe(8);
    head.writeUInt32LE(body.length, 0);
    head.writeUInt32LE(id, 4);
    this.parts.push(head, body);
    this.bytes += 8 + body.length;
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flush);
    }
  }
}

/** Frames out of a byte stream: views of the read when whole in it, else one copy into a buffer of the frame's size. */
function reader(onFrame: (id: number, body: Buffer) => void): (chunk: Buffer) => void {
  const head = Buffer.allocUnsafe(8);
  let headFill = 0;
  let id = 0;
  let body: Buffer | undefined;
  let bodyFill = 0;
  return (chunk) => {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (body !== undefined) {
        const n = Math.min(body.length - bodyFill, len - off);
        chunk.copy(body, bodyFill, off, off + n);
        bodyFill += n;
        off += n;
        if (bodyFill === body.length) {
          const whole = body;
          body = undefined;
          onFrame(id, whole);
        }
        continue;
      }
      if (headFill === 0 && len - off >= 8) {
        const size = chunk.readUInt32LE(off);
        const frameId = chunk.readUInt32LE(off + 4);
        off += 8;
        if (len - off >= size) {
          onFrame(frameId, chunk.subarray(off, off + size));
          off += size;
        } else {
          id = frameId;
          body = Buffer.allocUnsafe(size);
          bodyFill = 0;
        }
        continue;
      }
      const n = Math.min(8 - headFill, len - off);
      chunk.copy(head, headFill, off, off + n);
      headFill += n;
      off += n;
      if (headFill === 8) {
        headFill = 0;
        id = head.readUInt32LE(4);
        body = Buffer.allocUnsafe(head.readUInt32LE(0));
        bodyFill = 0;
        if (body.length === 0) {
          body = undefined;
          onFrame(id, Buffer.alloc(0));
        }
      }
    }
  };
}

export function limitBeforeTransport(name: string, codec: boolean): BenchTransport {
  return {
    name,
    async serve(): Promise<BenchServer> {
      const server = net.createServer((socket) => {
        socket.setNoDelay(true);
        const out = new Batcher(socket);
        socket.on(
          'data',
          reader((id, body) => out.push(id, codec ? packr.pack(packr.unpack(body)) : body)),
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
      let raw: Uint8Array | undefined;
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
          out.push(id, body);
          return new Promise((resolve) => pending.set(id, resolve));
        },
        async close() {
          socket.destroy();
        },
      };
    },
  };
}
