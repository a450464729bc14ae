import { PassThrough, Writable } from 'node:stream';

import fc from 'fast-check';

import { Heartbeat } from '../lib/client/heartbeat.js';
import { MsgpackCodec } from '../lib/codec/msgpack-codec.js';
import { actionBytes } from '../lib/core/action-bytes.js';
import type { Clock } from '../lib/core/clock.js';
import { Fifo } from '../lib/core/fifo.js';
import { ARENA_SIZE, FIRST_FLUSH, FrameWriter } from '../lib/core/frame-writer.js';
import { IN_PLACE_ROOM, InPlaceRoom } from '../lib/core/in-place-room.js';
import { Lifecycle } from '../lib/core/lifecycle.js';
import { SeqTable } from '../lib/core/seq-table.js';
import { TimedEntry, TimeoutWheel } from '../lib/core/timeout-wheel.js';
import { nonNegativeInt, positiveInt } from '../lib/core/validate.js';
import { WaitQueue } from '../lib/core/wait-queue.js';
import { ClosedError, IllegalStateError, InvalidOptionError, IoError, type OccamsError } from '../lib/errors.js';
import { ActionNames } from '../lib/protocol/action-names.js';
import { RequestDecoder } from '../lib/protocol/request-decoder.js';
import { ResponseDecoder } from '../lib/protocol/response-decoder.js';
import { FakeClock } from './support/fake-clock.js';

class Entry extends TimedEntry {
  constructor(readonly id: number) {
    super();
  }
}

describe('TimeoutWheel', () => {
  it('never expires an entry early and at most one resolution late, ticks aligned to slots', () => {
    const clock = new FakeClock(1_000_123);
    const fired: [number, number][] = [];
    const deadlines = new Map<number, number>();
    const wheel = new TimeoutWheel<Entry>(clock, 100, (e) => fired.push([e.id, clock.now()]));
    for (let i = 0; i < 200; i++) {
      const deadline = clock.now() + 1 + ((i * 37) % 950);
      deadlines.set(i, deadline);
      wheel.add(new Entry(i), deadline);
      clock.advance(3);
    }
    clock.advance(2_000);
    expect(fired).toHaveLength(200);
    for (const [id, at] of fired) {
      expect(at).toBeGreaterThanOrEqual(deadlines.get(id)!);
      expect(at - deadlines.get(id)!).toBeLessThanOrEqual(100);
    }
    expect(wheel.size).toBe(0);
    expect(clock.pending).toBe(0); // the timer stops once the wheel is empty
  });

  it('follows the shortest timeout in use: each entry expires within max(10 %, 10 ms) of its timeout, one timer', () => {
    const clock = new FakeClock(1_000_123);
    let timers = 0;
    const counting: Clock = {
      now: clock.now,
      setTimeout: (fn, ms) => (timers++, clock.setTimeout(fn, ms)),
      setInterval: (fn, ms) => clock.setInterval(fn, ms),
      clear: (h) => clock.clear(h),
    };
    const fired = new Map<number, number>();
    const wheel = new TimeoutWheel<Entry>(counting, 1000, (e) => fired.set(e.id, clock.now())); // the default resolution
    const timeouts = [15, 50, 200, 999, 1000, 5000, 20_000];
    const started = new Map<number, [number, number]>();
    for (let i = 0; i < 700; i++) {
      const timeout = timeouts[i % timeouts.length]!;
      started.set(i, [clock.now(), timeout]);
      wheel.add(new Entry(i), clock.now() + timeout);
      if (i % 7 === 6) clock.advance(1 + (i % 13));
    }
    expect(clock.pending).toBe(1); // one timer for the wheel, none per entry
    clock.advance(22_000);
    expect(fired.size).toBe(700);
    for (const [id, at] of fired) {
      const [from, timeout] = started.get(id)!;
      expect(at - from).toBeGreaterThanOrEqual(timeout);
      expect(at - from - timeout).toBeLessThanOrEqual(Math.max(10, timeout / 10));
    }
    expect(clock.pending).toBe(0);
    // the timer ran about once per bucket, not once per entry
    expect(timers).toBeLessThan(700 / 2);
  });

  it('a short timeout filed behind long ones brings the timer forward; emptied buckets are not waited for', () => {
    const clock = new FakeClock(0);
    const fired: [number, number][] = [];
    const wheel = new TimeoutWheel<Entry>(clock, 1000, (e) => fired.push([e.id, clock.now()]));
    const long = new Entry(1);
    wheel.add(long, 20_000); // a bucket at 20 s
    wheel.add(new Entry(2), 200); // a bucket at 200 ms: the timer moves up to it
    expect(clock.delays()).toEqual([200]);
    const gone = new Entry(3);
    wheel.add(gone, 500);
    wheel.remove(gone);
    clock.advance(200);
    expect(fired).toEqual([[2, 200]]);
    expect(clock.delays()).toEqual([19_800]); // the emptied 500 ms bucket is dropped
    wheel.remove(long);
    clock.advance(20_000);
    expect(fired).toHaveLength(1);
    expect(clock.pending).toBe(0);
  });

  it('removes entries in O(1) from any position and keeps the count', () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    const wheel = new TimeoutWheel<Entry>(clock, 1000, (e) => fired.push(e.id));
    const es = Array.from({ length: 5 }, (_, i) => new Entry(i));
    for (const e of es) wheel.add(e, 500);
    wheel.remove(es[0]!); // tail of the list (added first)
    wheel.remove(es[4]!); // head
    wheel.remove(es[2]!); // middle
    wheel.remove(es[2]!); // twice is harmless
    expect(wheel.size).toBe(2);
    clock.advance(1000);
    expect(fired.sort()).toEqual([1, 3]);
  });

  it('stops for good', () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    const wheel = new TimeoutWheel<Entry>(clock, 10, (e) => fired.push(e.id));
    wheel.add(new Entry(1), 5);
    wheel.stop();
    wheel.add(new Entry(2), 5);
    clock.advance(100);
    expect(fired).toEqual([]);
    expect(clock.pending).toBe(0);
  });
});

describe('Fifo and WaitQueue', () => {
  it('Fifo keeps order across compaction', () => {
    const f = new Fifo<number>();
    for (let i = 0; i < 5000; i++) f.push(i);
    for (let i = 0; i < 3000; i++) expect(f.shift()).toBe(i);
    expect(f.length).toBe(2000);
    f.retain((n) => n % 2 === 0);
    expect(f.shift()).toBe(3000);
    expect(f.drain()).toHaveLength(999);
    expect(f.shift()).toBeUndefined();
  });

  it('WaitQueue counts only live waiters, skips removed ones, and compacts', () => {
    const q = new WaitQueue<{ id: number; waiting: boolean }>(3);
    const ws = Array.from({ length: 4 }, (_, id) => ({ id, waiting: false }));
    q.push(ws[0]!);
    q.push(ws[1]!);
    q.push(ws[2]!);
    expect(q.full).toBe(true);
    expect(q.remove(ws[1]!)).toBe(true);
    expect(q.remove(ws[1]!)).toBe(false);
    expect(q.length).toBe(2);
    q.push(ws[3]!);
    expect(q.shift()!.id).toBe(0);
    expect(q.shift()!.id).toBe(2);
    expect(q.drain().map((w) => w.id)).toEqual([3]);
    expect(q.length).toBe(0);
    // many removals while nothing is taken stay bounded
    const big = new WaitQueue<{ waiting: boolean }>(10);
    for (let i = 0; i < 10_000; i++) {
      const w = { waiting: false };
      big.push(w);
      big.remove(w);
    }
    expect(big.length).toBe(0);
    expect(big.shift()).toBeUndefined();
  });
});

describe('SeqTable', () => {
  const e = (seq: number) => ({ seq });

  it('finds entries by seq, in the ring and past a taken slot', () => {
    const t = new SeqTable<{ seq: number }>(16); // 64 slots
    const a = e(5);
    const b = e(5 + 64); // same slot as a, a still in: overflow
    const c = e(5 + 128);
    t.add(a);
    t.add(b);
    t.add(c);
    expect(t.size).toBe(3);
    expect(t.get(5)).toBe(a);
    expect(t.get(69)).toBe(b);
    expect(t.get(133)).toBe(c);
    expect(t.get(197)).toBeUndefined();
    expect(t.delete(5)).toBe(true);
    // the slot is free again; the overflowed entries are still found
    expect(t.get(5)).toBeUndefined();
    expect(t.get(69)).toBe(b);
    const d = e(197);
    t.add(d); // takes the freed slot
    expect(t.get(197)).toBe(d);
    expect(t.get(133)).toBe(c);
    expect(t.delete(5)).toBe(false);
    expect(t.delete(69)).toBe(true);
    expect(t.values()).toEqual([c, d]);
    expect(t.size).toBe(2);
  });

  it('takes seqs beyond 2^32 and lists entries in seq order', () => {
    const t = new SeqTable<{ seq: number }>(1);
    const seqs = [2 ** 40 + 3, 3, 2 ** 52 + 1, 2 ** 32 + 3, 67];
    for (const s of seqs) t.add(e(s));
    for (const s of seqs) expect(t.get(s)?.seq).toBe(s);
    expect(t.values().map((x) => x.seq)).toEqual([...seqs].sort((x, y) => x - y));
    for (const s of seqs) expect(t.delete(s)).toBe(true);
    expect(t.size).toBe(0);
    expect(t.values()).toEqual([]);
  });

  it('agrees with a Map over a long run of calls finishing out of order', () => {
    const t = new SeqTable<{ seq: number }>(32);
    const m = new Map<number, { seq: number }>();
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    let next = 1;
    for (let i = 0; i < 20_000; i++) {
      if (m.size < 100 && rand(3) !== 0) {
        const x = e(next++);
        t.add(x);
        m.set(x.seq, x);
      } else if (m.size > 0) {
        // mostly the oldest few, sometimes one far back (a long call)
        const keys = [...m.keys()];
        const k = keys[rand(4) === 0 ? rand(keys.length) : Math.min(keys.length - 1, rand(3))]!;
        expect(t.delete(k)).toBe(true);
        m.delete(k);
      }
      const probe = next - 1 - rand(300);
      expect(t.get(probe)).toBe(m.get(probe));
      expect(t.size).toBe(m.size);
    }
    expect(t.values()).toEqual([...m.values()].sort((x, y) => x.seq - y.seq));
  });
});

describe('FrameWriter', () => {
  class Sink extends Writable {
    chunks: Buffer[] = [];
    _write(chunk: Buffer, _enc: string, cb: () => void): void {
      this.chunks.push(Buffer.from(chunk));
      cb();
    }
  }

  it("InPlaceRoom: a 16 KiB string value is encoded in place after the first, across arenas (room for msgpackr's 3 bytes per character)", () => {
    const w = new FrameWriter(new Sink());
    const room = new InPlaceRoom();
    const codec = new MsgpackCodec();
    const value = { id: 1, name: 'n', tags: ['a', 'b', 'c', 'd'], ok: true, score: 0.75, text: 'x'.repeat(16 * 1024) };
    const outs: (number | Uint8Array)[] = [];
    for (let i = 0; i < 50; i++) {
      const out = room.encode(w, codec, value, 20);
      outs.push(out);
      if (typeof out === 'number') w.endResponse(0, i + 1, out);
      else w.response(0, out.length, i + 1, out, undefined);
    }
    // 50 x 16 KiB fill several arenas: near each one's end, 2x the msg would leave msgpackr short and it would move to a buffer of its own
    expect(outs.slice(1).filter((o) => typeof o !== 'number')).toHaveLength(0);
    expect(room.heldBytes).toBe(0);
  });

  it('InPlaceRoom: large values are encoded apart into one scratch buffer, exact, and it goes once values are small again', () => {
    const w = new FrameWriter(new Sink());
    const room = new InPlaceRoom();
    const codec = new MsgpackCodec();
    const back = new MsgpackCodec();
    let held = 0;
    for (let i = 0; i < 20; i++) {
      const value = { i, text: String(i % 10).repeat(100_000 + i), bin: Buffer.alloc(50_000, i) };
      const out = room.encode(w, codec, value, 20);
      expect(typeof out).toBe('object');
      const got = back.decode(Buffer.from(out as Uint8Array)) as typeof value;
      expect(got.i === i && got.text === value.text && Buffer.compare(got.bin, value.bin) === 0).toBe(true); // (toEqual walks 50,000 bytes one by one)
      if (i > 0) {
        expect(room.heldBytes).toBeGreaterThan(0);
        expect(room.heldBytes).toBeLessThanOrEqual(5 * 200_000);
        if (held !== 0 && i > 1) expect(room.heldBytes).toBe(held); // reused, not one per value
        held = room.heldBytes;
      }
    }
    let last: number | Uint8Array = 0;
    for (let i = 0; i < 200; i++) {
      last = room.encode(w, codec, { i }, 20);
      if (typeof last === 'number') w.endResponse(0, i + 1, last);
      else w.response(0, last.length, i + 1, last, undefined);
    }
    expect(room.heldBytes).toBe(0);
    expect(room.next).toBe(IN_PLACE_ROOM);
    expect(typeof last).toBe('number'); // small values in place again
  });

  it('coalesces the frames of one tick into one write, in order, decodable', async () => {
    const sink = new Sink();
    const w = new FrameWriter(sink);
    for (let seq = 1; seq <= 100; seq++) w.response(0, 3, seq, Buffer.from('abc'), undefined);
    expect(sink.chunks).toHaveLength(0);
    await new Promise((r) => process.nextTick(r));
    expect(sink.chunks).toHaveLength(1);
    const seqs: number[] = [];
    const err = new ResponseDecoder({
      onResponse: (_f, seq, _l, msg) => {
        seqs.push(seq);
        expect(msg.toString()).toBe('abc');
      },
    }).push(sink.chunks[0]!);
    expect(err).toBeUndefined();
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it('sends the first FIRST_FLUSH bytes of a tick at once, the rest at the end of the tick; again each tick', async () => {
    const sink = new Sink();
    const w = new FrameWriter(sink);
    const msg = Buffer.alloc(200, 1);
    const frame = 20 + msg.length;
    const early = Math.ceil(FIRST_FLUSH / frame);
    for (let tick = 0; tick < 2; tick++) {
      for (let i = 0; i < 60; i++) w.response(0, msg.length, tick * 100 + i, msg, undefined);
      await new Promise((r) => process.nextTick(r));
    }
    expect(sink.chunks.map((c) => c.length / frame)).toEqual([early, 60 - early, early, 60 - early]);
  });

  it('a frame of FIRST_FLUSH bytes or more does not go out early alone: a tick of a few large frames is one write, or one per threshold', async () => {
    // each early write of a large frame was one more write per tick: at 16 KiB x 64, 0.56 writes per call against
    // the bare reference's 0.31 (a write on loopback costs the sender the receiver's TCP work too)
    const sink = new Sink();
    const w = new FrameWriter(sink);
    const big = Buffer.alloc(16 * 1024, 2);
    const small = Buffer.alloc(200, 1);
    for (let i = 0; i < 3; i++) w.response(0, big.length, i, big, undefined);
    expect(sink.chunks).toHaveLength(0); // 48 KiB pending: past FIRST_FLUSH, under the threshold
    await new Promise((r) => process.nextTick(r));
    expect(sink.chunks.map((c) => c.length)).toEqual([3 * (20 + big.length)]);
    for (let i = 0; i < 5; i++) w.response(0, big.length, 10 + i, big, undefined);
    expect(sink.chunks.map((c) => c.length)).toEqual([3 * (20 + big.length), 4 * (20 + big.length)]); // the 4th passed the threshold
    await new Promise((r) => process.nextTick(r));
    expect(sink.chunks).toHaveLength(3);
    // small frames after a large one still take the tick's first write early
    w.response(0, big.length, 20, big, undefined);
    w.response(0, small.length, 21, small, undefined);
    expect(sink.chunks.map((c) => c.length).slice(3)).toEqual([20 + big.length + 20 + small.length]);
    await new Promise((r) => process.nextTick(r));
  });

  it('flushes inline past the threshold and never overwrites bytes the socket still holds', async () => {
    const socket = new PassThrough({ highWaterMark: 1 });
    const w = new FrameWriter(socket, 1024);
    const msg = Buffer.alloc(1000, 7);
    for (let seq = 1; seq <= 2 * Math.ceil(ARENA_SIZE / 1000) + 5; seq++) w.request(0, 5, undefined, seq, 9, msg, undefined, undefined);
    w.flush();
    socket.end();
    const chunks: Buffer[] = [];
    for await (const c of socket) chunks.push(c as Buffer);
    const seqs: number[] = [];
    const err = new RequestDecoder({
      onRequest: (_f, _a, seq, _c, m) => {
        seqs.push(seq);
        expect(m.equals(msg)).toBe(true);
      },
    }).push(Buffer.concat(chunks));
    expect(err).toBeUndefined();
    expect(seqs).toHaveLength(2 * Math.ceil(ARENA_SIZE / 1000) + 5);
    expect(seqs.every((s, i) => s === i + 1)).toBe(true);
  });

  it('reports the batch each request frame went into: handed to the socket iff that batch is closed (any size, threshold, path)', async () => {
    class Counting extends Writable {
      handed = 0;
      _write(chunk: Buffer, _enc: string, cb: () => void): void {
        this.handed += chunk.length;
        cb();
      }
    }
    const frame = fc.record({
      size: fc.oneof(fc.integer({ min: 0, max: 300 * 1024 }), fc.integer({ min: 0, max: 8 * 1024 })),
      /** encoded in place (begin / endRequest) rather than copied (request) */
      inPlace: fc.boolean(),
      /** the tick ends after this frame */
      tick: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(1, 1_000, FIRST_FLUSH, 64 * 1024, 300 * 1024), fc.array(frame, { minLength: 1, maxLength: 30 }), async (threshold, frames) => {
        const socket = new Counting();
        const w = new FrameWriter(socket, threshold);
        const written: { batch: number; end: number }[] = [];
        let end = 0;
        const check = (when: string) => {
          for (const [i, f] of written.entries()) expect(f.batch < w.batch, `frame ${i} ${when}`).toBe(socket.handed >= f.end);
        };
        for (const [i, f] of frames.entries()) {
          let batch: number;
          if (f.inPlace) {
            const buf = w.begin(32 + f.size);
            buf.fill(1, w.at + 32, w.at + 32 + f.size);
            batch = w.endRequest(0, 5, undefined, i + 1, 9, f.size);
          } else {
            batch = w.request(0, 5, undefined, i + 1, 9, Buffer.alloc(f.size, 1), undefined, undefined);
          }
          end += 32 + f.size;
          written.push({ batch, end });
          check(`after frame ${i}`);
          if (f.tick) {
            await new Promise((r) => process.nextTick(r));
            check(`after the tick of frame ${i}`);
          }
        }
        await new Promise((r) => process.nextTick(r));
        check('at the end');
        expect(socket.handed).toBe(end);
      }),
      { numRuns: 60 },
    );
  });

  it('a frame past the arena reuses a written large arena (never one the socket still reads), exact; trim gives it back', () => {
    const pending: (() => void)[] = [];
    const chunks: Buffer[] = [];
    const socket = new Writable({
      highWaterMark: 1 << 30,
      write: (c: Buffer, _e, cb) => {
        chunks.push(c); // the very bytes handed over: overwritten if their arena were reused too early
        pending.push(cb);
      },
    });
    const w = new FrameWriter(socket, 1024);
    const spy = w as unknown as { arena: Buffer };
    const big = (seed: number, n: number) => Buffer.alloc(n, seed);
    w.request(0, 5, undefined, 1, 9, big(1, 1024 * 1024), undefined, undefined);
    const first = spy.arena;
    w.request(0, 5, undefined, 2, 9, big(2, 1024 * 1024 + 7), undefined, undefined); // the first still being written
    const second = spy.arena;
    expect(second).not.toBe(first);
    w.request(0, 5, undefined, 3, 9, Buffer.alloc(10), undefined, undefined);
    w.flush();
    for (let i = 0; i < 100 && pending.length > 0; i++) pending.shift()!();
    expect(chunks.map((c) => c[c.length - 1])).toEqual([1, 2, 0]); // each write kept its own bytes
    const held = w.heldBytes;
    w.request(0, 5, undefined, 4, 9, big(4, 1024 * 1024 - 5), undefined, undefined); // written: taken again, no fresh buffer
    expect([first, second]).toContain(spy.arena);
    expect(w.heldBytes).toBeLessThanOrEqual(held);
    w.flush();
    for (let i = 0; i < 100 && pending.length > 0; i++) pending.shift()!();
    expect(
      chunks
        .at(-1)!
        .subarray(-(1024 * 1024 - 5))
        .every((b) => b === 4),
    ).toBe(true);
    w.trim();
    expect(w.heldBytes).toBeLessThanOrEqual(3 * ARENA_SIZE); // the current arena and the spares, no large one
  });

  it('keeps as many spare arenas as heavy traffic had busy at once, and reuses them', () => {
    // a socket that completes its writes only when told: every full arena stays busy until then
    const pending: (() => void)[] = [];
    const socket = new Writable({ highWaterMark: 1 << 30, write: (_c, _e, cb) => void pending.push(cb) });
    const w = new FrameWriter(socket, 1024);
    const arenas = new Set<Buffer>();
    const spy = w as unknown as { arena: Buffer };
    const msg = Buffer.alloc(16 * 1024, 1);
    const fill = (n: number) => {
      for (let i = 0; i < n; i++) {
        w.request(0, 5, undefined, i + 1, 9, msg, undefined, undefined);
        arenas.add(spy.arena);
      }
      w.flush();
    };
    const perArena = Math.floor(ARENA_SIZE / (msg.length + 64));
    fill(perArena * 8); // 8 arenas busy at once
    expect(arenas.size).toBeGreaterThanOrEqual(8);
    const before = arenas.size;
    // the socket drains: the arenas come back (Writable hands over one write at a time)
    for (let i = 0; i < 10_000 && pending.length > 0; i++) pending.shift()!();
    expect(pending).toHaveLength(0);
    fill(perArena * 6);
    expect(arenas.size).toBe(before); // the same traffic again allocates no new arena
  });
});

describe('action caches', () => {
  it('actionBytes encodes once per string', () => {
    const a = actionBytes('Calculator.add');
    expect(actionBytes('Calculator.add')).toBe(a);
    expect(a.toString()).toBe('Calculator.add');
    expect(actionBytes('ünïcode').toString('utf8')).toBe('ünïcode');
  });

  it('ActionNames returns the cached string for known bytes and decodes colliding ones correctly', () => {
    const names = new ActionNames();
    const buf = Buffer.from('xxCalculator.addyy');
    const first = names.decode(buf, 2, 16);
    expect(first).toBe('Calculator.add');
    expect(names.decode(Buffer.from('Calculator.add'), 0, 14)).toBe(first);
    // many distinct names: every one decodes to itself whatever the slot
    for (let i = 0; i < 500; i++) {
      const s = `Svc${i}.m${i % 7}`;
      expect(names.decode(Buffer.from(s), 0, Buffer.byteLength(s))).toBe(s);
    }
    expect(names.decode(Buffer.alloc(0), 0, 0)).toBe('');
  });
});

describe('Heartbeat (fake port, fake clock)', () => {
  it('pings only when nothing arrives and declares a silent peer dead within interval x maxMissed', () => {
    const clock = new FakeClock(0);
    let pings = 0;
    let deadAt = -1;
    const hb = new Heartbeat({ ping: () => pings++, suspect: () => {}, alive: () => {}, dead: () => (deadAt = clock.now()) }, clock, 100, 3);
    hb.start();
    for (let i = 0; i < 10; i++) {
      clock.advance(50);
      hb.received(clock.now()); // busy traffic: no pings
    }
    expect(pings).toBe(0);
    clock.advance(100);
    expect(pings).toBe(1);
    hb.received(clock.now()); // answered
    const lastWord = clock.now();
    for (let i = 0; i < 20 && deadAt < 0; i++) clock.advance(25);
    expect(pings).toBeGreaterThanOrEqual(3); // one per silent interval
    expect(deadAt - lastWord).toBeGreaterThan(200);
    expect(deadAt - lastWord).toBeLessThanOrEqual(300);
    expect(clock.pending).toBe(0); // stopped itself
  });

  it('makes a silent peer suspect within interval x maxMissed, alive again on any word, dead only at the keepalive limit', () => {
    const clock = new FakeClock(0);
    const seen: string[] = [];
    let pings = 0;
    const hb = new Heartbeat(
      { ping: () => pings++, suspect: (ms) => seen.push(`suspect ${ms}`), alive: () => seen.push('alive'), dead: (ms) => seen.push(`dead ${ms}`) },
      clock,
      100,
      3,
      1_000,
    );
    hb.start();
    for (let i = 0; i < 12 && !hb.suspect; i++) clock.advance(25);
    expect(hb.suspect).toBe(true);
    expect(seen).toEqual(['suspect 300']);
    const before = pings;
    clock.advance(300);
    expect(pings).toBeGreaterThan(before); // still pinging while suspect: a thawed peer answers
    hb.received(clock.now());
    expect(hb.suspect).toBe(false);
    expect(seen).toEqual(['suspect 300', 'alive']);
    // silence again: suspect at 300 ms, dead at the keepalive limit (1 000 ms), not before
    for (let i = 0; i < 39; i++) clock.advance(25);
    expect(seen).toEqual(['suspect 300', 'alive', 'suspect 300']);
    clock.advance(25);
    expect(seen).toEqual(['suspect 300', 'alive', 'suspect 300', 'dead 1000']);
    expect(hb.suspect).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('without a keepalive beyond interval x maxMissed, the first bound is final (no suspect step)', () => {
    const clock = new FakeClock(0);
    const seen: string[] = [];
    const hb = new Heartbeat({ ping: () => {}, suspect: () => seen.push('suspect'), alive: () => {}, dead: (ms) => seen.push(`dead ${ms}`) }, clock, 100, 3, 0);
    hb.start();
    for (let i = 0; i < 20 && seen.length === 0; i++) clock.advance(25);
    expect(seen).toEqual(['dead 300']);
  });
});

describe('Lifecycle', () => {
  class Thing extends Lifecycle<'idle' | 'busy'> {
    aborted: OccamsError | undefined;
    drained: (() => void) | undefined;
    constructor() {
      super('thing', { idle: ['busy', 'closing', 'closed'], busy: ['idle', 'closing', 'closed'], closing: ['closed'], closed: [] }, 'idle');
    }
    go(s: 'idle' | 'busy' | 'closed'): void {
      this.transition(s);
    }
    protected beginClose(): Promise<void> {
      return new Promise((resolve) => (this.drained = resolve));
    }
    protected abort(err: OccamsError): void {
      this.aborted = err;
    }
  }

  it('refuses illegal moves', () => {
    const t = new Thing();
    t.go('busy');
    t.destroy();
    expect(() => t.go('busy')).toThrow(IllegalStateError);
  });

  it('close() is shared by every caller and ends once drained; destroy after it is a no-op', async () => {
    const t = new Thing();
    const events: unknown[] = [];
    t.on('close', (e) => events.push(e));
    const a = t.close();
    const b = t.close();
    expect(t.state).toBe('closing');
    t.drained!();
    await Promise.all([a, b]);
    expect(t.state).toBe('closed');
    expect(t.aborted).toBeInstanceOf(ClosedError);
    t.destroy(new Error('late'));
    expect(events).toEqual([undefined]);
  });

  it('destroy wraps a foreign error once, keeps an OccamsError as it is', () => {
    const t = new Thing();
    const cause = new Error('user abort');
    t.destroy(cause);
    expect(t.aborted).toBeInstanceOf(ClosedError);
    expect(t.aborted!.cause).toBe(cause);
    const u = new Thing();
    const io = new IoError('gone');
    u.destroy(io);
    expect(u.aborted).toBe(io);
  });
});

describe('option checks', () => {
  it('accepts numbers and digit strings, names the option otherwise', () => {
    expect(positiveInt(undefined, 5, 'x')).toBe(5);
    expect(positiveInt('7100', 5, 'port')).toBe(7100);
    expect(nonNegativeInt(0, 5, 'x')).toBe(0);
    expect(() => positiveInt('abc', 5, 'timeout')).toThrow(InvalidOptionError);
    expect(() => positiveInt(0, 5, 'timeout')).toThrow(/timeout/);
    expect(() => nonNegativeInt(-1, 5, 'closeWait')).toThrow(/closeWait/);
  });
});
