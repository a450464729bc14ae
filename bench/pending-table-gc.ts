/**
 * The smallest reproduction of what slowed the bare reference's client
 * (bench/results/reference-gc.md): `inflight` async callers in a closed
 * loop, each call's resolver kept by id until its "reply" (a fresh string
 * of `bytes`, as a decoder makes) arrives on a later macrotask. No socket,
 * no codec. The resolvers are kept in
 *   map    a Map by id, get + delete on reply (what the reference did);
 *   holder the same Map holding { resolve }, the field cleared on reply;
 *   ring   an array indexed by the id's low bits, the slot cleared on reply.
 * Usage: node dist/bench/pending-table-gc.js <map|holder|ring> [inflight 64] [bytes 16384] [seconds 2]
 * One mode per process (a mode's effect on the heap outlives it).
 */
import { PerformanceObserver } from 'node:perf_hooks';

type Resolve = (value: unknown) => void;

const [mode = 'map', inflightArg = '64', bytesArg = '16384', secondsArg = '2'] = process.argv.slice(2);
const inflight = Number(inflightArg);
const bytes = Number(bytesArg);
const seconds = Number(secondsArg);
if (!['map', 'holder', 'ring'].includes(mode)) throw new Error(`unknown mode ${mode} (map, holder, ring)`);

const source = Buffer.alloc(bytes, 'x');
const map = new Map<number, Resolve>();
const holders = new Map<number, { resolve: Resolve | undefined }>();
const ring = new Array<Resolve | undefined>(4096).fill(undefined);
const queued: number[] = [];
let nextId = 1;

function call(): Promise<unknown> {
  const id = nextId++;
  queued.push(id);
  return new Promise((resolve) => {
    if (mode === 'ring') ring[id & 4095] = resolve;
    else if (mode === 'holder') holders.set(id, { resolve });
    else map.set(id, resolve);
  });
}

function reply(id: number, value: unknown): void {
  let resolve: Resolve | undefined;
  if (mode === 'ring') {
    resolve = ring[id & 4095];
    ring[id & 4095] = undefined;
  } else if (mode === 'holder') {
    const holder = holders.get(id)!;
    holders.delete(id);
    resolve = holder.resolve;
    holder.resolve = undefined;
  } else {
    resolve = map.get(id);
    map.delete(id);
  }
  resolve!(value);
}

let stop = false;
let count = 0;
/** The "socket": each macrotask answers every call queued, each with a fresh string. */
function serve(): void {
  const n = queued.length;
  for (let i = 0; i < n; i++) reply(queued.shift()!, { id: 1, text: source.toString('latin1') });
  if (!stop) setImmediate(serve);
}
const worker = async (): Promise<void> => {
  while (!stop) {
    await call();
    count++;
  }
};

let gcMs = 0;
let gcs = 0;
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    gcs++;
  }
});
observer.observe({ entryTypes: ['gc'] });
setImmediate(serve);
const workers = Array.from({ length: inflight }, worker);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
const cpu = process.cpuUsage(cpu0);
const elapsed = (performance.now() - t0) / 1000;
const n = count;
stop = true;
await Promise.all(workers);
observer.disconnect();
console.log(
  `${mode.padEnd(6)} x${inflight} ${bytes} B: ${Math.round(n / elapsed)} calls/s, ${((cpu.user + cpu.system) / n).toFixed(2)} µs CPU/call, ${gcs} GCs, ${gcMs.toFixed(0)} ms in GC`,
);
