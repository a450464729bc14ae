// User-space instructions per call, counted by valgrind's callgrind (issue 29): repeatable where times on this
// VM are not (the same 16 KiB point gives 0.5-2x between runs; counts of code instructions agree to 1-2 %).
// Runs dist/bench/fixed-calls.js (server and client of a transport in one process) under callgrind twice, with
// `calls` and 3 x `calls` measured calls after the same warm-up, both at once (2 cores), and divides the
// difference by 2 x `calls`: what is left is the steady cost of a call, both ends, warm-up and start-up gone.
// JIT code is named through the perf map node writes under --perf-basic-prof. Kernel work (syscalls, TCP)
// is not counted; `rep movs`/`rep stos` count once per byte (memcpy and memset weigh their bytes), so they are
// shown apart, as are GC and the optimizing compiler: "code" is what an A/B of the code a call runs compares.
// env: VALGRIND_FLAGS=--cache-sim=yes adds cache misses; with it, EVENT=D1mr (I1mr, ...) lists functions by that.
// usage: node bench/instructions-per-call.mjs <payload> <inflight> <transport[:distdir]>... [--calls 10000] [--warmup 30000] [--top 25]
// e.g.   node bench/instructions-per-call.mjs 16k 64 stream limit-msgpack stream:.scratch/dist-A
// Warm-up: with a few thousand calls, GC and compiler work still swamp a small call's counts; 30,000 settles them
// (16 KiB points: 8,000 and --calls 4000 take a few minutes). Build first (npx tsc -p tsconfig.build.json). Needs valgrind.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = args[i + 1];
  args.splice(i, 2);
  return Number(value);
};
const calls = option('calls', 10000);
const warmup = option('warmup', 30000);
const top = option('top', 25);
const [kind, inflight, ...subjects] = args;
if (subjects.length === 0) throw new Error('usage: instructions-per-call.mjs <payload> <inflight> <transport[:distdir]>... [--calls N] [--warmup N] [--top N]');
/** VALGRIND_FLAGS (space-separated), e.g. `--cache-sim=yes`: then every event's total per call is shown too (cache misses). */
const VALGRIND_FLAGS = process.env.VALGRIND_FLAGS ? process.env.VALGRIND_FLAGS.split(' ') : [];
/** EVENT (with the cache simulation), e.g. D1mr: the event functions are listed and bucketed by (default Ir). */
const EVENT = process.env.EVENT ?? 'Ir';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ipc-'));

/** One callgrind run: its output file and the pid whose perf map names its JIT code. */
function callgrind(dist, transport, measured) {
  const out = path.join(tmp, `${transport}-${measured}-${Math.random().toString(36).slice(2)}.out`);
  const script = path.resolve(dist, 'bench', 'fixed-calls.js');
  return new Promise((resolve, reject) => {
    execFile(
      'valgrind',
      ['--tool=callgrind', ...VALGRIND_FLAGS, `--callgrind-out-file=${out}`, process.execPath, '--perf-basic-prof', script, transport, kind, inflight, String(warmup), String(measured)],
      { maxBuffer: 1 << 26, cwd: tmp }, // (V8 writes its isolate-*.log files under --perf-basic-prof there)
      (err, _stdout, stderr) => {
        if (err) return reject(new Error(`${transport}: ${err.message}\n${stderr.slice(-2000)}`));
        const pid = /==(\d+)== Command: /.exec(stderr)?.[1];
        resolve({ out, pid });
      },
    );
  });
}

/** JIT code by address range, from /tmp/perf-<pid>.map. */
function perfMap(pid) {
  const file = `/tmp/perf-${pid}.map`;
  const entries = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [a, s, ...name] = line.split(' ');
      return { start: parseInt(a, 16), end: parseInt(a, 16) + parseInt(s, 16), name: name.join(' ') };
    })
    .sort((x, y) => x.start - y.start);
  fs.rmSync(file, { force: true });
  return entries;
}

function nameOf(entries, address) {
  let lo = 0;
  let hi = entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid].start <= address) lo = mid + 1;
    else hi = mid - 1;
  }
  const e = entries[hi];
  return e !== undefined && address < e.end ? `JIT ${e.name.replace(`file://${process.cwd()}/`, '')}` : 'JIT (unnamed)';
}

/** Self instructions by function, JIT code named. */
function selfCounts({ out, pid }) {
  const entries = perfMap(pid);
  const text = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', out], { encoding: 'utf8', maxBuffer: 1 << 28 });
  fs.rmSync(out, { force: true });
  const counts = new Map();
  const events = /^Events shown:\s+(.*)$/m.exec(text)?.[1].trim().split(/\s+/) ?? [];
  const totalsLine = text.split('\n').find((line) => line.includes('PROGRAM TOTALS')) ?? '';
  const totals = totalsLine
    .split('PROGRAM TOTALS')[0]
    .replace(/\([^)]*\)/g, ' ')
    .trim()
    .split(/\s+/)
    .map((t) => (t === '.' ? 0 : Number(t.replaceAll(',', ''))));
  counts.events = new Map(events.map((e, i) => [e, totals[i] ?? 0]));
  for (const line of text.split('\n')) {
    // one `count (share%)` per event (`.` or a bare 0 for none), Ir first, then the function
    const m = /^\s*([\d,]+)(?:\s+\(\s*[\d.]+%\))?\s+((?:(?:[\d,]+(?:\s+\(\s*[\d.]+%\))?|\.)\s+)*)(\S.*)$/.exec(line);
    if (m === null) continue;
    let name = m[3].split(' [')[0].trim();
    const jit = /^\?\?\?:0x([0-9a-f]+)/.exec(name);
    if (jit !== null) name = nameOf(entries, parseInt(jit[1], 16));
    const columns = [m[1], ...m[2].replace(/\([^)]*\)/g, ' ').trim().split(/\s+/)];
    const value = columns[Math.max(0, events.indexOf(EVENT))] ?? '0';
    counts.set(name, (counts.get(name) ?? 0) + (value === '.' ? 0 : Number(value.replaceAll(',', ''))));
  }
  return counts;
}

/**
 * Where a function's instructions count: `gc` (V8's collectors, on the main thread or its helpers; bursty, so
 * they move with where a collection falls) and `compiler` (optimizing, still going on in a long warm-up) apart
 * from the rest, so that an A/B of the code a call runs can be read without them.
 */
const GC = /Scaveng|Marking|Sweep|Evacuat|MemoryChunk|RememberedSet|SlotSet|ArrayBufferSweeper|Heap::|GCTracer|IterateObjectCache|RootScavengeVisitor|BodyDescriptorBase::Iterate|HeapObject::SizeFromMap|MarkCompact|Collector/;
const COMPILER = /v8::internal::compiler::|v8::internal::maglev::|v8::internal::interpreter::|Zone::|ZoneList|RegisterAllocator|InstructionSelector/;
/** memcpy / memset: glibc's use `rep movsb` / `rep stosb` past a size, counted once per byte, so they weigh bytes moved. */
const BYTES = /__mem(cpy|move|set)_/;
function bucketOf(name) {
  if (name.startsWith('JIT')) return 'jit';
  if (BYTES.test(name)) return 'bytes';
  if (GC.test(name)) return 'gc';
  if (COMPILER.test(name)) return 'compiler';
  return 'other';
}

const results = [];
for (const subject of subjects) {
  const [transport, dist = 'dist'] = subject.split(':');
  const [short, long] = await Promise.all([callgrind(dist, transport, calls), callgrind(dist, transport, 3 * calls)]);
  const a = selfCounts(short);
  const b = selfCounts(long);
  const per = new Map();
  for (const k of new Set([...a.keys(), ...b.keys()])) per.set(k, ((b.get(k) ?? 0) - (a.get(k) ?? 0)) / (2 * calls));
  const total = per.get('PROGRAM TOTALS') ?? 0;
  per.delete('PROGRAM TOTALS');
  const buckets = { jit: 0, gc: 0, compiler: 0, bytes: 0, other: 0 };
  for (const [k, v] of per) buckets[bucketOf(k)] += v;
  const events = [...b.events].map(([e, v]) => `${e} ${Math.round((v - (a.events.get(e) ?? 0)) / (2 * calls))}`);
  results.push({ subject, total, ...buckets, per, events: events.length > 1 ? events.join(', ') : '' });
}

console.log(`${kind} x${inflight}, ${calls} and ${3 * calls} calls after ${warmup}, ${EVENT === 'Ir' ? 'instructions' : EVENT} per call (both ends, user space):`);
for (const r of results) {
  const code = r.total - r.gc - r.compiler - r.bytes;
  const n = (x) => Math.round(x);
  if (r.events !== '') console.log(`  ${r.subject}, every event per call: ${r.events}`);
  console.log(`  ${r.subject}: ${n(r.total)} in all = code ${n(code)} (JIT ${n(r.jit)}, node and V8 ${n(r.other)}) + memcpy/memset ${n(r.bytes)} + GC ${n(r.gc)} + compiler ${n(r.compiler)}`);
}
for (const r of results) {
  console.log(`\n${r.subject}, the ${top} largest:`);
  for (const [k, v] of [...r.per].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${Math.round(v).toString().padStart(9)}  ${k.slice(0, 140)}`);
}
fs.rmSync(tmp, { recursive: true, force: true });
