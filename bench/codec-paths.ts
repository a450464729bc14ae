/**
 * The per-message codec paths of the third round of issue 14, measured
 * (the ns figures in bench/results/levers.md):
 *
 * - decode-slice: msgpackr unpacking a fresh slice of a larger buffer (what
 *   decoding did before: a DataView per slice);
 * - decode-codec: MsgpackCodec.decode of the same slice (copied into its
 *   reused buffer);
 * - encode-copy: msgpackr pack, then the bytes copied into a write arena;
 * - encode-into: MsgpackCodec.encodeInto straight into the arena;
 * - encode-naive: a hand-written encoder for plain objects, arrays, strings,
 *   numbers and booleans, into the arena (the size of that lever, measured
 *   before writing one; not used by the library);
 * - encode-session / decode-session: the same, in a record session of the
 *   fifth round (FEATURE_RECORDS): the shape already described, as every
 *   message after the first one of a shape on a connection.
 *
 * Each subject runs alone in a fresh process (no JIT feedback from the
 * others), `--procs` times, interleaved; the minimum and median over the
 * processes are reported, of each process's best of 4 rounds. Usage:
 *   node dist/bench/codec-paths.js [--procs 5] [--n 1000000] [--out bench/results/codec-paths.md]
 */
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

import { Packr } from 'msgpackr';

import { MsgpackCodec } from '../lib/codec/msgpack-codec.js';
import { inFreshProcesses, minMedianRows } from './fresh-processes.js';
import { SMALL } from './transport.js';

const SUBJECTS = ['decode-slice', 'decode-codec', 'decode-session', 'encode-copy', 'encode-into', 'encode-session', 'encode-naive'] as const;
type Subject = (typeof SUBJECTS)[number];
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};

const arena = Buffer.allocUnsafe(256 * 1024);

/** The hand-written encoder (measurement only): plain objects, arrays, strings, numbers, booleans, null. */
let out: Buffer = arena;
let pos = 0;
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

function naive(value: unknown, buf: Buffer, start: number): number {
  out = buf;
  pos = start;
  val(value);
  return pos;
}

function str(s: string): void {
  if (s.length < 32) {
    let q = pos + 1;
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      out[q++] = c;
    }
    if (i === s.length) {
      out[pos] = 0xa0 | s.length;
      pos = q;
      return;
    }
  }
  const len = Buffer.byteLength(s);
  if (len < 32) out[pos++] = 0xa0 | len;
  else if (len < 256) {
    out[pos++] = 0xd9;
    out[pos++] = len;
  } else {
    out[pos++] = 0xda;
    out[pos++] = len >> 8;
    out[pos++] = len & 255;
  }
  pos += out.write(s, pos);
}

function val(v: unknown): void {
  switch (typeof v) {
    case 'string':
      return str(v);
    case 'boolean':
      out[pos++] = v ? 0xc3 : 0xc2;
      return;
    case 'number':
      if (v >>> 0 === v && v < 128) out[pos++] = v;
      else if (v >>> 0 === v && v < 65536) {
        out[pos++] = 0xcd;
        out[pos++] = v >> 8;
        out[pos++] = v & 255;
      } else {
        f64[0] = v;
        out[pos++] = 0xcb;
        for (let i = 7; i >= 0; i--) out[pos++] = f64Bytes[i]!; // big-endian (little-endian hosts)
      }
      return;
  }
  if (v === null) {
    out[pos++] = 0xc0;
    return;
  }
  if (Array.isArray(v)) {
    out[pos++] = 0x90 | v.length;
    for (let i = 0; i < v.length; i++) val(v[i]);
    return;
  }
  const keys = Object.keys(v as object);
  out[pos++] = 0x80 | keys.length;
  for (let i = 0; i < keys.length; i++) {
    str(keys[i]!);
    val((v as Record<string, unknown>)[keys[i]!]);
  }
}

function subjectFn(subject: Subject): () => unknown {
  const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, mapsAsObjects: true });
  const codec = new MsgpackCodec();
  const bytes = packr.pack(SMALL);
  const big = Buffer.concat([Buffer.alloc(100), bytes]);
  let at = 0;
  const next = (room: number) => (at = at + room + 200 > arena.length ? 0 : at + 131);
  // a session pair that has described SMALL's shapes once: what follows refers to them
  const sending = codec.session()!;
  const receiving = codec.session()!;
  receiving.decode(sending.encode(SMALL));
  const inSession = Buffer.concat([Buffer.alloc(100), sending.encode(SMALL)]);
  switch (subject) {
    case 'decode-slice':
      return () => packr.unpack(big.subarray(100));
    case 'decode-codec':
      return () => codec.decode(big.subarray(100));
    case 'decode-session':
      return () => receiving.decode(inSession.subarray(100));
    case 'encode-copy':
      return () => arena.set(codec.encode(SMALL), next(0) + 32);
    case 'encode-into':
      return () => codec.encodeInto(SMALL, arena, next(8192) + 32);
    case 'encode-session':
      return () => sending.encodeInto!(SMALL, arena, next(8192) + 32);
    case 'encode-naive':
      return () => naive(SMALL, arena, next(0) + 32);
  }
}

/** One process: the best of 4 rounds, ns per message. */
function measure(subject: Subject, n: number): number {
  const fn = subjectFn(subject);
  for (let i = 0; i < 200_000; i++) fn();
  let best = Infinity;
  for (let r = 0; r < 4; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / n);
  }
  return best;
}

const child = arg('subject', '');
if (child) {
  process.stdout.write(String(measure(child as Subject, Number(arg('n', '1000000')))));
} else {
  const procs = Number(arg('procs', '5'));
  const n = arg('n', '1000000');
  const self = fileURLToPath(import.meta.url);
  const rows = minMedianRows(inFreshProcesses(self, SUBJECTS, procs, ['--n', n]), 0);
  const report = [
    `Run ${new Date().toISOString()} on ${os.cpus().length} x ${os.cpus()[0]?.model}, Node ${process.version}: the small payload (${packrSize()} bytes), ${procs} processes per subject, interleaved, each the best of 4 rounds of ${n}.`,
    '',
    '| subject | min ns/message | median ns/message |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  console.log(report);
  const file = arg('out', '');
  if (file) fs.writeFileSync(file, report);
}

function packrSize(): number {
  return new Packr({ useRecords: false }).pack(SMALL).length;
}
