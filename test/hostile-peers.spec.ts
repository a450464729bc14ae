/**
 * Hostile peers on the server (issue 27): no byte of one connection reaches
 * another, every request is owned exactly once, a peer cannot turn the
 * server's bookkeeping against it. Raw frames where the wire is the attack;
 * a victim and an attacker on two connections where the attack is on
 * someone else.
 */
import fc from 'fast-check';
import { Packr } from 'msgpackr';

import { ClientStream } from '../lib/client/client-stream.js';
import { checkMessage, MessageRefusedError } from '../lib/codec/msgpack-check.js';
import { MsgpackCodec, msgpackCodec, ownBufferSize } from '../lib/codec/msgpack-codec.js';
import { ARENA_SIZE } from '../lib/core/frame-writer.js';
import { FrameTooLargeError, type OccamsError } from '../lib/errors.js';
import { FLAG_ERROR_BYTES, FLAG_OK } from '../lib/protocol/constants.js';
import { ACTION_GOAWAY_ACK, ALL_FEATURES, FEATURE_RECORDS, FLAG_GOAWAY, FLAG_OK_RECORDS, FORMAT_EVENT, FORMAT_RECORDS } from '../lib/protocol/extensions.js';
import { encodeRequest } from '../lib/protocol/request-frame.js';
import { type ServerConnection, VIOLATION_GRACE } from '../lib/server/server-connection.js';
import { DEFAULT_SERVER_MAX_FRAME_SIZE } from '../lib/server/server-options.js';
import { FakeClock } from './support/fake-clock.js';
import { TestAppModule } from './support/nest-apps.js';
import { startMicroservice } from './support/nest-boot.js';
import { RawPeer } from './support/raw-peer.js';
import { sleep, startServer, waitFor } from './support/servers.js';

/**
 * msgpackr's bundled strings (ext 0x62) aimed at `offset`, past the end of
 * this 22-byte message: the outer bundle reads its two strings there, the
 * value after it takes the first (`len` characters), and a second bundle,
 * nested and inside the message, moves msgpackr's end-of-message check back
 * into the message. Decoded from a buffer that held another message,
 * msgpackr returned that message's string (seen on msgpackr 2.1.3).
 */
function bundleAttack(offset: number, len: number): Buffer {
  const a = Buffer.alloc(22);
  a.set([0xc7, 5, 0x62]); // ext 8, 5 bytes, type 0x62
  a.writeUInt32BE(offset - 8 + 5, 3); // the bundle starts `offset` into the buffer
  a.set([0x92, 0xc1, 0xd0, 256 - len], 8); // [bundled string 0 of len characters, ...]
  a.set([0xc7, 5, 0x62, 0, 0, 0, 5, 0], 12); // ..., a bundle inside the message
  a.set([0xa0, 0xa0], 20);
  return a;
}

/** A victim's message whose secret sits well past the attack's 22 bytes, and where in the message its header is. */
function victimMessage(codec: MsgpackCodec, secret: string): { bytes: Buffer; at: number } {
  const bytes = Buffer.from(codec.encode({ p: 'x'.repeat(40), t: secret, u: 'pad' }));
  return { bytes, at: bytes.indexOf(Buffer.from([0xa0 + secret.length])) };
}

/** Every extension type msgpackr implements for its own peers, none of which the wire format uses. */
const MSGPACKR_EXTENSIONS: [string, string][] = [
  ['0x62 bundled strings', 'c7 05 62 00 00 00 05 00 a0'],
  ['0x42 BigInt', 'd5 42 01 00'],
  ['0x65 Error', 'd4 65 00 93 a5 45 72 72 6f 72 a1 78 c0'],
  ['0x69 structured-clone id', 'd6 69 00 00 00 01 90'],
  ['0x70 structured-clone pointer', 'd6 70 00 00 00 01'],
  ['0x73 Set', 'd4 73 00 91 01'],
  ['0x74 typed array', 'c7 03 74 01 02 03'],
  ['0x78 RegExp', 'd4 78 00 92 a1 61 a1 67'],
  ['0x72 record definition outside a session', 'd4 72 40 91 a1 61 01'],
  ['0xc1 (never used)', 'c1'],
];
const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');

describe('the codec reads only the message it is given', () => {
  it("a crafted message cannot read another message's bytes out of the reused decode buffer", () => {
    const codec = new MsgpackCodec();
    const secret = 'SECRET-TOKEN-abcd1234';
    const victim = victimMessage(codec, secret);
    expect(codec.decode(victim.bytes)).toMatchObject({ t: secret });
    expect(() => codec.decode(bundleAttack(victim.at, secret.length))).toThrow(/extension type 0x62/);
  });

  it('the same attack fails in a record session, from a whole message or one in a larger buffer', () => {
    const session = new MsgpackCodec().session()!;
    const secret = 'SESSION-SECRET-99';
    const victim = victimMessage(new MsgpackCodec(), secret);
    const inLarger = Buffer.concat([bundleAttack(22 + victim.at, secret.length), victim.bytes]);
    expect(() => session.decode(inLarger.subarray(0, 22))).toThrow(MessageRefusedError);
    expect(() => msgpackCodec.decode(inLarger.subarray(0, 22))).toThrow(MessageRefusedError);
  });

  for (const [name, bytes] of MSGPACKR_EXTENSIONS) {
    it(`refuses ${name} before msgpackr reads it, plain and in a session`, () => {
      const msg = Buffer.concat([hex('92 01'), hex(bytes)]);
      expect(() => new MsgpackCodec().decode(msg)).toThrow(MessageRefusedError);
      if (!name.startsWith('0x72')) expect(() => new MsgpackCodec().session()!.decode(msg)).toThrow(MessageRefusedError);
    });
  }

  it('refuses a record definition beyond the shape bounds before msgpackr compiles it', () => {
    const session = new MsgpackCodec().session()!;
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    const definition = Buffer.concat([hex('d4 72 40 dc'), Buffer.from([1, 44]), ...keys.map((k) => Buffer.concat([Buffer.from([0xa0 + k.length]), Buffer.from(k)]))]);
    expect(() => session.decode(Buffer.concat([definition, Buffer.alloc(300)]))).toThrow(/record shape of 300 keys/);
    expect(() => session.decode(hex('d5 72 40 01 91 a1 61 01'))).toThrow(MessageRefusedError); // two-byte ids are not ours
  });

  it('property: on any bytes the check either passes or refuses with MessageRefusedError, and msgpackr agrees with it on where a message ends', () => {
    const valid = Buffer.from(msgpackCodec.encode({ a: [1, 'two', { three: 3.5 }], d: new Date(0), b: Buffer.from([1, 2]) }));
    const bytes = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 48 }),
      // a valid message with a few bytes changed, cut or extended
      fc.tuple(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.integer({ min: -4, max: 4 })).map(([edits, cut]) => {
        const b = Buffer.from(valid);
        for (const [at, v] of edits) b[at] = v;
        return cut >= 0 ? Buffer.concat([b, Buffer.alloc(cut, 0xc0)]) : b.subarray(0, b.length + cut);
      }),
    );
    const session = new MsgpackCodec().session()!;
    fc.assert(
      fc.property(bytes, (b) => {
        const buf = Buffer.from(b);
        for (const shapes of [undefined, [] as unknown[]]) {
          let passed = true;
          try {
            checkMessage(buf, 0, buf.length, shapes, undefined, 1000);
          } catch (err) {
            expect(err).toBeInstanceOf(MessageRefusedError);
            passed = false;
          }
          if (passed && shapes === undefined && buf.length > 0) {
            // msgpackr may refuse what it will not build (a map key that is a map); never for the framing the check vouched for
            try {
              new MsgpackCodec().decode(buf);
            } catch (err) {
              expect((err as Error).message).not.toMatch(/end of (MessagePack data|buffer)|Unknown extension/);
            }
          }
        }
        try {
          session.decode(buf);
        } catch {
          // refused or not: the session codec never hands msgpackr bytes the check refused
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts everything the codec writes, plain and in sessions, and checks exactly to the end', () => {
    const plain = new MsgpackCodec();
    const encoder = plain.session()!;
    const decoder = plain.session()!;
    fc.assert(
      fc.property(fc.jsonValue(), fc.date({ noInvalidDate: true }), fc.uint8Array({ maxLength: 64 }), (json, date, bin) => {
        const value = { json, date, bin: Buffer.from(bin), big: -(2n ** 60n) };
        for (const codec of [plain]) {
          const bytes = Buffer.from(codec.encode(value));
          expect(() => checkMessage(bytes, 0, bytes.length, undefined, undefined)).not.toThrow();
          expect(() => checkMessage(bytes, 0, bytes.length - 1, undefined, undefined)).toThrow(MessageRefusedError);
          expect(() => plain.decode(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(MessageRefusedError);
        }
        // a session's messages decode in order, shapes defined by earlier ones
        expect(decoder.decode(Buffer.from(encoder.encode(value)))).toEqual(plain.decode(Buffer.from(plain.encode(value))));
      }),
      { numRuns: 300 },
    );
  });
});

describe('two connections: what one sends never reaches the other', () => {
  it("an attacker echoing crafted requests never gets a victim's bytes back; the victim is served throughout", async () => {
    const ctx = await startServer({ echo: (v: unknown) => v });
    const victim = await ClientStream.connect(ctx.url, { timeout: 5000, codec: new MsgpackCodec({ records: false }) });
    const attacker = await RawPeer.connect(ctx.address.port);
    try {
      const seen = new Set<string>();
      const until = Date.now() + 10_000;
      let seq = 1;
      for (let round = 0; round < 200 && Date.now() < until; round++) {
        const secret = `SECRET-${round}-${Math.random().toString(36).slice(2, 12)}`;
        seen.add(secret);
        const { bytes, at } = victimMessage(new MsgpackCodec(), secret);
        expect(await victim.request('echo', msgpackCodec.decode(bytes))).toMatchObject({ t: secret });
        attacker.send({ action: 'echo', seq: seq++, msg: bundleAttack(at, secret.length) });
        await attacker.waitForResponses(round + 1);
      }
      for (const r of attacker.responses) {
        expect(r.flag).toBe(FLAG_ERROR_BYTES);
        expect(r.blob.toString()).toBe('rpc_decode');
        for (const secret of seen) expect(r.msg.includes(secret) || r.blob.includes(secret)).toBe(false);
      }
      expect(attacker.isClosed).toBe(false); // a request it cannot decode costs only that request
      expect(ctx.logger.lines.some((l) => l.includes('extension type 0x62'))).toBe(true);
    } finally {
      victim.destroy();
      attacker.destroy();
      await ctx.server.close();
    }
  });

  it('property: random victim traffic and random attacker bytes, plain and in record sessions; no victim byte in any answer to the attacker', async () => {
    const ctx = await startServer({ echo: (v: unknown) => v });
    const TOKEN_LENGTH = 24;
    // where a victim's token sits in its plain message, as an attacker who knows the service would aim
    const aimed = victimMessage(new MsgpackCodec(), 'T'.repeat(TOKEN_LENGTH)).at;
    const alphabet = fc.constantFrom(...'ABCDEFGHJKLMNPQRSTUVWXYZ23456789');
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.string({ minLength: TOKEN_LENGTH - 5, maxLength: TOKEN_LENGTH - 5, unit: alphabet }), { minLength: 1, maxLength: 8 }),
          fc.array(
            fc.oneof(
              { weight: 4, arbitrary: fc.constant(bundleAttack(aimed, TOKEN_LENGTH)) },
              {
                weight: 1,
                arbitrary: fc.record({ offset: fc.integer({ min: 22, max: 4200 }), len: fc.integer({ min: 1, max: 60 }) }).map(({ offset, len }) => bundleAttack(offset, len)),
              },
              { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)) },
              { weight: 1, arbitrary: fc.constantFrom(...MSGPACKR_EXTENSIONS.map(([, b]) => Buffer.concat([hex('92 a0'), hex(b)]))) },
            ),
            { minLength: 1, maxLength: 12 },
          ),
          fc.boolean(),
          fc.boolean(),
          async (secrets, attacks, victimRecords, attackerRecords) => {
            const victim = await ClientStream.connect(ctx.url, { timeout: 5000, codec: new MsgpackCodec({ records: victimRecords }) });
            const attacker = attackerRecords ? await RawPeer.hello(ctx.address.port) : await RawPeer.connect(ctx.address.port);
            try {
              const tokens = secrets.map((s) => `TOKEN${s}`);
              const victimDone = Promise.all(tokens.map((t) => victim.request('echo', { p: 'x'.repeat(40), t, u: 'pad' })));
              let seq = 10;
              // interleaved with the victim's requests on the server's loop
              for (const msg of attacks) {
                attacker.send({ action: 'echo', seq: seq++, msg, format: attackerRecords ? FORMAT_RECORDS : 0 });
                await sleep(0);
              }
              const answers = await victimDone;
              expect(answers.map((a) => (a as { t: string }).t)).toEqual(tokens);
              // every attack is answered, or the connection closed (a broken record session cannot go on)
              const until = Date.now() + 3000;
              while (attacker.responses.length < attacks.length && !attacker.isClosed && Date.now() < until) await sleep(5);
              expect(attacker.responses.length === attacks.length || attacker.isClosed).toBe(true);
              for (const r of attacker.responses) {
                const text = Buffer.concat([r.msg, r.blob]).toString('latin1');
                for (const t of tokens) expect(text.includes(t.slice(5))).toBe(false);
                if (r.flag === FLAG_OK || r.flag === FLAG_OK_RECORDS) continue; // some random bytes are valid MessagePack
                if (r.flag === FLAG_GOAWAY && r.seq === 0) continue; // a broken record session: the connection is closing
                expect(r.flag).toBe(FLAG_ERROR_BYTES);
              }
            } finally {
              victim.destroy();
              attacker.destroy();
            }
          },
        ),
        { numRuns: 60, interruptAfterTimeLimit: 40_000 },
      );
    } finally {
      await ctx.server.close();
    }
  }, 60_000);
});

describe('every request is owned exactly once', () => {
  it('a request repeating the seq of one still in flight never runs: the connection closes (logged), the first is torn down with it', async () => {
    const started: string[] = [];
    const aborted: string[] = [];
    const ctx = await startServer({
      hang: (v: string, req) =>
        new Promise(() => {
          started.push(v);
          req.signal.addEventListener('abort', () => aborted.push(v));
        }),
    });
    try {
      for (const hello of [true, false]) {
        started.length = 0;
        aborted.length = 0;
        const peer = hello ? await RawPeer.hello(ctx.address.port) : await RawPeer.connect(ctx.address.port);
        peer.send(
          { action: 'hang', seq: 7, msg: msgpackCodec.encode('first') },
          { action: 'hang', seq: 7, msg: msgpackCodec.encode('second') },
          { action: 'hang', seq: 8, msg: msgpackCodec.encode('after') },
        );
        expect(await peer.closedWithin(3000)).toBe(true);
        expect(started).toEqual(['first']);
        await waitFor(() => aborted.length === 1);
        expect(aborted).toEqual(['first']);
        await waitFor(() => ctx.server.stats.inFlight === 0 && ctx.server.stats.connections === 0);
      }
      expect(ctx.logger.lines.filter((l) => l.includes('repeats the seq of a request still in flight'))).toHaveLength(2);
    } finally {
      await ctx.server.close();
    }
  });

  it('300 connections sending duplicate seqs leave no handler running once they are gone', async () => {
    let running = 0;
    const ctx = await startServer({
      hang: (_v: unknown, req) =>
        new Promise(() => {
          running++;
          req.signal.addEventListener('abort', () => running--);
        }),
    });
    try {
      const peers = await Promise.all(Array.from({ length: 300 }, () => RawPeer.connect(ctx.address.port)));
      for (const peer of peers) peer.send({ action: 'hang', seq: 1, msg: msgpackCodec.encode(1) }, { action: 'hang', seq: 1, msg: msgpackCodec.encode(2) });
      await Promise.all(peers.map((p) => p.closedWithin(5000)));
      await waitFor(() => running === 0 && ctx.server.stats.inFlight === 0, 5000);
    } finally {
      await ctx.server.close();
    }
  });

  it('a seq may be used again once its request was answered', async () => {
    const ctx = await startServer({ echo: (v: unknown) => v });
    const peer = await RawPeer.connect(ctx.address.port);
    try {
      for (let i = 0; i < 5; i++) {
        peer.send({ action: 'echo', seq: 3, msg: msgpackCodec.encode(i) });
        await peer.waitForResponses(i + 1);
      }
      expect(peer.responses.map((r) => msgpackCodec.decode(r.msg))).toEqual([0, 1, 2, 3, 4]);
      expect(peer.isClosed).toBe(false);
    } finally {
      peer.destroy();
      await ctx.server.close();
    }
  });
});

describe("the end of a connection is the server's to decide", () => {
  it('a GOAWAY_ACK the server never asked for closes the connection as a protocol violation; nothing runs unanswered', async () => {
    const ran: number[] = [];
    const ctx = await startServer({ note: (v: number) => (ran.push(v), v) });
    try {
      const peer = await RawPeer.hello(ctx.address.port);
      peer.send({ action: ACTION_GOAWAY_ACK, seq: 0, format: FORMAT_EVENT });
      await sleep(100);
      for (let i = 0; i < 20; i++) peer.send({ action: 'note', seq: 100 + i, msg: msgpackCodec.encode(i) });
      expect(await peer.closedWithin(3000)).toBe(true);
      // every request that ran was answered; none ran unanswered
      expect(ran.length).toBe(peer.responses.filter((r) => r.flag === FLAG_OK).length);
      expect(ran.length).toBe(0);
      expect(ctx.logger.lines.some((l) => l.includes('GOAWAY_ACK without a GOAWAY'))).toBe(true);
    } finally {
      await ctx.server.close();
    }
  });

  it('a request after the server ended the connection (past its GOAWAY_ACK) never runs and is not dropped silently', async () => {
    const ran: number[] = [];
    const ctx = await startServer({ note: (v: number) => (ran.push(v), v) }, { drainGrace: 2000 });
    try {
      const peer = await RawPeer.hello(ctx.address.port, ALL_FEATURES, true);
      const closing = ctx.server.close();
      await waitFor(() => peer.responses.length === 1); // GOAWAY
      peer.send({ action: ACTION_GOAWAY_ACK, seq: 0, format: FORMAT_EVENT });
      await waitFor(() => peer.ended, 3000); // the server's FIN
      for (let i = 0; i < 20; i++) peer.send({ action: 'note', seq: 100 + i, msg: msgpackCodec.encode(i) });
      await closing;
      expect(ran).toEqual([]);
      expect(ctx.logger.lines.some((l) => l.includes('after the server ended the connection'))).toBe(true);
    } finally {
      await ctx.server.close();
    }
  });
});

describe('a peer that breaks the protocol still gets what it was owed', () => {
  const bad: [string, (seq: number) => Buffer][] = [
    ['a frame with a bad magic', () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n__________')],
    ['a duplicate seq', () => encodeRequest({ action: 'slow', seq: 1, msg: msgpackCodec.encode(0) })],
  ];
  for (const [name, frame] of bad) {
    it(`answers owed before ${name} go out, then the connection closes with the reason`, async () => {
      const ctx = await startServer({ echo: (v: unknown) => v, slow: async (v: unknown) => (await sleep(150), v) });
      try {
        for (let round = 0; round < 5; round++) {
          const peer = await RawPeer.connect(ctx.address.port);
          // sync answers, async ones, one still running when the bad frame arrives
          peer.send(
            { action: 'slow', seq: 1, msg: msgpackCodec.encode('s1') },
            { action: 'echo', seq: 2, msg: msgpackCodec.encode('e2') },
            { action: 'echo', seq: 3, msg: msgpackCodec.encode('e3') },
            { action: 'echo', seq: 4, msg: msgpackCodec.encode('e4') },
            frame(5),
            { action: 'echo', seq: 6, msg: msgpackCodec.encode('after the violation') },
          );
          expect(await peer.closedWithin(3000)).toBe(true);
          const answers = peer.responses.map((r) => [r.seq, msgpackCodec.decode(r.msg)]);
          expect(answers.sort()).toEqual([
            [1, 's1'],
            [2, 'e2'],
            [3, 'e3'],
            [4, 'e4'],
          ]);
        }
      } finally {
        await ctx.server.close();
      }
    });
  }

  it('a handler that never answers does not keep a violating connection open past VIOLATION_GRACE (server clock)', async () => {
    const clock = new FakeClock();
    const ctx = await startServer({ hang: () => new Promise(() => {}), echo: (v: unknown) => v }, { clock });
    const other = await ClientStream.connect(ctx.url, { pingInterval: 0 });
    try {
      const peer = await RawPeer.connect(ctx.address.port);
      peer.send({ action: 'hang', seq: 1 }, { action: 'echo', seq: 2, msg: msgpackCodec.encode(2) }, Buffer.from('garbage garbage garbage garbage!'));
      await waitFor(() => peer.responses.length === 1, 2000); // read up to the garbage: the violation is known, its grace runs from now
      clock.advance(VIOLATION_GRACE - 1);
      expect(await other.request('echo', 'round trip')).toBe('round trip'); // what the server did by now reached the sockets
      expect(peer.isClosed).toBe(false); // the hung handler still has its grace
      clock.advance(1);
      expect(await peer.closedWithin(2000)).toBe(true);
      expect(peer.responses.map((r) => r.seq)).toEqual([2]);
    } finally {
      other.destroy();
      await ctx.server.close();
    }
  });
});

describe('bounds on what one request may cost', () => {
  it('a request past maxFrameSize is refused alone, unread: rpc_frame_too_large (rpc_decode to v1 peers), the requests around it are answered', async () => {
    const ctx = await startServer({ echo: (v: unknown) => v });
    const peers: RawPeer[] = [];
    try {
      const over = DEFAULT_SERVER_MAX_FRAME_SIZE + 1;
      for (const hello of [true, false]) {
        const peer = hello ? await RawPeer.hello(ctx.address.port, ALL_FEATURES & ~FEATURE_RECORDS) : await RawPeer.connect(ctx.address.port);
        peers.push(peer);
        const big = encodeRequest({ action: 'echo', seq: 2, msg: Buffer.alloc(over, 0xc0) });
        // the big frame arrives in pieces, between two small requests
        peer.send({ action: 'echo', seq: 1, msg: msgpackCodec.encode('before') });
        for (let off = 0; off < big.length; off += 256 * 1024) peer.socket.write(big.subarray(off, off + 256 * 1024));
        peer.send({ action: 'echo', seq: 3, msg: msgpackCodec.encode('after') });
        const answers = await peer.waitForResponses(3);
        expect(answers.map((r) => [r.seq, r.flag, r.flag === FLAG_OK ? msgpackCodec.decode(r.msg) : r.blob.toString()])).toEqual([
          [1, FLAG_OK, 'before'],
          [2, FLAG_ERROR_BYTES, hello ? 'rpc_frame_too_large' : 'rpc_decode'],
          [3, FLAG_OK, 'after'],
        ]);
        expect(peer.isClosed).toBe(false);
      }
    } finally {
      for (const peer of peers) peer.destroy();
      await ctx.server.close();
    }
  });

  it("a client sending a value past the server's maxFrameSize gets FrameTooLargeError for that call alone", async () => {
    const ctx = await startServer({ echo: (v: unknown) => v }, { maxFrameSize: 64 * 1024 });
    const client = await ClientStream.connect(ctx.url, { timeout: 5000 });
    try {
      const [big, small] = await Promise.allSettled([client.request('echo', 'x'.repeat(100_000)), client.request('echo', 'small')]);
      expect(big.status === 'rejected' && (big.reason as OccamsError).code).toBe('rpc_frame_too_large');
      expect(big.status === 'rejected' && big.reason).toBeInstanceOf(FrameTooLargeError);
      expect(small).toEqual({ status: 'fulfilled', value: 'small' });
      expect(await client.request('echo', 'still')).toBe('still');
      expect(client.state).toBe('ready');
    } finally {
      client.destroy();
      await ctx.server.close();
    }
  });
});

describe('the weight of a request bounds its decode', () => {
  it('a request heavier than maxRequestWeight is answered rpc_decode without being decoded; lighter ones and other connections are served', async () => {
    const seen: unknown[] = [];
    const ctx = await startServer({ note: (v: unknown) => (seen.push(v), 'ok') });
    const peer = await RawPeer.connect(ctx.address.port);
    try {
      const heavyMap = Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [`k${i}`, i])); // 60k entries: over 250,000
      const heavyArrays = Array.from({ length: 130_000 }, () => []); // 130k arrays: over
      const light = Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `n${i}`, ok: true })); // rows: well under
      const plain = new Packr({ useRecords: false, variableMapSize: true });
      peer.send(
        { action: 'note', seq: 1, msg: plain.pack(heavyMap) },
        { action: 'note', seq: 2, msg: plain.pack(heavyArrays) },
        { action: 'note', seq: 3, msg: plain.pack(light) },
        // a map header claiming 4 billion entries: refused from its header
        { action: 'note', seq: 4, msg: hex('df ff ff ff ff 00') },
      );
      const answers = await peer.waitForResponses(4);
      expect(answers.map((r) => [r.seq, r.flag === FLAG_OK ? msgpackCodec.decode(r.msg) : r.blob.toString()])).toEqual([
        [1, 'rpc_decode'],
        [2, 'rpc_decode'],
        [3, 'ok'],
        [4, 'rpc_decode'],
      ]);
      expect(seen).toHaveLength(1);
      expect(ctx.logger.lines.filter((l) => l.includes('see maxRequestWeight'))).toHaveLength(3);
    } finally {
      peer.destroy();
      await ctx.server.close();
    }
  });

  it('maxRequestWeight: 0 lifts the bound, and a request with heavy metadata is bounded too', async () => {
    const ctx = await startServer({ note: (v: unknown[]) => v.length }, { maxRequestWeight: 0 });
    const client = await ClientStream.connect(ctx.url, { timeout: 5000 });
    try {
      expect(
        await client.request(
          'note',
          Array.from({ length: 130_000 }, () => []),
        ),
      ).toBe(130_000);
    } finally {
      client.destroy();
      await ctx.server.close();
    }
    const bounded = await startServer({ note: (v: unknown) => v }, { maxRequestWeight: 1000 });
    const c2 = await ClientStream.connect(bounded.url, { timeout: 5000 });
    try {
      const meta = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`m${i}`, 'v']));
      // the metadata is weighed like the value: too heavy, it is dropped (as a malformed header is), the call runs
      expect(await c2.request('note', 'light', { meta })).toBe('light');
      await expect(
        c2.request(
          'note',
          Array.from({ length: 600 }, () => 'x'),
        ),
      ).rejects.toMatchObject({ code: 'rpc_decode' });
      expect(c2.state).toBe('ready');
      // in a record session: the refused request described a shape; the next one refers to it, and decodes
      expect(c2.features & FEATURE_RECORDS).toBe(FEATURE_RECORDS);
      await expect(c2.request('note', [{ alpha: 1, beta: 'b' }, ...Array.from({ length: 600 }, () => 'x')])).rejects.toMatchObject({ code: 'rpc_decode' });
      expect(await c2.request('note', { alpha: 2, beta: 'again' })).toEqual({ alpha: 2, beta: 'again' });
      expect(
        await c2.request('note', [
          { alpha: 3, beta: 'c' },
          { alpha: 4, beta: 'd' },
        ]),
      ).toEqual([
        { alpha: 3, beta: 'c' },
        { alpha: 4, beta: 'd' },
      ]);
      expect(c2.state).toBe('ready');
    } finally {
      c2.destroy();
      await bounded.server.close();
    }
  });
});

describe('new property names are paced, not refused (newKeyRate)', () => {
  /** An object of `n` keys named for `tag`: new names at every new tag. */
  const shape = (tag: string, n: number): Record<string, number> => Object.fromEntries(Array.from({ length: n }, (_, k) => [`${tag}_${k}`, k]));

  it('a session counts the names its peer makes it learn: described again, a known name counts nothing', () => {
    const writer = new MsgpackCodec().session()!;
    const reader = new MsgpackCodec().session()!;
    const decode = (value: unknown): unknown => reader.decode(Buffer.from(writer.encode(value)));
    expect(decode([shape('a', 40), shape('b', 10)])).toEqual([shape('a', 40), shape('b', 10)]);
    expect(reader.newKeys).toBe(50);
    // more shapes than slots: the writer cycles through its 64 slots and describes them again, with the same names
    for (let round = 0; round < 3; round++) for (let i = 0; i < 80; i++) decode({ ...shape('a', 3), [`x${i}`]: i });
    expect(reader.newKeys).toBe(50 + 80);
    expect(new MsgpackCodec().newKeys).toBeUndefined(); // plain codecs describe no shapes
  });

  it('plain maps: one message in sixteen is walked for its keys and stands for the others; known names, and values, count nothing', () => {
    const plain = new MsgpackCodec({ records: false });
    const census = plain.keyCensus();
    let total = 0;
    // 1,600 messages of 100 new keys each: 160,000 new names, estimated from about 100 of them
    for (let m = 0; m < 1600; m++) total += census.count(Buffer.from(plain.encode({ tag: 'x', rows: [shape(`n${m}`, 100)] })));
    expect(total).toBeGreaterThan(0.6 * 160_000);
    expect(total).toBeLessThan(1.4 * 160_000);
    // rows of a schema: its names once, then nothing; string values are not names
    const rows = new MsgpackCodec({ records: false }).keyCensus();
    let schema = 0;
    for (let m = 0; m < 800; m++) schema += rows.count(Buffer.from(plain.encode(Array.from({ length: 10 }, (_, i) => ({ id: m * 10 + i, name: `user ${m}-${i}`, ok: true })))));
    expect(schema).toBeLessThanOrEqual(16 * 3);
    // in a record session, plain maps are counted as well (a peer sending maps instead of shapes), records are not
    const writer = new MsgpackCodec().session()!;
    const reader = new MsgpackCodec().session()!;
    const inSession = reader.keyCensus!();
    let mapped = 0;
    for (let m = 0; m < 1600; m++) {
      // Map values go out as MessagePack maps even in a session; their keys are data
      const msg = Buffer.from(writer.encode({ id: m, tags: new Map(Array.from({ length: 20 }, (_, k) => [`m${m}_${k}`, k])) }));
      expect(reader.decode(msg)).toMatchObject({ id: m });
      mapped += inSession.count(msg);
    }
    expect(mapped).toBeGreaterThan(0.6 * 32_000);
    expect(mapped).toBeLessThan(1.4 * 32_000 + 16 * 2);
  });

  it('a plain peer (no record session) sending maps of new names is paced as well; every call answered', async () => {
    const ctx = await startServer({ keys: (v: { rows: Record<string, number>[] }) => Object.keys(v.rows[0]!).length }, { newKeyRate: 5000, concurrencyLimit: false });
    const client = await ClientStream.connect(ctx.url, { timeout: 30_000, codec: new MsgpackCodec({ records: false }) });
    try {
      expect(client.features & FEATURE_RECORDS).toBe(0);
      // 400 x 100 new names: about 40,000 estimated, eight times the budget at once
      const counts = await Promise.all(Array.from({ length: 400 }, (_, i) => client.request('keys', { rows: [shape(`p${i}`, 100)] })));
      expect(counts).toEqual(Array.from({ length: 400 }, () => 100));
      expect(ctx.server.stats.ended.keyPaced).toBeGreaterThan(0);
      expect(ctx.logger.lines.filter((l) => l.includes('past newKeyRate 5000/s'))).toHaveLength(1);
    } finally {
      client.destroy();
      await ctx.server.close();
    }
  });

  it("metadata's keys count too: calls carrying maps of new names in their metadata are paced; every call answered", async () => {
    const ctx = await startServer({ echo: (v: unknown) => v }, { newKeyRate: 5000, concurrencyLimit: false });
    const client = await ClientStream.connect(ctx.url, { timeout: 30_000 });
    try {
      const answers = await Promise.all(Array.from({ length: 400 }, (_, i) => client.request('echo', i, { meta: shape(`meta${i}`, 100) })));
      expect(answers).toEqual(Array.from({ length: 400 }, (_, i) => i));
      expect(ctx.server.stats.ended.keyPaced).toBeGreaterThan(0);
    } finally {
      client.destroy();
      await ctx.server.close();
    }
  });

  it('a connection making the server learn names past newKeyRate waits for its budget, every call answered; one reusing its names is never paced', async () => {
    // the server's time is a fake clock: the budget refills, and paced reading resumes, only as the test moves it
    const clock = new FakeClock();
    const ctx = await startServer({ keys: (v: Record<string, number>) => Object.keys(v).length }, { newKeyRate: 500, concurrencyLimit: false, clock });
    const greedy = await ClientStream.connect(ctx.url, { timeout: 20_000 });
    const steady = await ClientStream.connect(ctx.url, { timeout: 20_000 });
    try {
      expect(greedy.features & FEATURE_RECORDS).toBe(FEATURE_RECORDS);
      // 15 x 100 new names, 500 a second holding one second's worth: 500 at once, the 6th request takes the
      // budget to -100 (read: reading stops after it), then one more request per 200 ms: the 15th at 1 800 ms
      let answered = 0;
      const all = Promise.all(Array.from({ length: 15 }, (_, i) => greedy.request('keys', shape(`g${i}`, 100)).finally(() => answered++)));
      await waitFor(() => answered === 6, 2000);
      for (let step = 1; step <= 9; step++) {
        clock.advance(199);
        expect(await steady.request('keys', { a: 1 })).toBe(1); // a round trip: what the server could read by now, it read
        expect(answered).toBe(5 + step); // not a ms early
        clock.advance(1);
        await waitFor(() => answered === 6 + step, 2000);
      }
      const counts = await all;
      expect(counts).toEqual(Array.from({ length: 15 }, () => 100));
      const paced = ctx.server.stats.ended.keyPaced;
      expect(paced).toBeGreaterThan(0);
      expect(ctx.logger.lines.filter((l) => l.includes('past newKeyRate 500/s'))).toHaveLength(1);
      // 100 shapes from a vocabulary of 300 names, cycled: more shapes than slots, described again and again, no new name
      const vocabulary = Array.from({ length: 100 }, (_, i) => ({ ...shape('v', 2), [`w${i}`]: i }));
      for (let round = 0; round < 5; round++) {
        const answers = await Promise.all(vocabulary.map((v) => steady.request('keys', v)));
        expect(answers.every((n) => n === 3)).toBe(true);
      }
      expect(ctx.server.stats.ended.keyPaced).toBe(paced);
    } finally {
      greedy.destroy();
      steady.destroy();
      await ctx.server.close();
    }
  });
});

describe('memory a burst grew is given back', () => {
  it('after a burst of large answers, an idle connection and the codec hold no more than their resting buffers', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    const mid = Buffer.alloc(200 * 1024, 7);
    const ctx = await startServer({ big: () => ({ data: big }), mid: () => ({ data: mid }) }, { idleTimeout: 60_000, concurrencyLimit: false });
    const conns: ServerConnection[] = [];
    ctx.server.on('connection', (c: ServerConnection) => conns.push(c));
    const client = await ClientStream.connect(ctx.url, { timeout: 10_000 });
    // (the encode buffer is the process's: earlier small values may have grown it a little, up to 1 MiB it stays)
    const resting = Math.max(ownBufferSize(), 8192);
    try {
      const results = await Promise.all(Array.from({ length: 4 }, () => client.request('big', 0)));
      for (const r of results) expect((r as { data: Buffer }).data.length).toBe(big.length);
      expect(ownBufferSize()).toBeLessThanOrEqual(resting); // the codec's encode buffer went back at once
      // many answers in flight at once: the writer keeps spare buffers for the next burst
      // (bounded retries: a loaded machine may flush each answer before the next is written)
      for (let i = 0; i < 5 && conns[0]!.writeBuffers <= 4 * ARENA_SIZE; i++) await Promise.all(Array.from({ length: 128 }, () => client.request('mid', 0)));
      expect(conns[0]!.writeBuffers).toBeGreaterThan(4 * ARENA_SIZE);
      expect(conns[0]!.out.heldBytes).toBeGreaterThan(3 * mid.length); // 200 KiB answers were encoded apart, in a scratch buffer
      await waitFor(() => conns[0]!.writeBuffers <= (1 + 2) * ARENA_SIZE, 5000); // the idle sweep trimmed it
      expect(conns[0]!.out.heldBytes).toBe(0); // the scratch too
      expect(await client.request('big', 0)).toMatchObject({ data: { length: big.length } }); // and it still serves
    } finally {
      client.destroy();
      await ctx.server.close();
    }
  });
});

describe('one connection cannot hold the event loop', () => {
  it('a peer pipelining tens of thousands of requests takes turns with another connection, which is served in between', async () => {
    let attackerRan = 0;
    let attackerAtVictim = -1;
    const ctx = await startServer({
      a: () => void attackerRan++,
      v: () => {
        attackerAtVictim = attackerRan;
        return 'served';
      },
    });
    const attacker = await RawPeer.connect(ctx.address.port);
    const victim = await ClientStream.connect(ctx.url, { timeout: 10_000 });
    try {
      const N = 60_000;
      const one = encodeRequest({ action: 'a', seq: 0, msg: msgpackCodec.encode(1) });
      const flood = Buffer.alloc(one.length * N);
      for (let i = 0; i < N; i++) {
        one.copy(flood, i * one.length);
        flood.writeUInt32LE(i + 1, i * one.length + 8); // seq i + 1
      }
      attacker.socket.write(flood);
      const answered = victim.request('v', 0);
      // hold this process's loop (the server's too) while both requests reach the server's socket buffers, after the victim's flush
      process.nextTick(() => {
        const until = Date.now() + 300;
        while (Date.now() < until);
      });
      expect(await answered).toBe('served');
      // the victim's request was read while the flood was still being read
      expect(attackerAtVictim).toBeLessThan(3000); // a 2 ms slice: hundreds; unsliced, a socket buffer's worth (5,751 here)
      // every request of the flood is answered: run, or refused unrun when the server's concurrency limit found the machine too slow for them
      await attacker.waitForResponses(N, 30_000);
      const refused = attacker.responses.filter((r) => r.flag !== 0);
      expect(refused.every((r) => r.blob.toString() === 'rpc_unreachable')).toBe(true);
      expect(attackerRan + refused.length).toBe(N);
    } finally {
      attacker.destroy();
      victim.destroy();
      await ctx.server.close();
    }
  });
});

describe('a connection that overstays its turn sits out only for others', () => {
  // The server's time is a fake clock moved only by the heavy handler: each heavy request "takes" 20 ms of the
  // connection's reading (its handler runs as the frame is read), past READ_OVERSTAY_MS in every turn. Its timers
  // never fire: a connection sitting out reads on only when a turn of the loop goes by with nobody else reading.
  const heavyServer = (clock: FakeClock) =>
    startServer(
      {
        heavy: (n: number) => {
          clock.time += 20;
          return n;
        },
        v: (n: number) => n,
      },
      { clock, concurrencyLimit: false },
    );
  const heavyFrames = (n: number) => Array.from({ length: n }, (_, i) => ({ action: 'heavy', seq: i + 1, msg: msgpackCodec.encode(i) }));

  it('alone, it never sits out: nobody would use the loop meanwhile', async () => {
    const clock = new FakeClock();
    const ctx = await heavyServer(clock);
    const heavy = await RawPeer.connect(ctx.address.port);
    try {
      heavy.send(...heavyFrames(40));
      await heavy.waitForResponses(40, 10_000);
      expect(clock.time - 1_000_000).toBe(800);
      expect(ctx.server.stats.ended.satOut).toBe(0);
    } finally {
      heavy.destroy();
      await ctx.server.close();
    }
  });

  it('while another connection reads, it sits out; once that one is quiet, it reads on in the next turn of the loop', async () => {
    const clock = new FakeClock();
    const ctx = await heavyServer(clock);
    const heavy = await RawPeer.connect(ctx.address.port);
    const other = await ClientStream.connect(ctx.url, { timeout: 30_000 });
    try {
      expect(await other.request('v', 0)).toBe(0); // it read lately
      heavy.send(...heavyFrames(40));
      for (let i = 1; i <= 20; i++) expect(await other.request('v', i)).toBe(i);
      // every heavy request is answered though no timer of the server's ever fired
      await heavy.waitForResponses(40, 10_000);
      expect(heavy.responses.map((r) => r.flag)).toEqual(Array.from({ length: 40 }, () => FLAG_OK));
      expect(ctx.server.stats.ended.satOut).toBeGreaterThan(0);
    } finally {
      heavy.destroy();
      other.destroy();
      await ctx.server.close();
    }
  });
});

describe('a Nest OccamsServer with default options, attacked', () => {
  it("refuses the bundled-strings read and a duplicate seq, never echoes another connection's bytes, and keeps serving its victim", async () => {
    const ms = await startMicroservice(TestAppModule);
    const victim = await ClientStream.connect({ host: '127.0.0.1', port: ms.port }, { timeout: 5000, codec: new MsgpackCodec({ records: false }) });
    const attacker = await RawPeer.connect(ms.port);
    try {
      const secret = 'NEST-SECRET-TOKEN-0001';
      const { bytes, at } = victimMessage(new MsgpackCodec(), secret);
      expect(await victim.request('echo', msgpackCodec.decode(bytes))).toMatchObject({ t: secret });
      attacker.send({ action: 'echo', seq: 1, msg: bundleAttack(at, secret.length) });
      const [answer] = await attacker.waitForResponses(1);
      expect(answer!.blob.toString()).toBe('rpc_decode');
      expect(answer!.msg.includes(secret)).toBe(false);
      // a duplicate seq: the second never runs, the connection closes, the first is answered
      attacker.send({ action: 'slow', seq: 2, msg: msgpackCodec.encode(50) }, { action: 'slow', seq: 2, msg: msgpackCodec.encode(60) });
      expect(await attacker.closedWithin(3000)).toBe(true);
      expect(attacker.responses.map((r) => [r.seq, msgpackCodec.decode(r.msg)])).toEqual([
        [1, undefined],
        [2, 50],
      ]);
      expect(await victim.request('echo', 'still served')).toBe('still served');
    } finally {
      attacker.destroy();
      victim.destroy();
      await ms.app.close();
    }
  });
});
