/**
 * Codec micro-benchmark: what writing integers as rmp-serde does (issue 13)
 * costs over plain msgpackr, per value shape.
 *
 * - before: msgpackr with the options MsgpackCodec had until issue 13
 *   (whole numbers beyond 32 bits go out as float64);
 * - after: MsgpackCodec (lib/codec/msgpack-codec.ts).
 *
 * Both run in this one process, interleaved (before, after, before, after,
 * ...) so that the load of a shared machine falls on both alike; each cell
 * is the median of the rounds. Usage:
 *   node dist/bench/codec.js [--rounds 9] [--ms 150] [--out bench/results/codec.md]
 */
import fs from 'node:fs';
import os from 'node:os';
import { Packr } from 'msgpackr';
import { MsgpackCodec } from '../lib/codec/msgpack-codec.js';
import { SMALL } from './transport.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const rounds = Number(arg('rounds', '9'));
const sampleMs = Number(arg('ms', '150'));
const out = arg('out', '');

interface Subject {
  encode(v: unknown): Uint8Array;
  decode(b: Uint8Array): unknown;
}

const plain = new Packr({
  useRecords: false,
  encodeUndefinedAsNil: true,
  int64AsType: 'auto' as 'bigint',
  mapsAsObjects: true,
  moreTypes: false,
  bundleStrings: false,
  structuredClone: false,
});
const before: Subject = { encode: (v) => plain.pack(v), decode: (b) => plain.unpack(b) };
const after: Subject = new MsgpackCodec();

const { values: _floats, ...SMALL_NO_FLOATS } = SMALL;
const cases: [string, unknown][] = [
  ['small object, ints and strings only', SMALL_NO_FLOATS],
  ['small object with 3 floats (bench SMALL)', SMALL],
  ['256 small ints (0..255)', Array.from({ length: 256 }, (_, i) => i)],
  ['256 large ints (ms timestamps, -5e9 - i)', Array.from({ length: 256 }, (_, i) => (i % 2 ? 1_700_000_000_000 + i : -5_000_000_000 - i))],
  ['256 floats (i + 0.5)', Array.from({ length: 256 }, (_, i) => i + 0.5)],
  ['16 KiB string', 'x'.repeat(16 * 1024)],
  ['bench 16k payload (SMALL + 16 KiB string)', { ...SMALL, blob: 'x'.repeat(16 * 1024) }],
];

let sink = 0;
/** ns per call of `fn`, over about `sampleMs`. */
function nsPerOp(fn: () => number): number {
  let ops = 0;
  let batch = 64;
  const start = process.hrtime.bigint();
  const until = start + BigInt(sampleMs * 1e6);
  let now = start;
  while (now < until) {
    for (let i = 0; i < batch; i++) sink += fn();
    ops += batch;
    if (batch < 65536) batch *= 2;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / ops;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

type Cell = { encode: number[]; decode: number[] };
const results = new Map<string, { before: Cell; after: Cell; bytesBefore: number; bytesAfter: number }>();
for (const [name, value] of cases) {
  const b = Buffer.from(before.encode(value));
  const a = Buffer.from(after.encode(value));
  results.set(name, { before: { encode: [], decode: [] }, after: { encode: [], decode: [] }, bytesBefore: b.length, bytesAfter: a.length });
}

// warm-up, then rounds of before/after pairs
for (let round = -1; round < rounds; round++) {
  for (const [name, value] of cases) {
    const r = results.get(name)!;
    for (const [subject, cell] of [
      [before, r.before],
      [after, r.after],
    ] as const) {
      const bytes = Buffer.from(subject.encode(value));
      const enc = nsPerOp(() => subject.encode(value).length);
      const dec = nsPerOp(() => (subject.decode(bytes) === undefined ? 0 : 1));
      if (round >= 0) {
        cell.encode.push(enc);
        cell.decode.push(dec);
      }
    }
  }
  if (round >= 0) process.stdout.write(`round ${round + 1}/${rounds}\n`);
}

const fmt = (ns: number) => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
const lines = [
  `Codec micro-benchmark (\`npm run bench:codec\`): ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, Node ${process.version}, ` +
    `${new Date().toISOString().slice(0, 10)}, load average at start ${os.loadavg()[0]!.toFixed(1)}; ` +
    `median of ${rounds} interleaved rounds of ${sampleMs} ms per cell.`,
  '',
  '| value | bytes before / after | encode before | encode after | after/before | decode before | decode after | after/before |',
  '|---|---|---|---|---|---|---|---|',
];
for (const [name] of cases) {
  const r = results.get(name)!;
  const eb = median(r.before.encode);
  const ea = median(r.after.encode);
  const db = median(r.before.decode);
  const da = median(r.after.decode);
  lines.push(
    `| ${name} | ${r.bytesBefore} / ${r.bytesAfter} | ${fmt(eb)} | ${fmt(ea)} | ${(ea / eb).toFixed(2)} | ${fmt(db)} | ${fmt(da)} | ${(da / db).toFixed(2)} |`,
  );
}
const table = lines.join('\n');
console.log(`\n${table}`);
if (out) fs.writeFileSync(out, `${table}\n`);
if (sink === -1) console.log('');
