/**
 * The ceiling: bare `net` sockets, a minimal [u32 len][u32 id] frame, writes
 * coalesced per tick on both sides, no window, no timers. With `codec` the
 * payload goes through msgpackr with the options of our plain codec on both
 * sides. Written as a good engineer would, for large bodies too:
 * - frames are accumulated without re-concatenating: a frame whole in a read
 *   is a view of it; one that spans reads is copied once, into a buffer of
 *   its own size (as lib/protocol/frame-decoder.ts, undici, grpc-js do);
 * - values are packed into one reused buffer (msgpackr's `useBuffer`):
 *   `packr.pack` alone writes into a buffer of msgpackr's own, replaced by a
 *   fresh one 4x the room every few large values, each fresh buffer external
 *   memory that sets off a GC (bench/results/large-values.md);
 * - a tick's frames are written at fixed offsets into a 256 KiB arena, one
 *   socket write per tick; an arena is reused once the socket has written
 *   it (no allocation in steady traffic, no concat); a frame too large for
 *   an arena (1 MiB) gets a buffer of its own size, one copy of its body;
 * - the client keeps the resolvers of its calls in a ring indexed by the
 *   call id, not a Map (see PendingCalls: a Map churning integer keys made
 *   this client keep and promote every reply it decoded, 3-5x its CPU per
 *   call; bench/results/reference-gc.md).
 */
import net from 'node:net';

import { Packr, Unpackr } from 'msgpackr';

import type { BenchClient, BenchServer, BenchTransport } from '../transport.js';

const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, mapsAsObjects: true, moreTypes: false, bundleStrings: false, structuredClone: false });

/** Size of a write arena; a frame larger than this is written from a buffer of its own. */
const ARENA_SIZE = 256 * 1024;
/** Arenas kept for reuse per connection. */
const MAX_SPARE = 8;

/** Where values are packed (msgpackr's useBuffer), grown to 3x the largest value (msgpackr's room for a string) plus slack. */
let scratch = Buffer.allocUnsafeSlow(64 * 1024);
/** `value` packed: bytes valid until the next call (the caller copies them into a frame at once). */
function pack(value: unknown): Uint8Array {
  packr.useBuffer(scratch);
  const out = packr.pack(value);
  if (out.buffer !== scratch.buffer) scratch = Buffer.allocUnsafeSlow(Math.ceil((out.length * 3 + 1024) / 65536) * 65536); // outgrew it: msgpackr moved to a buffer of its own; next time it fits
  return out;
}

/** A write buffer and the socket writes still reading from it. */
interface Arena {
  buf: Buffer;
  writes: number;
  retired: boolean;
  written: () => void;
}

/** Frames of a tick written into a reused arena, one socket write per tick. */
class Batcher {
  private readonly spare: Arena[] = [];
  private current: Arena;
  /** first byte not yet handed to the socket */
  private start = 0;
  /** first free byte */
  private pos = 0;
  private scheduled = false;
  private readonly flushOnTick = (): void => {
    this.scheduled = false;
    this.flush();
  };
  constructor(private readonly socket: net.Socket) {
    this.current = this.arena(ARENA_SIZE);
  }
  private arena(size: number): Arena {
    const reused = size === ARENA_SIZE ? this.spare.pop() : undefined;
    if (reused !== undefined) {
      reused.retired = false;
      return reused;
    }
    const a: Arena = {
      buf: Buffer.allocUnsafe(size),
      writes: 0,
      retired: false,
      written: () => {
        if (--a.writes === 0 && a.retired) this.recycle(a);
      },
    };
    return a;
  }
  private recycle(a: Arena): void {
    if (a.buf.length === ARENA_SIZE && this.spare.length < MAX_SPARE) this.spare.push(a);
  }
  private flush(): void {
    if (this.pos === this.start) return;
    const a = this.current;
    a.writes++;
    this.socket.write(a.buf.subarray(this.start, this.pos), a.written);
    this.start = this.pos;
  }
  push(id: number, body: Uint8Array): void {
    const size = 8 + body.length;
    if (this.current.buf.length - this.pos < size) {
      this.flush();
      const old = this.current;
      old.retired = true;
      if (old.writes === 0) this.recycle(old);
      this.current = this.arena(Math.max(ARENA_SIZE, size));
      this.start = 0;
      this.pos = 0;
    }
    const buf = this.current.buf;
    buf.writeUInt32LE(body.length, this.pos);
    buf.writeUInt32LE(id, this.pos + 4);
    buf.set(body, this.pos + 8);
    this.pos += size;
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushOnTick);
    }
  }
}

type Resolve = (value: unknown) => void;

/**
 * Resolvers of the calls in flight by id: a ring indexed by the id's low
 * bits (ids are handed out in order), doubled when a new id finds its slot
 * still taken; an entry is cleared as its reply arrives.
 *
 * Not a `Map`: V8 rebuilds a Map's table once deleted keys fill it (every
 * `size` calls here) and the table it leaves keeps the entries it held,
 * pointing to the new one; once the live table has reached the old
 * generation, each rebuilt one is allocated there too. Those dead old tables
 * are roots for every scavenge until the next mark-compact, so each resolver
 * they held, its promise and the value it was fulfilled with (the decoded
 * reply) survive and are promoted: 70-150 µs of GC per call at 16 KiB x64,
 * 5-6 µs at small x1024, where the ring costs 20 and 2
 * (bench/results/reference-gc.md).
 */
class PendingCalls {
  private resolvers: (Resolve | undefined)[];
  private ids: Uint32Array;
  private mask: number;
  constructor(slots = 1024) {
    this.resolvers = new Array<Resolve | undefined>(slots).fill(undefined);
    this.ids = new Uint32Array(slots);
    this.mask = slots - 1;
  }
  add(id: number, resolve: Resolve): void {
    while (this.resolvers[id & this.mask] !== undefined) this.grow();
    this.resolvers[id & this.mask] = resolve;
    this.ids[id & this.mask] = id;
  }
  /** The resolver of call `id`, removed; undefined when no such call is in flight. */
  take(id: number): Resolve | undefined {
    const i = id & this.mask;
    const resolve = this.resolvers[i];
    if (resolve === undefined || this.ids[i] !== id) return undefined;
    this.resolvers[i] = undefined;
    return resolve;
  }
  /** Doubles the ring until every call in flight has a slot of its own. */
  private grow(): void {
    for (let slots = this.resolvers.length * 2; ; slots *= 2) {
      const resolvers = new Array<Resolve | undefined>(slots).fill(undefined);
      const ids = new Uint32Array(slots);
      const mask = slots - 1;
      let fits = true;
      for (let i = 0; fits && i < this.resolvers.length; i++) {
        const resolve = this.resolvers[i];
        if (resolve === undefined) continue;
        const j = this.ids[i]! & mask;
        if (resolvers[j] !== undefined) fits = false;
        resolvers[j] = resolve;
        ids[j] = this.ids[i]!;
      }
      if (fits) {
        this.resolvers = resolvers;
        this.ids = ids;
        this.mask = mask;
        return;
      }
    }
  }
}

/** The Map this client used before (52ae958), kept only for the A/B of bench/results/reference-gc.md (transport limit-msgpack-map). */
class PendingMap {
  private readonly map = new Map<number, Resolve>();
  add(id: number, resolve: Resolve): void {
    this.map.set(id, resolve);
  }
  take(id: number): Resolve | undefined {
    const resolve = this.map.get(id);
    this.map.delete(id);
    return resolve;
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

/**
 * The one buffer the `reads: 'shared'` variant reads every socket into (Node's onread mode: no allocation per
 * read); a frame whole in a read is a view of it, good until the read callback returns, so its values are
 * decoded with bins copied out. The client takes net.connect's public `onread` option; Node has none for
 * accepted sockets, so the server sets the same slots by name (as lib/transport/socket-reads.ts does).
 */
const readBuffer = Buffer.allocUnsafeSlow(64 * 1024);
const copyingUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false, bundleStrings: false, structuredClone: false, copyBuffers: true });

function readShared(socket: net.Socket, onChunk: (chunk: Buffer) => void): void {
  const s = socket as net.Socket & Record<symbol, unknown> & { _handle: { useUserBuffer(b: Uint8Array): void } };
  const slot = (name: string) => Object.getOwnPropertySymbols(s).find((k) => k.description === name)!;
  s[slot('kBuffer')] = readBuffer;
  s[slot('kBufferCb')] = (n: number, buf: Buffer) => onChunk(buf.subarray(0, n));
  s._handle.useUserBuffer(readBuffer);
}

/**
 * `pendingIn`: 'map' only for the A/B against the Map the client used before. `reads`: 'data' (a fresh
 * buffer per read, Node's default) or 'shared' (every read into one buffer, as our library reads).
 */
export function limitTransport(name: string, codec: boolean, pendingIn: 'ring' | 'map' = 'ring', reads: 'data' | 'shared' = 'data'): BenchTransport {
  const unpack = reads === 'shared' ? (b: Buffer) => copyingUnpackr.unpack(b) : (b: Buffer) => packr.unpack(b);
  return {
    name,
    async serve(): Promise<BenchServer> {
      const server = net.createServer((socket) => {
        socket.setNoDelay(true);
        const out = new Batcher(socket);
        const onChunk = reader((id, body) => out.push(id, codec ? pack(unpack(body)) : body));
        if (reads === 'shared') readShared(socket, onChunk);
        else socket.on('data', onChunk);
        socket.on('error', () => {});
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
    },
    async connect(port: number): Promise<BenchClient> {
      const pending = pendingIn === 'ring' ? new PendingCalls() : new PendingMap();
      const onChunk = reader((id, body) => {
        // (raw bodies out of the shared buffer are copied: the caller keeps them)
        pending.take(id)?.(codec ? unpack(body) : reads === 'shared' ? Buffer.from(body) : body);
      });
      const socket = net.connect({
        port,
        host: '127.0.0.1',
        ...(reads === 'shared' ? { onread: { buffer: readBuffer, callback: (n: number, buf: Uint8Array) => (onChunk(Buffer.from(buf.buffer, buf.byteOffset, n)), true) } } : {}),
      });
      await new Promise((r) => socket.once('connect', r));
      socket.setNoDelay(true);
      const out = new Batcher(socket);
      let nextId = 1;
      let raw: Uint8Array | undefined;
      if (reads === 'data') socket.on('data', onChunk);
      return {
        call(payload: unknown) {
          const id = nextId++ >>> 0;
          const body = codec ? pack(payload) : (raw ??= Buffer.from(packr.pack(payload)));
          out.push(id, body);
          return new Promise((resolve) => pending.add(id, resolve));
        },
        async close() {
          socket.destroy();
        },
      };
    },
  };
}
