/**
 * What a request at the server's weight bound costs to decode: for each
 * kind of MessagePack value (numbers, strings, arrays, maps, maps of new
 * keys, rows), a message of that kind sized to weigh just under
 * `--weight` (default DEFAULT_MAX_REQUEST_WEIGHT), decoded 7 times by
 * MsgpackCodec; the median and the slowest decode, and the size. The
 * weights of lib/codec/msgpack-check.ts come from such runs.
 *
 * Usage: node dist/bench/weights.js [--weight 250000] [--out bench/results/weights.md]
 */
import fs from 'node:fs';
import os from 'node:os';

import { Packr } from 'msgpackr';

import { checkMessage } from '../lib/codec/msgpack-check.js';
import { MsgpackCodec } from '../lib/codec/msgpack-codec.js';
import { DEFAULT_MAX_REQUEST_WEIGHT } from '../lib/server/server-options.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const bound = Number(flag('weight') ?? DEFAULT_MAX_REQUEST_WEIGHT);
const out = flag('out');

const packr = new Packr({ useRecords: false, variableMapSize: true });
const codec = new MsgpackCodec({ records: false });

/** The weight of `bytes`: the least bound that lets it through. */
function weigh(bytes: Uint8Array): number {
  let lo = 0;
  let hi = 1e9;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    try {
      checkMessage(bytes, 0, bytes.length, undefined, undefined, mid);
      hi = mid;
    } catch {
      lo = mid + 1;
    }
  }
  return lo;
}

const KINDS: [string, (n: number) => unknown][] = [
  ['small integers', (n) => Array.from({ length: n }, (_, i) => i & 127)],
  ['floats', (n) => Array.from({ length: n }, (_, i) => i + 0.5)],
  ['short strings', (n) => Array.from({ length: n }, (_, i) => `s${i}`)],
  ['empty arrays', (n) => Array.from({ length: n }, () => [])],
  ['empty maps', (n) => Array.from({ length: n }, () => ({}))],
  ['one map of distinct keys', (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))],
  ['maps of one distinct key', (n) => Array.from({ length: n }, (_, i) => ({ [`k${i}`]: 1 }))],
  ['rows of 3 fields', (n) => Array.from({ length: n }, (_, i) => ({ id: i, name: 'n', ok: true }))],
  ['rows of 10 fields', (n) => Array.from({ length: n }, (_, i) => ({ a: i, b: 'x', c: true, d: 1.5, e: null, f: 'y', g: i, h: [1], i: 'z', j: false }))],
];

const rows: string[] = [];
for (const [name, make] of KINDS) {
  // sized to the bound from a small sample's weight per element
  const sample = packr.pack(make(1000));
  const n = Math.floor((1000 * bound) / weigh(sample)) - 1;
  const bytes = packr.pack(make(n));
  const weight = weigh(bytes);
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    codec.decode(bytes, bound);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  rows.push(`| ${name} | ${n} | ${weight} | ${Math.round(bytes.length / 1024)} | ${times[3]!.toFixed(1)} | ${times[6]!.toFixed(1)} |`);
}

const md = [
  `# What a request at the weight bound costs to decode`,
  '',
  `Bound ${bound}; ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}. Each message decoded 7 times by MsgpackCodec (\`node dist/bench/weights.js\`).`,
  '',
  '| kind | elements | weight | KiB | median ms | slowest ms |',
  '|---|---|---|---|---|---|',
  ...rows,
  '',
].join('\n');
console.log(md);
if (out !== undefined) fs.writeFileSync(out, md);
