/**
 * Microbenchmarks whose subjects each run alone in a fresh process (no JIT
 * feedback from the others), `procs` times, interleaved: the script runs
 * itself with `--subject <name>` (plus `args`) and prints one number.
 */
import { execFileSync } from 'node:child_process';

/** Each subject's numbers, one per process. */
export function inFreshProcesses<S extends string>(self: string, subjects: readonly S[], procs: number, args: string[] = []): Map<S, number[]> {
  const runs = new Map<S, number[]>(subjects.map((s) => [s, []]));
  for (let p = 0; p < procs; p++) {
    for (const s of subjects) runs.get(s)!.push(Number(execFileSync(process.execPath, [self, '--subject', s, ...args], { encoding: 'utf8' })));
  }
  return runs;
}

/** Markdown rows `| subject | min | median |` of what inFreshProcesses gave. */
export function minMedianRows(runs: Map<string, number[]>, digits: number): string[] {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return [...runs].map(([s, xs]) => `| ${s} | ${Math.min(...xs).toFixed(digits)} | ${median(xs).toFixed(digits)} |`);
}
