/**
 * The attacks of the hostile bench, as data: each has a name (`--only`), a
 * title, and `prepare()`, which builds its payloads (not timed) and returns
 * the loop that runs it until the window is over. Every loop is bounded in
 * time (the window) and in count (connections, frames per connection), and
 * carries on when the server refuses frames or closes the connection: it
 * then reconnects (and says HELLO again), so the figures say what the
 * server did with each attack, whatever its defaults.
 */
import { Packr } from 'msgpackr';

import { WEIGHT_ARRAY, WEIGHT_ENTRY, WEIGHT_MAP, WEIGHT_STRING } from '../lib/codec/msgpack-check.js';
import { MsgpackCodec } from '../lib/codec/msgpack-codec.js';
import { ClientStream, type OccamsError } from '../lib/index.js';
import { ALL_FEATURES, FEATURE_CANCEL, FEATURE_RECORDS, FORMAT_RECORDS } from '../lib/protocol/extensions.js';
import { encodeRequest, writeRequestHeader } from '../lib/protocol/request-frame.js';
import { DEFAULT_MAX_REQUEST_WEIGHT } from '../lib/server/server-options.js';
import { type AttackTally, note, RawConn } from './hostile-wire.js';

export interface AttackContext {
  port: number;
  tally: AttackTally;
  /** true once the window is over */
  over(): boolean;
}

export type AttackLoop = (ctx: AttackContext) => Promise<void>;

export interface Attack {
  name: string;
  title: string;
  prepare(): AttackLoop;
}

/** connections one attack may open in a window */
const MAX_CONNECTIONS = 50_000;
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** features a hostile peer offers in HELLO: everything (records included: its codec says msgpack) */
const OFFER = ALL_FEATURES;

/** A request header (and action) for a body of `bodyLength` bytes that follows in its own buffer. */
function head(action: string, seq: number, format: number, bodyLength: number): Buffer {
  const act = Buffer.from(action);
  const buf = Buffer.allocUnsafe(32 + act.length);
  writeRequestHeader(buf, 0, format, 0, act, seq, 0xbad, bodyLength, 0);
  act.copy(buf, 32);
  return buf;
}

interface Flood {
  /** HELLO first, offering these bits; undefined = plain v1 */
  hello?: number;
  /** bits the frames need granted (noted when the server does not grant them; the frames go anyway) */
  needs?: number;
  /** the i-th write on a connection (seq: the connection's next) and the frames it holds */
  write(seq: number, i: number): { bytes: Buffer | Buffer[]; frames: number };
  /** after this many writes, wait for the answers to all frames so far (bounded) */
  batch?: number;
  /** writes per connection; then wait up to `closeWait` ms for the server to end it, and reconnect */
  perConnection?: number;
  closeWait?: number;
}

/** Opens connections one after another and writes frames on each, as `o` says, until the window is over. */
async function flood(ctx: AttackContext, o: Flood): Promise<void> {
  for (let n = 0; n < MAX_CONNECTIONS && !ctx.over(); n++) {
    const conn = await RawConn.open(ctx.port, ctx.tally);
    if (conn === undefined) {
      await sleep(20);
      continue;
    }
    try {
      if (o.hello !== undefined) {
        const bits = await conn.hello(o.hello);
        if (bits === undefined) note(ctx.tally, 'HELLO refused or unanswered');
        else if (o.needs !== undefined && (bits & o.needs) !== o.needs) note(ctx.tally, `HELLO granted ${bits}, not ${o.needs}: frames sent anyway`);
      }
      let frames = 0;
      const limit = o.perConnection ?? Number.MAX_SAFE_INTEGER;
      for (let i = 0; i < limit && !ctx.over() && !conn.closed; i++) {
        const w = o.write(conn.nextSeq, i);
        conn.nextSeq += w.frames;
        frames += w.frames;
        if (!(await conn.send(w.bytes, w.frames))) break;
        if (o.batch !== undefined && (i + 1) % o.batch === 0) await conn.answers(frames, 10_000);
      }
      if (o.closeWait !== undefined && !conn.closed && !ctx.over()) await conn.closedWithin(o.closeWait);
    } finally {
      conn.destroy();
    }
  }
}

/** A msgpack map of `count` distinct 6-character keys, each with value 1: 8 bytes an entry. */
function hugeMap(count: number): Buffer {
  return distinctEntries(0xdf, count, false);
}

/** An array of `count` maps of one distinct key each (`{kNNNNN: 1}`): the costliest value per byte msgpackr decodes. */
function distinctMaps(count: number): Buffer {
  return distinctEntries(0xdd, count, true);
}

/**
 * A map32 (`head` 0xdf) or array32 (0xdd) of `count` entries `kNNNNN: 1`
 * (keys in base 36, all distinct), each its own one-entry map when `ownMap`.
 */
function distinctEntries(head: number, count: number, ownMap: boolean): Buffer {
  const buf = Buffer.allocUnsafe(5 + count * (ownMap ? 9 : 8));
  buf[0] = head;
  buf.writeUInt32BE(count, 1);
  let o = 5;
  for (let i = 0; i < count; i++) {
    if (ownMap) buf[o++] = 0x81;
    buf[o++] = 0xa6;
    buf[o++] = 0x6b; // 'k'
    const s = i.toString(36).padStart(5, '0');
    for (let j = 0; j < 5; j++) buf[o++] = s.charCodeAt(j);
    buf[o++] = 1;
  }
  return buf;
}

/** ext 32 of `type` with `length` bytes of data. */
function ext32(type: number, length: number, fill: number): Buffer {
  const buf = Buffer.alloc(6 + length, fill);
  buf[0] = 0xc9;
  buf.writeUInt32BE(length, 1);
  buf[5] = type;
  return buf;
}

/**
 * msgpackr's bundled-strings extension (0x62) whose bundle starts `past`
 * bytes after the end of its own message: `d6 62 <size>`, then `refs`
 * references (`c1 <n>`) into the bundle, padded to `length` bytes.
 */
function bundlePastEnd(length: number, past: number, refs: number): Buffer {
  const buf = Buffer.alloc(length, 0xc0);
  buf[0] = 0xd6;
  buf[1] = 0x62;
  // the bundle is read from 2 + size: past the message's end
  buf.writeUInt32BE(length + past - 2, 2);
  buf[6] = 0xdc; // array 16 of references
  buf.writeUInt16BE(refs, 7);
  for (let i = 0, o = 9; i < refs && o + 2 <= length; i++, o += 2) {
    buf[o] = 0xc1;
    buf[o + 1] = 0x10; // 16 characters from the bundle's second string
  }
  return buf;
}

const plainPackr = new Packr({ useRecords: false });

export const ATTACKS: Attack[] = [
  {
    name: 'map-1m',
    title: '8 MiB request, a map of 1M keys (plain v1)',
    prepare() {
      const body = hugeMap(1 << 20);
      return (ctx) => flood(ctx, { write: (seq) => ({ bytes: [head('sink', seq, 0, body.length), body], frames: 1 }) });
    },
  },
  {
    name: 'map-4m',
    title: 'a request just under 4 MiB (the default maxFrameSize): a map of 500k distinct keys (plain v1)',
    prepare() {
      const body = hugeMap(Math.floor((4 * 1024 * 1024 - 1024) / 8));
      return (ctx) => flood(ctx, { write: (seq) => ({ bytes: [head('sink', seq, 0, body.length), body], frames: 1 }) });
    },
  },
  {
    name: 'heavy-at-bound',
    title: 'requests just under the default maxRequestWeight (250,000): 16.6k maps of one distinct key each (plain v1)',
    prepare() {
      // weight per element: 3 values (map, key, value) + a map, an entry and a string; the array 1 + WEIGHT_ARRAY
      const perElement = 3 + WEIGHT_MAP + WEIGHT_ENTRY + WEIGHT_STRING;
      const body = distinctMaps(Math.floor((DEFAULT_MAX_REQUEST_WEIGHT - 1 - WEIGHT_ARRAY) / perElement));
      return (ctx) => flood(ctx, { write: (seq) => ({ bytes: [head('sink', seq, 0, body.length), body], frames: 1 }) });
    },
  },
  {
    name: 'records-shapes',
    title: 'records session, 500 pipelined messages of new shapes',
    prepare() {
      // 500 messages, each 8 objects of 256 keys never seen before, each defining its records where it uses
      // them (a session of its own each: slots from the first), so the batch can be sent again on the same
      // connection (it redefines the slots)
      const batch: Buffer[] = [];
      for (let m = 0; m < 500; m++) {
        const codec = new MsgpackCodec().session()!;
        const value = Array.from({ length: 8 }, (_, j) => {
          const o: Record<string, number> = {};
          for (let k = 0; k < 256; k++) o[`s${m}_${j}_${k}`] = k & 0x3f;
          return o;
        });
        batch.push(Buffer.from(codec.encode(value)));
      }
      return (ctx) =>
        flood(ctx, {
          hello: OFFER,
          needs: FEATURE_RECORDS,
          write: (seq, i) => {
            const body = batch[i % batch.length]!;
            return { bytes: [head('sink', seq, FORMAT_RECORDS, body.length), body], frames: 1 };
          },
          batch: batch.length,
        });
    },
  },
  {
    name: 'plain-new-keys',
    title: 'the records-shapes messages as plain maps: 500 pipelined messages of 2048 new keys (plain v1)',
    prepare() {
      const batch: Buffer[] = [];
      for (let m = 0; m < 500; m++) {
        const value = Array.from({ length: 8 }, (_, j) => {
          const o: Record<string, number> = {};
          for (let k = 0; k < 256; k++) o[`p${m}_${j}_${k}`] = k & 0x3f;
          return o;
        });
        batch.push(Buffer.from(plainPackr.pack(value)));
      }
      return (ctx) =>
        flood(ctx, {
          write: (seq, i) => {
            const body = batch[i % batch.length]!;
            return { bytes: [head('sink', seq, 0, body.length), body], frames: 1 };
          },
          batch: batch.length,
        });
    },
  },
  {
    name: 'bigint-8m',
    title: '8 MiB msgpack ext 0x42 (BigInt) (plain v1)',
    prepare() {
      const body = ext32(0x42, 8 * MiB, 0x5a);
      return (ctx) => flood(ctx, { write: (seq) => ({ bytes: [head('sink', seq, 0, body.length), body], frames: 1 }) });
    },
  },
  {
    name: 'shape-100k',
    title: 'records session, one record shape of 100k keys',
    prepare() {
      // msgpackr's own records, without our bounds: the shape is defined inline, in the first message of a session
      const packr = new Packr({ useRecords: true, sequential: true, mapsAsObjects: true });
      const value: Record<string, number> = {};
      for (let k = 0; k < 100_000; k++) value[`key${k}`] = k & 0x3f;
      const body = Buffer.from(packr.pack(value));
      return (ctx) =>
        flood(ctx, {
          hello: OFFER,
          needs: FEATURE_RECORDS,
          write: (seq) => ({ bytes: [head('sink', seq, FORMAT_RECORDS, body.length), body], frames: 1 }),
          perConnection: 4,
          closeWait: 1000,
        });
    },
  },
  {
    name: 'cancel-churn',
    title: 'call + CANCEL churn from a ClientStream',
    prepare: () => churn,
  },
  {
    name: 'dup-seq',
    title: 'pipelined requests all with seq 7 (HELLO)',
    prepare() {
      const one = encodeRequest({ action: 'hold', seq: 7, msg: plainPackr.pack({ n: 1 }) });
      const chunk = Buffer.concat(Array.from({ length: 1000 }, () => one));
      return (ctx) => flood(ctx, { hello: OFFER & ~FEATURE_RECORDS, write: () => ({ bytes: chunk, frames: 1000 }) });
    },
  },
  {
    name: 'bundle-0x62',
    title: 'msgpackr bundled strings (ext 0x62) read past the message',
    prepare() {
      // a plain message that leaves strings (str8, 257 bytes each from offset 1) in the decoder's scratch
      // buffer, then bundles pointing past their message's end: a small one, decoded from that scratch buffer,
      // whose bundle is the prime's fourth string (the bytes of an earlier message), and a 256 KiB one (decoded
      // in place: its bundle is past the frame)
      const prime = plainPackr.pack(Array.from({ length: 13 }, () => 'y'.repeat(255)));
      const small = 600;
      const bodies = [prime, bundlePastEnd(small, 1 + 3 * 257 - small, 200), bundlePastEnd(256 * 1024, 64, 60_000)];
      return (ctx) =>
        flood(ctx, {
          write: (seq) => ({
            bytes: Buffer.concat(Array.from({ length: 48 }, (_, k) => encodeRequest({ action: 'sink', seq: seq + k, msg: bodies[k % 3] }))),
            frames: 48,
          }),
        });
    },
  },
  {
    name: 'garbage',
    title: 'garbage and malformed frames, reconnecting',
    prepare: () => (ctx) => Promise.all(Array.from({ length: 4 }, () => garbage(ctx))).then(() => undefined),
  },
];

/** One garbage loop: connect, write one malformed thing, wait for the server to end it (50 ms at most), again. */
async function garbage(ctx: AttackContext): Promise<void> {
  /** a valid request, then `patch` applied to it */
  const valid = (patch: (b: Buffer) => void = () => {}) => {
    const b = encodeRequest({ action: 'sink', seq: 1, msg: plainPackr.pack(1) });
    patch(b);
    return b;
  };
  const kinds: (() => Buffer)[] = [
    () => Buffer.from(Array.from({ length: 64 + Math.floor(Math.random() * 448) }, () => Math.floor(Math.random() * 256))),
    () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    () => valid((b) => b.writeUInt16LE(0x1234, 0)), // bad magic
    () => valid((b) => (b[2] = 9)), // bad version
    () => valid((b) => b.writeUInt32LE(0xffff_fff0, 24)), // msg_len of 4 GiB
    () => valid((b) => b.writeUInt32LE(0xffff_ffff, 4)), // action string of 2 GiB
    () => valid().subarray(0, 20), // half a header, then nothing
    () => encodeRequest({ action: 'sink', seq: 1, msg: Buffer.from([0xc1, 0xdd, 0xff, 0xff, 0xff, 0xff]) }),
  ];
  for (let n = 0; n < MAX_CONNECTIONS && !ctx.over(); n++) {
    const conn = await RawConn.open(ctx.port, ctx.tally);
    if (conn === undefined) {
      await sleep(20);
      continue;
    }
    await conn.send(kinds[n % kinds.length]!());
    await conn.closedWithin(50);
    conn.destroy();
  }
}

function drainedOrClosed(socket: import('node:net').Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done).off('close', done);
      resolve();
    };
    socket.on('drain', done).on('close', done);
  });
}

/** Calls and cancels at once, as fast as it goes, on a well-formed ClientStream (reconnecting when it closes). */
async function churn(ctx: AttackContext): Promise<void> {
  const { tally } = ctx;
  const handler = {
    onResult: () => void (tally.answers.ok = (tally.answers.ok ?? 0) + 1),
    onError: (err: OccamsError) => void (tally.answers[err.code] = (tally.answers[err.code] ?? 0) + 1),
  };
  for (let n = 0; n < 1000 && !ctx.over(); n++) {
    let client: ClientStream;
    try {
      client = await ClientStream.connect(`127.0.0.1:${ctx.port}`, { timeout: 5000 });
    } catch {
      tally.connectFailed++;
      await sleep(50);
      continue;
    }
    tally.connections++;
    let mine = false;
    const untrack = RawConn.track(() => {
      mine = true;
      client.destroy();
    });
    client.once('close', () => {
      untrack();
      if (!mine) tally.closedByServer++;
    });
    const perCall = (client.features & FEATURE_CANCEL) !== 0 ? 2 : 1;
    if (perCall === 1) note(tally, 'cancel not granted: only the calls go out');
    // (the bench peeks at the socket, to wait while the server does not read: the attacker's memory stays bounded)
    const socket = (client as unknown as { socket: import('node:net').Socket }).socket;
    for (let i = 0; !ctx.over() && client.state === 'ready' && i < 10_000_000; i++) {
      for (let k = 0; k < 256; k++) client.call('hold', k, handler).cancel();
      tally.framesSent += 256 * perCall;
      if (socket.writableLength > 4 * MiB) await drainedOrClosed(socket);
      else await new Promise((r) => setImmediate(r));
    }
    mine = true;
    client.destroy();
  }
}
