/**
 * Codec micro-benchmark: what writing integers as rmp-serde does (issue 13)
 * costs over plain msgpackr, per value shape.
 *
 * - before: msgpackr with the options MsgpackCodec had until issue 13
 *   (whole numbers beyond 32 bits go out as float64, 64-bit integers are
 *   read in msgpackr's 'auto' mode);
 * - after: MsgpackCodec (lib/codec/msgpack-codec.ts).
 *
 * Each subject runs in processes of its own (so neither shapes the other's
 * JIT feedback), started alternately before, after, before, after, ... so
 * that the load of a shared machine falls on both alike. A process measures
 * every cell `--rounds` times and reports its medians; the table shows the
 * median over the processes of each subject. Usage:
 *   node dist/bench/codec.js [--pairs 8] [--rounds 3] [--ms 100] [--out bench/results/codec.md]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

import { Packr } from 'msgpackr';

import { MsgpackCodec } from '../lib/codec/msgpack-codec.js';
import { SMALL } from './transport.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const pairs = Number(arg('pairs', '8'));
const rounds = Number(arg('rounds', '3'));
const sampleMs = Number(arg('ms', '100'));
const out = arg('out', '');
const only = arg('subject', '');

interface Subject {
  encode(v: unknown): Uint8Array;
  decode(b: Uint8Array): unknown;
}

function subject(name: string): Subject {
  if (name === 'after') return new MsgpackCodec();
  const plain = new Packr({
    useRecords: false,
    encodeUndefinedAsNil: true,
    int64AsType: 'auto' as 'bigint',
    mapsAsObjects: true,
    moreTypes: false,
    bundleStrings: false,
    structuredClone: false,
  });
  return { encode: (v) => plain.pack(v), decode: (b) => plain.unpack(b) };
}

const { values: _floats, ...SMALL_NO_FLOATS } = SMALL;
const LARGE_INTS = Array.from({ length: 256 }, (_, i) => (i % 2 ? 1_700_000_000_000 + i : -5_000_000_000 - i));
/** Marks a case whose decode input is the rmp-serde bytes for both subjects (`wireBytes`). */
const RUST_INTS = { rust: LARGE_INTS };
const cases: [string, unknown][] = [
  ['small object, ints and strings only', SMALL_NO_FLOATS],
  ['small object with 3 floats (bench SMALL)', SMALL],
  ['256 small ints (0..255)', Array.from({ length: 256 }, (_, i) => i)],
  ['256 large ints (ms timestamps, -5e9 - i)', LARGE_INTS],
  ['256 large ints, decoding the bytes the Rust crate sends (uint64/int64) for both', RUST_INTS],
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

interface Cell {
  encode: number;
  decode: number;
  bytes: number;
}

/** What rmp-serde writes for LARGE_INTS (uint64/int64, as MsgpackCodec now does). */
const rustBytes = Buffer.from(new MsgpackCodec().encode(LARGE_INTS));

/** Child: one subject, every case `rounds` times after a warm-up; medians as JSON on stdout. */
function measure(name: string): Cell[] {
  const s = subject(name);
  const samples = cases.map(() => ({ encode: [] as number[], decode: [] as number[] }));
  for (let round = -1; round < rounds; round++) {
    cases.forEach(([, c], i) => {
      const value = c === RUST_INTS ? LARGE_INTS : c;
      const bytes = Buffer.from(c === RUST_INTS ? rustBytes : s.encode(value));
      const enc = nsPerOp(() => s.encode(value).length);
      const dec = nsPerOp(() => (s.decode(bytes) === undefined ? 0 : 1));
      if (round >= 0) {
        samples[i]!.encode.push(enc);
        samples[i]!.decode.push(dec);
      }
    });
  }
  return cases.map(([, c], i) => ({
    encode: median(samples[i]!.encode),
    decode: median(samples[i]!.decode),
    bytes: c === RUST_INTS ? rustBytes.length : s.encode(c).length,
  }));
}

if (only) {
  process.stdout.write(JSON.stringify(measure(only)));
  if (sink === -1) console.log('');
  process.exit(0);
}

const self = fileURLToPath(import.meta.url);
const runs: Record<string, Cell[][]> = { before: [], after: [] };
const loadAtStart = os.loadavg()[0]!;
for (let pair = 0; pair < pairs; pair++) {
  for (const name of ['before', 'after']) {
    const json = execFileSync(process.execPath, [self, '--subject', name, '--rounds', String(rounds), '--ms', String(sampleMs)], { encoding: 'utf8' });
    runs[name]!.push(JSON.parse(json) as Cell[]);
  }
  process.stdout.write(`pair ${pair + 1}/${pairs}\n`);
}

const fmt = (ns: number) => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
const cell = (name: string, i: number, op: 'encode' | 'decode') => median(runs[name]!.map((r) => r[i]![op]));
const lines = [
  `Codec micro-benchmark (\`npm run bench:codec\`): ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, Node ${process.version}, ` +
    `${new Date().toISOString().slice(0, 10)}, load average ${loadAtStart.toFixed(1)} at start (a shared machine); ` +
    `${pairs} processes per subject, started alternately before/after; each cell the median over them of each process's median of ${rounds} x ${sampleMs} ms.`,
  '',
  '| value | bytes before / after | encode before | encode after | after/before | decode before | decode after | after/before |',
  '|---|---|---|---|---|---|---|---|',
];
cases.forEach(([name], i) => {
  const eb = cell('before', i, 'encode');
  const ea = cell('after', i, 'encode');
  const db = cell('before', i, 'decode');
  const da = cell('after', i, 'decode');
  const bytes = `${runs.before![0]![i]!.bytes} / ${runs.after![0]![i]!.bytes}`;
  lines.push(`| ${name} | ${bytes} | ${fmt(eb)} | ${fmt(ea)} | ${(ea / eb).toFixed(2)} | ${fmt(db)} | ${fmt(da)} | ${(da / db).toFixed(2)} |`);
});
const table = lines.join('\n');
console.log(`\n${table}`);
if (out) fs.writeFileSync(out, `${table}\n`);
