/**
 * What one hostile connection costs a well-behaved client of the same
 * server. The server (an RpcServer with default options, hostile-server.ts)
 * runs in its own process and reports its event-loop delay; this process is
 * the victim (a ClientStream calling `echo` open loop, hostile-victim.ts);
 * each attack (hostile-attacks.ts) runs in an attacker process of its own
 * (hostile-attacker.ts) for one window, after a baseline window with no
 * attack. Between windows the bench waits for the server to be back to the
 * victim's connection alone.
 *
 * Usage: node dist/bench/hostile.js [--window 5000] [--rate 2000] [--only map-1m,garbage]
 * Figures per window: the victim's p50 / p99 / max latency (ms) and calls
 * ok / failed; the server's longest event-loop delay and its p99 (ms), its
 * CPU; the attacker's frames sent, connections opened and closed by the
 * server, and the answers it got. A full run writes bench/results/hostile.json
 * and hostile.md; a run with --only prints them only.
 */
import { execSync } from 'node:child_process';
import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ATTACKS } from './hostile-attacks.js';
import { Victim, type VictimFigures } from './hostile-victim.js';
import type { AttackTally } from './hostile-wire.js';
import { waitMessage } from './ipc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const windowMs = Number(flag('window') ?? 5000);
const rate = Number(flag('rate') ?? 2000);
const only = flag('only')?.split(',');
const WARMUP_MS = 1500;
/** the victim's p99 the issue asks for, ms */
const TARGET_P99 = 50;

const unknown = only?.filter((n) => !ATTACKS.some((a) => a.name === n)) ?? [];
if (unknown.length > 0) throw new Error(`unknown attack(s) ${unknown.join(', ')}; known: ${ATTACKS.map((a) => a.name).join(', ')}`);
const attacks = only === undefined ? ATTACKS : ATTACKS.filter((a) => only.includes(a.name));

interface ServerFigures {
  eventLoop: { maxMs: number; p99Ms: number; meanMs: number };
  cpuPercent: number;
  rssMiB: number;
  maxRssMiB: number;
  connections: number;
  ended: Record<string, number>;
  logLines: Record<string, number>;
  logSamples: string[];
}

interface WindowResult {
  attack: string;
  title: string;
  victim: VictimFigures;
  server: ServerFigures | { crashed: string };
  attacker: AttackTally | null;
  /** ms from the window's end until the server answered for its stats (its loop was busy until then) */
  statsAfterMs: number;
  /** ms from the window's end until the server held the victim's connection alone */
  settledAfterMs: number;
}

// ---- the server ---------------------------------------------------------------

let server!: ChildProcess;
let port = 0;

async function startServer(): Promise<void> {
  server = fork(path.join(here, 'hostile-server.js'), [], {
    execArgv: process.env.HOSTILE_SERVER_ARGS ? process.env.HOSTILE_SERVER_ARGS.split(' ') : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  port = (await waitMessage<{ port: number }>(server, 'ready', 20_000)).port;
}

function ask<T>(msg: string, reply: string, ms: number): Promise<T> {
  const answer = waitMessage<T>(server, reply, ms);
  server.send(msg);
  return answer;
}

/** Waits until the server holds only the victim's connection (bounded); ms it took. */
async function settle(from: number): Promise<number> {
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    const connections = await ask<{ connections: number }>('connections', 'connections', 15_000).then(
      (m) => m.connections,
      () => 0, // gone: the next window starts another
    );
    if (connections <= 1) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - from;
}

// ---- one window ---------------------------------------------------------------

async function runWindow(attack: (typeof ATTACKS)[number] | undefined, victim: Victim): Promise<WindowResult> {
  let attacker: ChildProcess | undefined;
  if (server.exitCode !== null || server.signalCode !== null) await startServer(); // it died between windows
  if (attack !== undefined) {
    attacker = fork(path.join(here, 'hostile-attacker.js'), [attack.name, String(port), String(windowMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await waitMessage(attacker, 'ready', 60_000);
  }
  await victim.connect(port);
  await ask('reset', 'reset', 10_000);
  const result = attacker === undefined ? undefined : waitMessage<{ tally: AttackTally }>(attacker, 'result', windowMs + 10_000).catch(() => undefined);
  attacker?.send('go');
  const victimDone = victim.window(windowMs);
  await new Promise((r) => setTimeout(r, windowMs));
  const endedAt = Date.now();
  attacker?.send('stop');
  let serverFigures: ServerFigures | { crashed: string };
  try {
    serverFigures = await ask<ServerFigures>('stats', 'stats', 60_000);
  } catch (err) {
    serverFigures = { crashed: (err as Error).message };
  }
  const statsAfterMs = Date.now() - endedAt;
  const tally = (await result)?.tally ?? null;
  if (attacker !== undefined && attacker.exitCode === null) attacker.kill('SIGKILL');
  const victimFigures = await victimDone;
  if ('crashed' in serverFigures) {
    server.kill('SIGKILL');
    await startServer();
    await victim.connect(port);
  }
  const settledAfterMs = await settle(endedAt);
  await new Promise((r) => setTimeout(r, 300));
  return { attack: attack?.name ?? 'baseline', title: attack?.title ?? 'no attack', victim: victimFigures, server: serverFigures, attacker: tally, statsAfterMs, settledAfterMs };
}

// ---- the report ---------------------------------------------------------------

function git(cmd: string): string {
  try {
    return execSync(`git ${cmd}`, { cwd: path.resolve(here, '../..'), encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const fmt = (n: number) => (Number.isFinite(n) ? (n >= 100 ? Math.round(n).toString() : n.toFixed(1)) : '-');
const counts = (o: Record<string, number>) =>
  Object.entries(o)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || '-';

function markdown(meta: Record<string, unknown>, windows: WindowResult[]): string {
  const rows = windows.map((w) => {
    const v = w.victim;
    const s = 'crashed' in w.server ? undefined : w.server;
    const a = w.attacker;
    const verdict = v.p99Ms <= TARGET_P99 && v.failedTotal === 0 && v.wrong === 0 ? 'yes' : '**no**';
    return [
      `\`${w.attack}\``,
      `${fmt(v.p50Ms)} / ${fmt(v.p99Ms)} / ${fmt(v.maxMs)}`,
      `${v.ok} / ${v.failedTotal + v.wrong + v.unsettled}`,
      verdict,
      s === undefined ? 'crashed' : `${fmt(s.eventLoop.maxMs)} / ${fmt(s.eventLoop.p99Ms)}`,
      s === undefined ? '-' : `${s.cpuPercent}`,
      a === null ? '-' : `${a.framesSent} (${(a.bytesSent / 1048576).toFixed(0)} MiB)`,
      a === null ? '-' : `${a.connections} / ${a.closedByServer}`,
      a === null ? '-' : counts(a.answers),
    ].join(' | ');
  });
  const details = windows.map((w) => {
    const lines = [`- \`${w.attack}\`: ${w.title}.`];
    if (w.victim.failedTotal + w.victim.wrong + w.victim.unsettled > 0) {
      lines.push(
        `  victim failures: ${counts({ ...w.victim.failed, ...(w.victim.wrong ? { wrong: w.victim.wrong } : {}), ...(w.victim.unsettled ? { unsettled: w.victim.unsettled } : {}) })}; reconnects ${w.victim.reconnects}`,
      );
    }
    if ('crashed' in w.server) lines.push(`  server: ${w.server.crashed}`);
    else {
      lines.push(
        `  server: stats ${w.statsAfterMs} ms after the window, victim alone ${w.settledAfterMs} ms after; max RSS so far ${w.server.maxRssMiB} MiB; ended ${counts(w.server.ended)}; log lines ${counts(w.server.logLines)}`,
      );
      for (const l of w.server.logSamples) lines.push(`    - ${l}`);
    }
    if (w.attacker !== null) {
      const a = w.attacker;
      lines.push(`  attacker: HELLO answers ${counts(a.helloGranted)}; connect failures ${a.connectFailed}${a.notes.length ? `; ${a.notes.join('; ')}` : ''}`);
    }
    return lines.join('\n');
  });
  return [
    '# Hostile connections: what one costs a well-behaved client',
    '',
    `${meta.date}, commit ${meta.commit}, ${meta.cpu} (${meta.cores} cores), Node ${meta.node}.`,
    `Server: RpcServer, default options, own process. Victim: one ClientStream (defaults) calling \`echo\` open loop at ${rate}/s,`,
    `latency from when each call was due. Attacker: one process, ${windowMs} ms per attack. Target: victim p99 <= ${TARGET_P99} ms, no failed call.`,
    'Server loop: event-loop delay beyond the 5 ms sampling interval (max = the longest stall). Failed includes calls refused by the',
    "victim's own client (rpc_queue_full: more than its window and queue waiting on a stalled server).",
    '',
    '| attack | victim p50 / p99 / max ms | victim ok / failed | target | server loop max / p99 ms | server CPU % | attacker frames | conns / closed by server | answers to the attacker |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r} |`),
    '',
    ...details,
    '',
  ].join('\n');
}

// ---- main ---------------------------------------------------------------------

await startServer();
const victim = new Victim(port, rate);
await victim.connect();
console.log(`server on ${port}; warm-up ${WARMUP_MS} ms, then baseline and ${attacks.length} attack(s) of ${windowMs} ms at ${rate} calls/s`);
await victim.window(WARMUP_MS);

const windows: WindowResult[] = [];
for (const attack of [undefined, ...attacks]) {
  const w = await runWindow(attack, victim);
  windows.push(w);
  const s = 'crashed' in w.server ? 'server crashed' : `loop max ${w.server.eventLoop.maxMs} ms`;
  console.log(`  ${w.attack}: victim p99 ${w.victim.p99Ms} ms, ok ${w.victim.ok}, failed ${w.victim.failedTotal}; ${s}; settled ${w.settledAfterMs} ms`);
}
victim.destroy();
server.send('stop');

const dirtyLib = git('status --porcelain -- lib') !== '';
const meta = {
  date: new Date().toISOString(),
  commit: `${git('rev-parse --short HEAD')}${dirtyLib ? ' (lib/ modified)' : ''}`,
  node: process.version,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  windowMs,
  rate,
  targetP99Ms: TARGET_P99,
};
const md = markdown(meta, windows);
console.log(`\n${md}`);
if (only === undefined) {
  const out = path.resolve(here, '../../bench/results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'hostile.json'), JSON.stringify({ ...meta, windows }, null, 2) + '\n');
  fs.writeFileSync(path.join(out, 'hostile.md'), md);
}
process.exit(0);
