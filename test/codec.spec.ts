/**
 * MsgpackCodec writes numbers as rmp-serde (the Rust crate's codec) does:
 * safe integers as the smallest integer type (non-negative as uint, negative
 * as int), other numbers as float64, BigInt as int64/uint64. Golden bytes
 * from the MessagePack spec and rmp's write_uint / write_sint; the first
 * three rows of the 64-bit table are the bytes observed from the Rust crate.
 */
import fc from 'fast-check';
import { addExtension, Packr } from 'msgpackr';

import { MsgpackCodec, msgpackCodec, SCRATCH_SIZE } from '../lib/codec/msgpack-codec.js';
import { float64sToIntegers, hasUnsafeInt64s } from '../lib/codec/msgpack-integers.js';

const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');
const enc = (v: unknown) => Buffer.from(msgpackCodec.encode(v)).toString('hex');

// [value, bytes]: encoded exactly so, and decoded back to the value
const INTEGERS_64: [number, string][] = [
  [-5_000_000_000, 'd3 ff ff ff fe d5 fa 0e 00'],
  [2 ** 32, 'cf 00 00 00 01 00 00 00 00'],
  [1_700_000_000_000, 'cf 00 00 01 8b cf e5 68 00'],
  [-(2 ** 31) - 1, 'd3 ff ff ff ff 7f ff ff ff'],
  [-(2 ** 32), 'd3 ff ff ff ff 00 00 00 00'],
  [-(2 ** 32) - 1, 'd3 ff ff ff fe ff ff ff ff'],
  [2 ** 52, 'cf 00 10 00 00 00 00 00 00'],
  [Number.MAX_SAFE_INTEGER, 'cf 00 1f ff ff ff ff ff ff'],
  [Number.MIN_SAFE_INTEGER, 'd3 ff e0 00 00 00 00 00 01'],
];
const INTEGERS_32: [number, string][] = [
  [0, '00'],
  [127, '7f'],
  [128, 'cc 80'],
  [255, 'cc ff'],
  [256, 'cd 01 00'],
  [65535, 'cd ff ff'],
  [65536, 'ce 00 01 00 00'],
  [2 ** 31, 'ce 80 00 00 00'],
  [2 ** 32 - 1, 'ce ff ff ff ff'],
  [-1, 'ff'],
  [-32, 'e0'],
  [-33, 'd0 df'],
  [-128, 'd0 80'],
  [-129, 'd1 ff 7f'],
  [-200, 'd1 ff 38'],
  [-32768, 'd1 80 00'],
  [-32769, 'd2 ff ff 7f ff'],
  [-(2 ** 31), 'd2 80 00 00 00'],
];
const FLOATS: [number, string][] = [
  [1.5, 'cb 3f f8 00 00 00 00 00 00'],
  [-1.5, 'cb bf f8 00 00 00 00 00 00'],
  [2 ** 40 + 0.5, 'cb 42 70 00 00 00 00 08 00'],
  [2 ** 53, 'cb 43 40 00 00 00 00 00 00'], // not a safe integer
  [-(2 ** 53), 'cb c3 40 00 00 00 00 00 00'],
  [1e300, 'cb 7e 37 e4 3c 88 00 75 9c'],
  [Infinity, 'cb 7f f0 00 00 00 00 00 00'],
  [-Infinity, 'cb ff f0 00 00 00 00 00 00'],
];
const BIGINTS: [bigint, string][] = [
  [5n, 'd3 00 00 00 00 00 00 00 05'],
  [-1n, 'd3 ff ff ff ff ff ff ff ff'],
  [-(2n ** 63n), 'd3 80 00 00 00 00 00 00 00'],
  [2n ** 63n, 'cf 80 00 00 00 00 00 00 00'],
  [2n ** 64n - 1n, 'cf ff ff ff ff ff ff ff ff'],
];

describe('codec: numbers as rmp-serde writes them', () => {
  it('whole numbers beyond 32 bits as uint64 / int64, the bytes the Rust crate sends', () => {
    for (const [v, bytes] of INTEGERS_64) expect(enc(v), String(v)).toBe(hex(bytes).toString('hex'));
  });
  it('whole numbers within 32 bits as the smallest integer type', () => {
    for (const [v, bytes] of INTEGERS_32) expect(enc(v), String(v)).toBe(hex(bytes).toString('hex'));
  });
  it('fractions, non-finite numbers and unsafe integers as float64; NaN too', () => {
    for (const [v, bytes] of FLOATS) expect(enc(v), String(v)).toBe(hex(bytes).toString('hex'));
    expect(enc(NaN)).toMatch(/^cb7ff8/);
  });
  it('-0 as 0 (what rmp writes for the integer 0; a Rust f64 field accepts it too)', () => {
    expect(enc(-0)).toBe('00');
  });
  it('BigInt as int64, or uint64 from 2^63; beyond 64 bits refused', () => {
    for (const [v, bytes] of BIGINTS) expect(enc(v), String(v)).toBe(hex(bytes).toString('hex'));
    expect(() => msgpackCodec.encode(2n ** 64n)).toThrow(RangeError);
  });

  it('decodes every golden form back; 64-bit integers beyond ±2^53 as BigInt', () => {
    for (const [v, bytes] of [...INTEGERS_64, ...INTEGERS_32, ...FLOATS]) expect(msgpackCodec.decode(hex(bytes)), bytes).toBe(v);
    expect(msgpackCodec.decode(hex('d3 00 00 00 00 00 00 00 05'))).toBe(5); // a peer may send a small value in 64 bits
    expect(msgpackCodec.decode(hex('cf 00 20 00 00 00 00 00 00'))).toBe(2 ** 53); // exact, so a number
    expect(msgpackCodec.decode(hex('d3 ff e0 00 00 00 00 00 00'))).toBe(-(2 ** 53));
    expect(msgpackCodec.decode(hex('cf 00 20 00 00 00 00 00 01'))).toBe(2n ** 53n + 1n);
    expect(msgpackCodec.decode(hex('d3 ff df ff ff ff ff ff ff'))).toBe(-(2n ** 53n) - 1n);
    expect(msgpackCodec.decode(hex('cf ff ff ff ff ff ff ff ff'))).toBe(2n ** 64n - 1n);
    expect(msgpackCodec.decode(hex('d3 80 00 00 00 00 00 00 00'))).toBe(-(2n ** 63n));
  });

  it('inside arrays and maps', () => {
    const T = 'cf 00 00 01 8b cf e5 68 00'; // 1.7e12
    const N = 'd3 ff ff ff fe d5 fa 0e 00'; // -5e9
    const cases: [unknown, string][] = [
      [[1_700_000_000_000, -5_000_000_000, 2 ** 32], `93 ${T} ${N} cf 00 00 00 01 00 00 00 00`],
      [[[[-5_000_000_000]], 1.5, -200], `93 91 91 ${N} cb 3f f8 00 00 00 00 00 00 d1 ff 38`],
      [{ t: 1_700_000_000_000, n: -5_000_000_000 }, `de 00 02 a1 74 ${T} a1 6e ${N}`], // msgpackr writes an object's header as map16
      [new Map<unknown, unknown>([[1_700_000_000_000, [-5_000_000_000]]]), `81 ${T} 91 ${N}`],
    ];
    for (const [value, bytes] of cases) {
      expect(enc(value)).toBe(hex(bytes).toString('hex'));
      expect(msgpackCodec.decode(hex(bytes))).toEqual(value instanceof Map ? { [String(1_700_000_000_000)]: [-5_000_000_000] } : value);
    }
  });

  it('skips str, bin and ext bodies by their length: bytes that look like a float64 inside them stay as they are', () => {
    const lookalike = Buffer.from(hex('cb 42 70 00 00 00 00 00 00 cf ff ff ff ff ff ff ff ff').toString('hex').repeat(3700), 'hex'); // 2^40 as float64, 2^64-1 as uint64
    const ˀ = 'ˀ'; // U+02C0 is cb 80 in UTF-8
    const value = [
      ˀ.repeat(10), // fixstr
      ˀ.repeat(100), // str8
      ˀ.repeat(1000), // str16
      ˀ.repeat(40_000), // str32
      lookalike.subarray(0, 18), // bin8
      lookalike.subarray(0, 9 * 100), // bin16
      lookalike, // bin32
      new Date(1_700_000_000_123), // ext (timestamp 96)
      1_700_000_000_000,
      -5_000_000_000,
    ];
    const bytes = Buffer.from(msgpackCodec.encode(value));
    expect(bytes.subarray(-18).toString('hex')).toBe(hex('cf 00 00 01 8b cf e5 68 00 d3 ff ff ff fe d5 fa 0e 00').toString('hex'));
    expect(bytes.includes(lookalike)).toBe(true);
    expect(msgpackCodec.decode(bytes)).toEqual(value);
  });

  it('writes every number by the rule and reads it back (property)', () => {
    const edges = [0, -0, 127, 128, -32, -33, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -(2 ** 31), -(2 ** 31) - 1, 2 ** 53, -(2 ** 53), 2 ** 53 - 1, 1 - 2 ** 53];
    const num = fc.oneof(
      fc.maxSafeInteger(),
      fc.integer(),
      fc.double(),
      fc.constantFrom(...edges),
      fc.integer({ min: -1e6, max: 1e6 }).map((i) => i * 2 ** 32 + 0.5),
    );
    const { tree } = fc.letrec<{ tree: unknown; arr: unknown[]; obj: Record<string, unknown> }>((tie) => ({
      tree: fc.oneof({ depthSize: 'small' }, num, num, fc.string({ maxLength: 40 }), fc.boolean(), tie('arr'), tie('obj')),
      arr: fc.array(tie('tree'), { maxLength: 6 }),
      obj: fc.dictionary(
        fc.string({ maxLength: 6 }).filter((k) => k !== '__proto__'),
        tie('tree'),
        { maxKeys: 6 },
      ),
    }));
    fc.assert(
      fc.property(tree, (value) => {
        const bytes = Buffer.from(msgpackCodec.encode(value));
        for (const item of numberItems(bytes)) expect(item.hex, String(item.value)).toBe(ruleBytes(item.value));
        expect(msgpackCodec.decode(bytes)).toEqual(withoutNegativeZero(value));
      }),
      { numRuns: 300 },
    );
  });

  it('encodeInto writes the bytes encode writes, in place at any offset, and leaves the rest of the buffer alone', () => {
    const codec = new MsgpackCodec();
    const num = fc.oneof(fc.maxSafeInteger(), fc.double(), fc.constantFrom(2 ** 32, -(2 ** 40), 0.5));
    const { tree } = fc.letrec<{ tree: unknown; arr: unknown[]; obj: Record<string, unknown> }>((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small' },
        num,
        fc.string({ maxLength: 300 }),
        fc.boolean(),
        fc.constant(null),
        fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
        tie('arr'),
        tie('obj'),
      ),
      arr: fc.array(tie('tree'), { maxLength: 6 }),
      obj: fc.dictionary(
        fc.string({ maxLength: 6 }).filter((k) => k !== '__proto__'),
        tie('tree'),
        { maxKeys: 6 },
      ),
    }));
    const target = Buffer.alloc(64 * 1024);
    fc.assert(
      fc.property(tree, fc.integer({ min: 0, max: 40_000 }), (value, offset) => {
        const returned = codec.encode(value);
        const expected = Buffer.from(returned);
        target.fill(0xee);
        const end = codec.encodeInto(value, target, offset);
        expect(typeof end).toBe('number');
        expect(target.subarray(offset, end as number).toString('hex')).toBe(expected.toString('hex'));
        expect(target.subarray(0, offset).every((b) => b === 0xee)).toBe(true); // nothing before the offset is touched
        expect(target[end as number]).toBe(0xee);
        // encode afterwards writes into the codec's own buffer, not into target
        const snapshot = Buffer.from(target);
        expect(Buffer.from(codec.encode({ other: 'value', n: [1, 2, 3] }))).toEqual(Buffer.from(msgpackCodec.encode({ other: 'value', n: [1, 2, 3] })));
        expect(target.equals(snapshot)).toBe(true);
        // and what encode returned before is not written over (msgpackr carries on after it)
        expect(Buffer.from(returned).equals(expected)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('encodeInto hands back the bytes when there is too little room, or the value outgrows it', () => {
    const codec = new MsgpackCodec();
    const target = Buffer.alloc(10_000, 0xee);
    const small = { a: [1.5, 2 ** 40], s: 'x' };
    const tight = codec.encodeInto(small, target, target.length - 100); // room for it, but not msgpackr's margin
    expect(Buffer.from(tight as Uint8Array)).toEqual(Buffer.from(codec.encode(small)));
    const big = { blob: 'y'.repeat(20_000), n: [2 ** 40, -(2 ** 40), 0.25] };
    const out = codec.encodeInto(big, target, 1001);
    expect(out).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(out as Uint8Array)).toEqual(Buffer.from(msgpackCodec.encode(big)));
    expect(codec.decode(out as Uint8Array)).toEqual(big);
    expect(target.subarray(0, 1001).every((b) => b === 0xee)).toBe(true);
    // and in place again afterwards
    const end = codec.encodeInto(small, target, 3);
    expect(target.subarray(3, end as number)).toEqual(Buffer.from(msgpackCodec.encode(small)));
  });

  it('two codecs, each with its own count, encode and decode independently', () => {
    const other = new MsgpackCodec();
    const a = Buffer.from(msgpackCodec.encode([2 ** 40, 0.5]));
    const b = Buffer.from(other.encode([-(2 ** 40)]));
    expect(a.toString('hex')).toBe('92cf0000010000000000cb3fe0000000000000');
    expect(b.toString('hex')).toBe('91d3ffffff0000000000');
    expect(other.decode(a)).toEqual([2 ** 40, 0.5]);
    expect(msgpackCodec.decode(b)).toEqual([-(2 ** 40)]);
  });

  it('the walks alone (what every encode / decode falls back to if msgpackr stops reporting)', () => {
    const plain = new Packr({ useRecords: false, encodeUndefinedAsNil: true });
    const value = { a: [1_700_000_000_000, -5_000_000_000, 1.5, 'x'.repeat(300)], b: -(2 ** 40), c: Buffer.alloc(70_000, 0xcb) };
    const bytes = Buffer.from(plain.pack(value));
    float64sToIntegers(bytes, Infinity);
    expect(bytes.toString('hex')).toBe(Buffer.from(msgpackCodec.encode(value)).toString('hex'));
    expect(hasUnsafeInt64s(hex('92 cf 00 20 00 00 00 00 00 00 d3 ff e0 00 00 00 00 00 00'), 2)).toBe(false); // ±2^53 are exact
    expect(hasUnsafeInt64s(hex('92 cf 00 20 00 00 00 00 00 00 d3 ff df ff ff ff ff ff ff'), 2)).toBe(true);
    expect(hasUnsafeInt64s(hex('92 cf 00 20 00 00 00 00 00 01 05'), 1)).toBe(true);
    expect(hasUnsafeInt64s(hex('92 c4 09 cf ff ff ff ff ff ff ff ff cf 00 00 00 01 00 00 00 00'), 1)).toBe(false); // inside a bin: skipped
    expect(hasUnsafeInt64s(hex('91 c7 09 01 cf 00 00 00 01 00 00 00 00'), 1)).toBe(true); // counted but inside an ext body: assume the worst
  });

  it('small messages are decoded from a reused buffer: bins are copies, strings and values survive the next decode', () => {
    const codec = new MsgpackCodec();
    const first = Buffer.from(codec.encode({ bin: Buffer.from([1, 2, 3, 4]), s: 'héllo', n: [1.5, 2 ** 40] }));
    const decoded = codec.decode(first) as { bin: Buffer; s: string; n: number[] };
    first.fill(0xff); // the received bytes are gone
    codec.decode(Buffer.from(codec.encode({ bin: Buffer.from([9, 9, 9, 9]), s: 'other', n: [7] }))); // the reused buffer is overwritten
    expect(decoded).toEqual({ bin: Buffer.from([1, 2, 3, 4]), s: 'héllo', n: [1.5, 2 ** 40] });
    expect(Buffer.isBuffer(decoded.bin)).toBe(true);
  });

  it("decodes at and around the reused buffer's size, and after a failed decode", () => {
    const codec = new MsgpackCodec();
    for (const size of [SCRATCH_SIZE - 8, SCRATCH_SIZE - 3, SCRATCH_SIZE, SCRATCH_SIZE + 1, 70_000]) {
      // a one-key map holding a string that brings the message to `size` bytes (str16 / str32 headers)
      const strLen = size - 1 - 2 - (size - 6 < 0x10000 ? 3 : 5);
      const value = { v: 'x'.repeat(strLen), big: 2n ** 60n };
      const bytes = Buffer.from(codec.encode(value));
      expect(codec.decode(bytes)).toEqual(value);
    }
    const whole = Buffer.from(codec.encode({ a: [1, 2, 3] }));
    expect(() => codec.decode(whole.subarray(0, whole.length - 1))).toThrow(); // truncated
    expect(() => codec.decode(Buffer.concat([whole, Buffer.from([1])]))).toThrow(); // trailing bytes
    expect(codec.decode(whole)).toEqual({ a: [1, 2, 3] });
  });

  it('a msgpackr extension that decodes through the codec again does not disturb the message around it', () => {
    // its payload names a longer message kept elsewhere, decoded while the outer one is half read
    const codec = new MsgpackCodec({ extensions: [0x42] }); // registered by the application, so let through
    const elsewhere = [Buffer.from(codec.encode({ long: 'z'.repeat(300), list: [1, 2, 3] }))];
    class Ref {
      constructor(readonly inner: unknown) {}
    }
    addExtension({
      Class: Ref,
      type: 0x42,
      pack: () => Buffer.from([0]),
      unpack: (bytes: Buffer) => new Ref(codec.decode(elsewhere[bytes[0]!]!)),
    });
    const bytes = Buffer.from(codec.encode({ w: new Ref(undefined), after: ['tail', 1.5, { k: 'v' }] }));
    expect(codec.decode(bytes)).toEqual({ w: new Ref({ long: 'z'.repeat(300), list: [1, 2, 3] }), after: ['tail', 1.5, { k: 'v' }] });
  });

  it('decodes maps and arrays as a Rust peer sends them, one unsafe value among safe ones', () => {
    const msg = hex('83 a2 6964 cf 00 00 01 8b cf e5 68 00  a3 6d6178 cf ff ff ff ff ff ff ff ff  a4 6c697374 92 d3 ff ff ff fe d5 fa 0e 00 05');
    expect(msgpackCodec.decode(msg)).toEqual({ id: 1_700_000_000_000, max: 2n ** 64n - 1n, list: [-5_000_000_000, 5] });
  });
});

/** The rule, written independently: the bytes one number must take. */
function ruleBytes(v: number): string {
  const out = Buffer.alloc(9);
  if (Number.isSafeInteger(v)) {
    if (v >= 0 && v < 128) return Buffer.from([v]).toString('hex');
    if (v < 0 && v >= -32) return Buffer.from([256 + v]).toString('hex');
    if (v >= 0) {
      if (v < 2 ** 8) return `cc${out.fill(v, 0, 1).subarray(0, 1).toString('hex')}`;
      if (v < 2 ** 16) return (out.writeUInt16BE(v), `cd${out.subarray(0, 2).toString('hex')}`);
      if (v < 2 ** 32) return (out.writeUInt32BE(v), `ce${out.subarray(0, 4).toString('hex')}`);
      return (out.writeBigUInt64BE(BigInt(v)), `cf${out.subarray(0, 8).toString('hex')}`);
    }
    if (v >= -(2 ** 7)) return (out.writeInt8(v), `d0${out.subarray(0, 1).toString('hex')}`);
    if (v >= -(2 ** 15)) return (out.writeInt16BE(v), `d1${out.subarray(0, 2).toString('hex')}`);
    if (v >= -(2 ** 31)) return (out.writeInt32BE(v), `d2${out.subarray(0, 4).toString('hex')}`);
    return (out.writeBigInt64BE(BigInt(v)), `d3${out.subarray(0, 8).toString('hex')}`);
  }
  out.writeDoubleBE(v);
  return `cb${out.subarray(0, 8).toString('hex')}`;
}

/** Every number item in encoded bytes with the value it holds (a small reference reader; no ext, no bin). */
function numberItems(bytes: Buffer): { value: number; hex: string }[] {
  const items: { value: number; hex: string }[] = [];
  let p = 0;
  const num = (value: number, size: number) => {
    items.push({ value, hex: bytes.subarray(p, p + size).toString('hex') });
    p += size;
  };
  const skipStr = (header: number, len: number) => (p += header + len);
  while (p < bytes.length) {
    const m = bytes[p]!;
    if (m <= 0x7f) num(m, 1);
    else if (m >= 0xe0) num(m - 256, 1);
    else if (m <= 0x9f)
      p += 1; // fixmap, fixarray
    else if (m <= 0xbf) skipStr(1, m & 0x1f);
    else if (m <= 0xc3) p += 1;
    else if (m === 0xca) num(bytes.readFloatBE(p + 1), 5);
    else if (m === 0xcb) num(bytes.readDoubleBE(p + 1), 9);
    else if (m === 0xcc) num(bytes.readUInt8(p + 1), 2);
    else if (m === 0xcd) num(bytes.readUInt16BE(p + 1), 3);
    else if (m === 0xce) num(bytes.readUInt32BE(p + 1), 5);
    else if (m === 0xcf) num(Number(bytes.readBigUInt64BE(p + 1)), 9);
    else if (m === 0xd0) num(bytes.readInt8(p + 1), 2);
    else if (m === 0xd1) num(bytes.readInt16BE(p + 1), 3);
    else if (m === 0xd2) num(bytes.readInt32BE(p + 1), 5);
    else if (m === 0xd3) num(Number(bytes.readBigInt64BE(p + 1)), 9);
    else if (m === 0xd9) skipStr(2, bytes[p + 1]!);
    else if (m === 0xda) skipStr(3, bytes.readUInt16BE(p + 1));
    else if (m === 0xdb) skipStr(5, bytes.readUInt32BE(p + 1));
    else if (m === 0xdc || m === 0xde) p += 3;
    else if (m === 0xdd || m === 0xdf) p += 5;
    else throw new Error(`unexpected marker ${m.toString(16)} at ${p}`);
  }
  return items;
}

/** -0 travels as the integer 0. */
function withoutNegativeZero(v: unknown): unknown {
  if (Object.is(v, -0)) return 0;
  if (Array.isArray(v)) return v.map(withoutNegativeZero);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutNegativeZero(x)]));
  return v;
}
