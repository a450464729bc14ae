/**
 * What the client's table of calls in flight costs per call: a `get`, a
 * `delete` and an `add` (a response settles a call, the next call goes out),
 * with 1024 calls in flight finishing in order, on a Map<seq, Call> (as
 * before) and on the SeqTable (lib/core/seq-table.ts). Each subject runs in
 * a fresh process, `--procs` times, interleaved; min and median over the
 * processes of each one's best of 5 rounds. Usage:
 *   node dist/bench/seq-table.js [--procs 5] [--out bench/results/seq-table.md]
 */
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

import { SeqTable } from '../lib/core/seq-table.js';
import { inFreshProcesses, minMedianRows } from './fresh-processes.js';

const SUBJECTS = ['map', 'seq-table'] as const;
type Subject = (typeof SUBJECTS)[number];
const IN_FLIGHT = 1024;
const N = 2_000_000;
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};

interface Entry {
  seq: number;
}

/** ns per get + delete + add, the best of 5 rounds of N. */
function measure(subject: Subject): number {
  const calls: Entry[] = Array.from({ length: IN_FLIGHT }, () => ({ seq: 0 }));
  let seq = 1;
  const map = new Map<number, Entry>();
  const table = new SeqTable<Entry>(IN_FLIGHT);
  for (const c of calls) {
    c.seq = seq++;
    if (subject === 'map') map.set(c.seq, c);
    else table.add(c);
  }
  let check = 0;
  const round =
    subject === 'map'
      ? () => {
          for (let i = 0; i < N; i++) {
            const c = map.get(calls[i & (IN_FLIGHT - 1)]!.seq)!;
            map.delete(c.seq);
            c.seq = seq++;
            map.set(c.seq, c);
            check += c.seq & 1;
          }
        }
      : () => {
          for (let i = 0; i < N; i++) {
            const c = table.get(calls[i & (IN_FLIGHT - 1)]!.seq)!;
            table.delete(c.seq);
            c.seq = seq++;
            table.add(c);
            check += c.seq & 1;
          }
        };
  round();
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t = process.hrtime.bigint();
    round();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / N);
  }
  if (check < 0) throw new Error('unreachable');
  return best;
}

const child = arg('subject', '');
if (child) {
  process.stdout.write(String(measure(child as Subject)));
} else {
  const procs = Number(arg('procs', '5'));
  const self = fileURLToPath(import.meta.url);
  const runs = inFreshProcesses(self, SUBJECTS, procs);
  const report = [
    `Run ${new Date().toISOString()} on ${os.cpus().length} x ${os.cpus()[0]?.model}, Node ${process.version}: ${IN_FLIGHT} calls in flight, ${procs} processes per subject, interleaved, each the best of 5 rounds of ${N}.`,
    '',
    '| table | min ns per get + delete + add | median |',
    '|---|---|---|',
    ...minMedianRows(runs, 1),
    '',
  ].join('\n');
  console.log(report);
  const file = arg('out', '');
  if (file) fs.writeFileSync(file, report);
}
