/**
 * The stream-layer demo (`stream-demo.ts`: server and client in one
 * process, 100,000 pipelined requests, 1024 in flight) under Node, Bun and
 * Deno, one after the other; prints each runtime's version and rate as a
 * Markdown table. Run: npm run demo:runtimes
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { runtimeBinary, runtimeCommand, RUNTIMES } from './runtime-commands.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const demo = path.join(here, 'stream-demo.js');

const rows: string[] = [];
let failed = false;
for (const runtime of RUNTIMES) {
  const demoRun = runtimeCommand(runtime, root, demo);
  const options = { cwd: root, encoding: 'utf8' as const, timeout: 60_000, env: { ...process.env, ...demoRun.env } };
  try {
    const v = /\d+\.\d+\.\d+/.exec(execFileSync(runtimeBinary(runtime, root), ['--version'], options))?.[0];
    const out = execFileSync(demoRun.file, demoRun.args, options);
    const rate = /(\d+) req\/s/.exec(out)?.[1];
    if (rate === undefined || !out.includes('closed cleanly')) throw new Error(`unexpected output:\n${out}`);
    rows.push(`| ${runtime} | ${v} | ${Number(rate).toLocaleString('en-US')} |`);
  } catch (err) {
    failed = true;
    rows.push(`| ${runtime} | failed: ${(err as Error).message.split('\n')[0]} | |`);
  }
}
console.log('| runtime | version | stream demo, req/s |\n|---|---|---|\n' + rows.join('\n'));
process.exitCode = failed ? 1 : 0;
