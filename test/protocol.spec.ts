import fc from 'fast-check';

import { FrameTooLargeError, InvalidVersionError, ProtocolError } from '../lib/errors.js';
import { RequestDecoder } from '../lib/protocol/request-decoder.js';
import { encodeRequest } from '../lib/protocol/request-frame.js';
import { ResponseDecoder } from '../lib/protocol/response-decoder.js';
import { encodeResponse } from '../lib/protocol/response-frame.js';

const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');

// Golden bytes written by hand from the reference tables (little-endian).
const PING_SEQ1 = hex(`
  254d 01 00  00000000  0100000000000000  0000000000000000  00000000  00000000`);
const CALC_ADD = hex(`
  254d 01 00  08000080  0200000000000000  0201000000000000  03000000  02000000
  43616c632e616464  920102  6869`); // "Calc.add", msgpack [1,2], blob "hi"
const OK_SEQ2 = hex(`254d 01 00  01000000  0200000000000000  00000000  03`);
const ERRNO_22_SEQ5 = hex(`254d 01 01  16000000  0500000000000000  00000000`);
const DIV_ZERO_SEQ7 = hex(`254d 01 02  00000000  0700000000000000  10000000  6469766973696f6e206279207a65726f`);

type Req = { format: number; action: number | string; seq: number; clientId: number; msg: Buffer; blob: Buffer };
type Res = { flag: number; seq: number; msgLen: number; msg: Buffer; blob: Buffer };

function requestCollector(max?: number) {
  const out: Req[] = [];
  const decoder = new RequestDecoder({ onRequest: (format, action, seq, clientId, msg, blob) => out.push({ format, action, seq, clientId, msg, blob }) }, max);
  return { out, decoder };
}
function responseCollector(max?: number) {
  const out: Res[] = [];
  const decoder = new ResponseDecoder({ onResponse: (flag, seq, msgLen, msg, blob) => out.push({ flag, seq, msgLen, msg, blob }) }, max);
  return { out, decoder };
}

describe('frames: golden bytes', () => {
  it('encodes a ping request', () => {
    expect(encodeRequest({ action: 0, seq: 1 })).toEqual(PING_SEQ1);
  });
  it('encodes a string-action request with msg and blob', () => {
    const frame = encodeRequest({ action: 'Calc.add', seq: 2, clientId: 0x0102, msg: hex('920102'), blob: Buffer.from('hi') });
    expect(frame).toEqual(CALC_ADD);
  });
  it('encodes ok, errno and error-bytes responses', () => {
    expect(encodeResponse({ seq: 2, msg: hex('03') })).toEqual(OK_SEQ2);
    expect(encodeResponse({ flag: 1, seq: 5, errno: 22 })).toEqual(ERRNO_22_SEQ5);
    expect(encodeResponse({ flag: 2, seq: 7, blob: Buffer.from('division by zero') })).toEqual(DIV_ZERO_SEQ7);
  });
  it('decodes the golden requests', () => {
    const { out, decoder } = requestCollector();
    expect(decoder.push(Buffer.concat([PING_SEQ1, CALC_ADD]))).toBeUndefined();
    expect(out).toHaveLength(2);
    expect(out[0]).toMatchObject({ action: 0, seq: 1, clientId: 0 });
    expect(out[0]!.msg.length).toBe(0);
    expect(out[1]).toMatchObject({ action: 'Calc.add', seq: 2, clientId: 0x0102, format: 0 });
    expect(out[1]!.msg).toEqual(hex('920102'));
    expect(out[1]!.blob.toString()).toBe('hi');
  });
  it('decodes the golden responses', () => {
    const { out, decoder } = responseCollector();
    expect(decoder.push(Buffer.concat([OK_SEQ2, ERRNO_22_SEQ5, DIV_ZERO_SEQ7]))).toBeUndefined();
    expect(out.map((r) => [r.flag, r.seq, r.msgLen])).toEqual([
      [0, 2, 1],
      [1, 5, 22],
      [2, 7, 0],
    ]);
    expect(out[0]!.msg).toEqual(hex('03'));
    expect(out[1]!.msg.length + out[1]!.blob.length).toBe(0);
    expect(out[2]!.blob.toString()).toBe('division by zero');
  });
  it('carries seq above 2^32 exactly', () => {
    const seq = 2 ** 40 + 12345;
    const { out, decoder } = requestCollector();
    decoder.push(encodeRequest({ action: 'x', seq, clientId: 2 ** 50 }));
    expect(out[0]).toMatchObject({ seq, clientId: 2 ** 50 });
  });
});

describe('frames: incremental decoding', () => {
  it('decodes frames split at every byte', () => {
    const bytes = Buffer.concat([PING_SEQ1, CALC_ADD, PING_SEQ1]);
    const { out, decoder } = requestCollector();
    for (let i = 0; i < bytes.length; i++) expect(decoder.push(bytes.subarray(i, i + 1))).toBeUndefined();
    expect(out.map((r) => r.action)).toEqual([0, 'Calc.add', 0]);
    expect(out[1]!.blob.toString()).toBe('hi');
    expect(decoder.buffered).toBe(0);
  });
  it('does not copy a frame that arrives whole', () => {
    const { out, decoder } = requestCollector();
    decoder.push(CALC_ADD);
    expect(out[0]!.msg.buffer).toBe(CALC_ADD.buffer);
  });
  it('rejects bad magic, bad version and oversize lengths with typed errors', () => {
    const badMagic = Buffer.from(PING_SEQ1);
    badMagic[0] = 0x26;
    expect(requestCollector().decoder.push(badMagic)).toBeInstanceOf(ProtocolError);
    const badVer = Buffer.from(PING_SEQ1);
    badVer[2] = 2;
    const verErr = requestCollector().decoder.push(badVer);
    expect(verErr).toBeInstanceOf(InvalidVersionError);
    expect(verErr?.code).toBe('rpc_invalid_ver');
    // a header announcing 1 GiB is refused from the header alone
    const huge = Buffer.from(PING_SEQ1);
    huge.writeUInt32LE(1 << 30, 24);
    const { decoder, out } = requestCollector(1024 * 1024);
    const err = decoder.push(huge);
    expect(err).toBeInstanceOf(FrameTooLargeError);
    expect(err?.code).toBe('rpc_frame_too_large');
    expect(decoder.buffered).toBe(0);
    // dead after the first error
    expect(decoder.push(PING_SEQ1)).toBe(err);
    expect(out).toHaveLength(0);
  });
  it('reads length fields with the top bit set as unsigned: too large, never negative', () => {
    for (const field of [24, 28]) {
      const bad = Buffer.from(CALC_ADD);
      bad.writeUInt32LE(0x8000_0000, field); // msg_len, then blob_len: 2 GiB
      expect(requestCollector().decoder.push(bad)).toBeInstanceOf(FrameTooLargeError);
    }
    const big = Buffer.from(OK_SEQ2);
    big.writeUInt32LE(0xffff_fff0, 4); // msg_len
    expect(responseCollector().decoder.push(big)).toBeInstanceOf(FrameTooLargeError);
  });
  it('refuses a seq of 2^53 or more in a frame read, request or response', () => {
    for (const hi of [0x0020_0000, 0xffff_ffff]) {
      const req = Buffer.from(PING_SEQ1);
      req.writeUInt32LE(hi, 12); // the seq's high half
      expect(requestCollector().decoder.push(req)).toBeInstanceOf(ProtocolError);
      const res = Buffer.from(OK_SEQ2);
      res.writeUInt32LE(hi, 12);
      expect(responseCollector().decoder.push(res)).toBeInstanceOf(ProtocolError);
    }
    const last = Buffer.from(PING_SEQ1);
    last.writeUInt32LE(0x001f_ffff, 12);
    last.writeUInt32LE(0xffff_ffff, 8);
    const { out, decoder } = requestCollector();
    expect(decoder.push(last)).toBeUndefined();
    expect(out[0]!.seq).toBe(2 ** 53 - 1);
  });
  it('refuses to write a seq that is not a u53', () => {
    for (const seq of [-1, 2 ** 53, Number.NaN, 1.5 * 2 ** 53]) expect(() => encodeRequest({ action: 'x', seq })).toThrow(RangeError);
    expect(() => encodeRequest({ action: 'x', seq: 2 ** 53 - 1 })).not.toThrow();
  });
  it('rejects a negative blob_len in a response', () => {
    const bad = Buffer.from(OK_SEQ2);
    bad.writeInt32LE(-1, 16);
    expect(responseCollector().decoder.push(bad)).toBeInstanceOf(ProtocolError);
  });

  const frameArb = fc.record({
    action: fc.oneof(fc.integer({ min: 0, max: 0x7fffffff }), fc.string({ maxLength: 40 })),
    seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    clientId: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    format: fc.integer({ min: 0, max: 255 }),
    msg: fc.uint8Array({ maxLength: 300 }),
    blob: fc.uint8Array({ maxLength: 300 }),
  });

  it('property: any frames, any split points, decode to the same frames', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames.map((f) => encodeRequest(f)));
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const { out, decoder } = requestCollector();
        let prev = 0;
        for (const p of [...points, bytes.length]) {
          expect(decoder.push(bytes.subarray(prev, p))).toBeUndefined();
          prev = p;
        }
        expect(out).toHaveLength(frames.length);
        out.forEach((r, i) => {
          const f = frames[i]!;
          expect(r.action).toEqual(f.action);
          expect(r.seq).toBe(f.seq);
          expect(r.clientId).toBe(f.clientId);
          expect(r.format).toBe(f.format);
          expect(Buffer.compare(r.msg, Buffer.from(f.msg))).toBe(0);
          expect(Buffer.compare(r.blob, Buffer.from(f.blob))).toBe(0);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('property: random garbage never throws and never buffers past the limit', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }), fc.boolean(), (chunks, withMagic) => {
        const { decoder } = requestCollector(4096);
        for (const c of chunks) {
          const chunk = Buffer.from(c);
          if (withMagic && chunk.length >= 3) {
            chunk.writeUInt16LE(19749, 0);
            chunk[2] = 1;
          }
          const err = decoder.push(chunk);
          if (err) {
            expect(err.code).toMatch(/^rpc_/);
            break;
          }
          expect(decoder.buffered).toBeLessThanOrEqual(4096);
        }
      }),
      { numRuns: 500 },
    );
  });
});
