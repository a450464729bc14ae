/**
 * Hostile peers on the server (issue 27): no byte of one connection reaches
 * another, every request is owned exactly once, a peer cannot turn the
 * server's bookkeeping against it. Raw frames where the wire is the attack;
 * a victim and an attacker on two connections where the attack is on
 * someone else.
 */
import fc from 'fast-check';
import { ClientStream } from '../lib/client/client-stream.js';
import { MsgpackCodec, msgpackCodec } from '../lib/codec/msgpack-codec.js';
import { checkMessage, MessageRefusedError } from '../lib/codec/msgpack-check.js';
import { FLAG_ERROR_BYTES, FLAG_OK } from '../lib/protocol/constants.js';
import { FLAG_OK_RECORDS, FORMAT_RECORDS } from '../lib/protocol/extensions.js';
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
              { weight: 1, arbitrary: fc.record({ offset: fc.integer({ min: 22, max: 4200 }), len: fc.integer({ min: 1, max: 60 }) }).map(({ offset, len }) => bundleAttack(offset, len)) },
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
