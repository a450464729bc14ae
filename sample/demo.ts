/**
 * The main demo: starts the Calculator microservice and the HTTP gateway as
 * two processes, calls through them (results, both error forms, a streamed
 * response, an event), prints what happened, stops both and exits.
 * Run: npm run demo
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

function start(name: string, script: string, env: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 15 s`)), 15_000);
    const onLine = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        console.log(`  [${name}] ${line.replace(/\x1b\[[0-9;]*m/g, '')}`);
        if (ready.test(line)) {
          clearTimeout(timer);
          resolve(child);
        }
      }
    };
    child.stdout.on('data', onLine);
    child.stderr.on('data', onLine);
    child.once('exit', (code) => reject(new Error(`${name} exited early with code ${code}`)));
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

const occamsPort = await freePort();
const httpPort = await freePort();
console.log(`starting calculator (occams on 127.0.0.1:${occamsPort}) and gateway (http on 127.0.0.1:${httpPort})`);
const calculator = await start('calculator', 'calculator/main.js', { OCCAMS_PORT: String(occamsPort) }, /calculator listening/);
const gateway = await start('gateway', 'gateway/main.js', { OCCAMS_PORT: String(occamsPort), PORT: String(httpPort) }, /gateway listening/);

const base = `http://127.0.0.1:${httpPort}`;
async function show(method: string, route: string, body?: unknown): Promise<void> {
  const res = await fetch(base + route, {
    method,
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  console.log(`${method.padEnd(4)} ${route.padEnd(14)} -> ${res.status} ${await res.text()}`);
}

let failed = false;
try {
  console.log('\ncalls through HTTP -> gateway -> occams -> calculator:');
  await show('GET', '/add/2/3');
  await show('GET', '/div/7/2');
  await show('GET', '/div/1/0'); // user error, v1 error-bytes form -> 422
  await show('GET', '/double/21');
  await show('GET', '/double/-1'); // errno 22 (EINVAL) with its message -> 422
  await show('GET', '/count/5'); // a streamed response: five frames, collected
  await show('POST', '/log', { event: 'demo', at: new Date().toISOString() }); // an event, no response
  await new Promise((r) => setTimeout(r, 50));
  await show('GET', '/events');
} catch (err) {
  failed = true;
  console.error('demo failed:', err);
}

console.log('\nstopping (SIGTERM)...');
const codes = [await stop(gateway), await stop(calculator)];
console.log(`gateway exited ${codes[0]}, calculator exited ${codes[1]}`);
process.exit(failed || codes.some((c) => c !== 0) ? 1 : 0);
