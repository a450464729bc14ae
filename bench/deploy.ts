/**
 * A rolling deploy and a scale out/in behind a DNS name (`npm run deploy`).
 * A DNS server process (dns-zone-server.js) publishes api.occams.test; 3
 * replicas (soak-server.js) listen on 127.0.0.2-4 with one port; 2 client
 * processes (deploy-client.js) keep 64 non-idempotent calls in flight each.
 * Then each replica in turn is replaced: a new one starts on a new address
 * and joins the record set, the old one leaves it and gets SIGTERM at once
 * (GOAWAY, drain, exit), as Kubernetes does. Then a 4th replica is added and
 * one removed.
 * Usage: node dist/bench/deploy.js [--warmup 5] [--quiet 3] [--settle 2] [--ttl 1] [--start-late] [--json] [--out bench/results/deploy]
 * Figures: failed calls by code, calls executed twice, calls lost (answered
 * but in no replica's log, or sent but never settled), p50/p99 between and
 * during the changes (interleaved with steady windows), and per new replica the time from joining DNS to its
 * first call.
 */
import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from './free-port.js';
import { countIds } from './ids-files.js';
import { waitMessage } from './ipc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name: string, d: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? process.argv[outArg + 1] : undefined;
const warmupS = arg('warmup', 5);
const quietS = arg('quiet', 3);
const settleS = arg('settle', 2);
const ttl = arg('ttl', 1);
const startLate = process.argv.includes('--start-late');
const RESOLVE_INTERVAL = Math.max(1000, ttl * 1000 * 4);
const CLIENTS = 2;
const IN_FLIGHT = 64;
const NAME = 'api.occams.test';
const json = process.argv.includes('--json');
const log = (m: string) => !json && console.log(`${new Date().toISOString().slice(11, 23)} ${m}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'occams-deploy-'));
const all: ChildProcess[] = [];
process.once('exit', () => all.forEach((c) => c.kill('SIGKILL')));

const zone = fork(path.join(here, 'dns-zone-server.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
all.push(zone);
const dnsPort = (await waitMessage<{ port: number }>(zone, 'ready')).port;
const port = await freePort();

interface Replica {
  ip: string;
  child: ChildProcess;
  joinedAt: number;
  firstAt: number | undefined;
}
const live: Replica[] = [];
const history: Replica[] = [];
let nextIp = 2;

async function publish(): Promise<void> {
  const done = waitMessage(zone, 'zone-set');
  zone.send({ type: 'zone', zone: { [NAME]: { A: live.map((r) => r.ip), ttl } } });
  await done;
}

/** Starts a replica on the next loopback address (not yet in DNS). */
async function startReplica(): Promise<Replica> {
  const ip = `127.0.0.${nextIp++}`;
  const child = fork(path.join(here, 'soak-server.js'), [String(port), path.join(dir, `${ip}.ids`), ip], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  all.push(child);
  await waitMessage(child, 'ready');
  const r: Replica = { ip, child, joinedAt: 0, firstAt: undefined };
  child.once('message', (m: { type: string; at: number }) => m.type === 'first' && (r.firstAt = m.at));
  return r;
}

/** Adds a started replica to DNS. */
async function join(r: Replica): Promise<void> {
  live.push(r);
  history.push(r);
  r.joinedAt = Date.now();
  await publish();
  log(`+ ${r.ip} in DNS (${live.map((x) => x.ip).join(', ')})`);
}

/** Takes a replica out of DNS and sends it SIGTERM at once; resolves when it has drained and exited. */
async function removeReplica(r: Replica): Promise<void> {
  live.splice(live.indexOf(r), 1);
  await publish();
  const exited = new Promise<number | null>((res) => r.child.once('exit', (code) => res(code)));
  r.child.kill('SIGTERM');
  const code = await exited;
  log(`- ${r.ip} out of DNS, SIGTERM, exited ${code}`);
}

for (let i = 0; i < 3; i++) await join(await startReplica());
// the replicas to come: started now (a new pod boots on another machine; here its start would take the clients' CPU), or at their turn with --start-late
const spares: Replica[] = [];
if (!startLate) for (let i = 0; i < 4; i++) spares.push(await startReplica());
const next = async (): Promise<Replica> => spares.shift() ?? (await startReplica());
const clients = Array.from({ length: CLIENTS }, (_, i) => {
  const c = fork(path.join(here, 'deploy-client.js'), [String(i + 1), `${NAME}:${port}`, `127.0.0.1:${dnsPort}`, String(IN_FLIGHT), String(RESOLVE_INTERVAL)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  all.push(c);
  return c;
});
await Promise.all(clients.map((c) => waitMessage(c, 'ready')));
for (const c of clients) c.send({ type: 'go' });
log(`load: ${CLIENTS} clients × ${IN_FLIGHT} in flight, DNS TTL ${ttl} s`);
await sleep(warmupS * 1000); // warm-up (JIT, connections), outside every phase

// quiet windows and change windows interleave, so that both see the same machine load
type Range = [number, number];
const steady: Range[] = [];
const changes: Range[] = [];
async function quiet(): Promise<void> {
  const from = Date.now();
  await sleep(quietS * 1000);
  steady.push([from, Date.now()]);
}
async function change(step: () => Promise<void>): Promise<void> {
  const from = Date.now();
  await step();
  changes.push([from, Date.now()]);
  await quiet();
}
await quiet();
for (let i = 0; i < 3; i++) {
  await change(async () => {
    const old = live[0]!;
    await join(await next());
    await sleep(settleS * 1000);
    await removeReplica(old);
    await sleep(settleS * 1000);
  });
}
await change(async () => {
  await join(await next());
  await sleep(settleS * 1000);
});
await change(async () => {
  await removeReplica(live[0]!);
  await sleep(settleS * 1000);
});

const phases = [
  { name: 'steady (between changes)', ranges: steady },
  { name: 'rolling deploy', ranges: changes.slice(0, 3) },
  { name: 'scale out/in', ranges: changes.slice(3) },
  { name: 'all changes', ranges: changes },
];
const results = await Promise.all(
  clients.map((c) => {
    const got = waitMessage<{
      tally: { sent: number; ok: number; wrong: number; failed: Record<string, number> };
      outstanding: number;
      phases: { name: string; calls: number; perSecond: number; p50: number; p99: number; max: number }[];
      lastId: number;
      index: number;
    }>(c, 'result', 120_000);
    c.send({ type: 'stop', phases });
    return got;
  }),
);
await Promise.all(live.map((r) => removeReplica(r)));
zone.kill('SIGKILL');

const ids = countIds(dir);
const initial = new Set(history.slice(0, 3));
const perReplica = history.map((r) => {
  const f = path.join(dir, `${r.ip}.ids`);
  const calls = fs.existsSync(f) ? fs.statSync(f).size / 8 : 0;
  return { ip: r.ip, calls, firstCallAfterJoinMs: r.firstAt === undefined || initial.has(r) ? null : Math.max(0, r.firstAt - r.joinedAt) };
});
fs.rmSync(dir, { recursive: true, force: true });

let executedTwice = 0;
for (const count of ids.values()) if (count > 1) executedTwice++;
const sent = results.reduce((a, r) => a + r.tally.sent, 0);
const ok = results.reduce((a, r) => a + r.tally.ok, 0);
const failed: Record<string, number> = {};
for (const r of results) for (const [k, v] of Object.entries(r.tally.failed)) failed[k] = (failed[k] ?? 0) + v;
const failedTotal = Object.values(failed).reduce((a, b) => a + b, 0);
// answered calls the replicas have no record of, plus calls that never settled
const lost = Math.max(0, ok - ids.size) + results.reduce((a, r) => a + r.outstanding, 0) + (sent - ok - failedTotal - results.reduce((a, r) => a + r.tally.wrong, 0));
const secondsOf = (ranges: Range[]) => ranges.reduce((a, [f, t]) => a + (t - f), 0) / 1000;
const phaseFigures = phases.map((ph) => {
  const per = results.map((r) => r.phases.find((p) => p.name === ph.name)!);
  return {
    name: ph.name,
    seconds: secondsOf(ph.ranges),
    perSecond: per.reduce((a, p) => a + p.perSecond, 0),
    p50: Math.max(...per.map((p) => p.p50)),
    p99: Math.max(...per.map((p) => p.p99)),
    max: Math.max(...per.map((p) => p.max)),
  };
});
const p99Before = phaseFigures[0]!.p99;
const p99Deploy = phaseFigures[3]!.p99;
const report = {
  when: new Date().toISOString(),
  load: os.loadavg().map((x) => Math.round(x * 100) / 100),
  cpus: os.cpus().length,
  node: process.version,
  setup: {
    warmupSeconds: warmupS,
    replicas: 3,
    clients: CLIENTS,
    inFlightPerClient: IN_FLIGHT,
    ttlSeconds: ttl,
    settleSeconds: settleS,
    resolveIntervalMs: RESOLVE_INTERVAL,
    minIntervalMs: 250,
    quietSeconds: quietS,
    newReplicasStarted: startLate ? 'at their turn' : 'before the load',
  },
  sent,
  ok,
  failed,
  wrongAnswers: results.reduce((a, r) => a + r.tally.wrong, 0),
  executedTwice,
  lost,
  phases: phaseFigures,
  p99Ratio: Math.round((p99Deploy / p99Before) * 100) / 100,
  replicas: perReplica,
};

if (json) console.log(JSON.stringify(report, null, 2));
else {
  log(`sent ${sent}, ok ${ok}, failed ${failedTotal} ${JSON.stringify(failed)}, executed twice ${executedTwice}, lost ${lost}`);
  for (const p of phaseFigures) log(`${p.name.padEnd(16)} ${p.perSecond} calls/s  p50 ${p.p50.toFixed(2)} ms  p99 ${p.p99.toFixed(2)} ms  max ${p.max.toFixed(2)} ms`);
  log(`p99 changes / steady: ${report.p99Ratio}`);
  for (const r of perReplica) log(`${r.ip}: ${r.calls} calls, first call ${r.firstCallAfterJoinMs ?? '-'} ms after joining DNS`);
}
if (out !== undefined) {
  fs.writeFileSync(`${out}.json`, `${JSON.stringify(report, null, 2)}\n`);
  const md = [
    `# Rolling deploy and scale out/in behind a DNS name (\`npm run deploy\`)`,
    '',
    `${report.when}, node ${report.node}, ${report.cpus} cores, load average at the end ${report.load.join(' / ')} (the machine is shared with other sessions: figures are noisy).`,
    `${report.setup.replicas} replicas (soak-server.js) on 127.0.0.x with one port, ${CLIENTS} client processes × ${IN_FLIGHT} non-idempotent calls in flight, a DNS server process (dns-zone-server.js) with TTL ${ttl} s; the clients use \`dns: { servers, minInterval: 250 }\`, resolveInterval ${report.setup.resolveIntervalMs} ms.`,
    `Each replica in turn: a new one joins DNS, ${settleS} s later the old one leaves DNS and gets SIGTERM at once (its drain and exit awaited), ${settleS} s more; then a 4th is added and one removed. The new replicas' processes were started ${report.setup.newReplicasStarted}.`,
    `Windows of ${quietS} s without change come before and after each change, so the steady and the change figures are taken in turns under the same machine load; the ratio compares the p99 over all change windows with the p99 over all steady windows.`,
    '',
    `| sent | ok | failed | executed twice | lost |`,
    `| ---: | ---: | ---: | ---: | ---: |`,
    `| ${sent} | ${ok} | ${failedTotal}${failedTotal ? ` ${JSON.stringify(failed)}` : ''} | ${executedTwice} | ${lost} |`,
    '',
    `| phase | s | calls/s | p50 ms | p99 ms | max ms |`,
    `| --- | ---: | ---: | ---: | ---: | ---: |`,
    ...phaseFigures.map((p) => `| ${p.name} | ${p.seconds.toFixed(1)} | ${p.perSecond} | ${p.p50.toFixed(2)} | ${p.p99.toFixed(2)} | ${p.max.toFixed(2)} |`),
    '',
    `p99 during the changes / p99 between them: **${report.p99Ratio}** (each phase's figure is the worse of the two clients').`,
    '',
    `| replica | calls served | first call after joining DNS, ms (- for the 3 started before the load) |`,
    `| --- | ---: | ---: |`,
    ...perReplica.map((r) => `| ${r.ip} | ${r.calls} | ${r.firstCallAfterJoinMs ?? '-'} |`),
    '',
  ].join('\n');
  fs.writeFileSync(`${out}.md`, md);
}
process.exit(failedTotal === 0 && executedTwice === 0 && lost === 0 ? 0 : 1);
