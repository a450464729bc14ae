/**
 * The command line (lib/cli, the package's bin) run as a user runs it: a
 * child process (`node dist/lib/cli/main.js`, built by the global setup)
 * against the sample Calculator served by a real Nest app on 127.0.0.1,
 * with reflection on and off, over TLS and mutual TLS, and against a
 * stream-layer server whose handler never answers (timeouts). Every exit
 * code is checked. (test/package.spec.ts runs it from the packed tarball
 * through npx.)
 */
import 'reflect-metadata';

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { NestFactory } from '@nestjs/core';

import { MethodDispatch, OccamsServer, RpcServer, type TcpAddress } from '../lib/index.js';
import { CalculatorModule } from '../sample/calculator/calculator.module.js';
import { testPki } from './support/certs.js';
import { type Exit, runProcess, startProcess, stopAll } from './support/child-processes.js';
import { type Microservice, startMicroservice } from './support/nest-boot.js';
import { MemoryLogger, waitFor } from './support/servers.js';

const root = path.resolve(import.meta.dirname, '..');
const CLI = path.join(root, 'dist/lib/cli/main.js');

/** The CLI to its end (at most 20 s), with no terminal: stdin empty. */
const cli = (...args: string[]): Promise<Exit> => runProcess({ file: process.execPath, args: [CLI, ...args], env: { NO_COLOR: '' } }, 45_000);

/**
 * Several CLI runs, at most 3 at a time (a burst of node processes on a
 * 2-core CI machine would slow the suites running beside this one).
 */
async function clis(...runs: string[][]): Promise<Exit[]> {
  const out: Exit[] = new Array(runs.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < runs.length) {
      const i = next++;
      out[i] = await cli(...runs[i]!);
    }
  };
  await Promise.all([lane(), lane(), lane()]);
  return out;
}

/** The CLI with `input` on its stdin. */
function cliWithInput(input: string, ...args: string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** A port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

// each test runs a few CLI processes (about 0.5 s each on an idle machine, several seconds on a busy 2-core one)
describe('the nestjs-occams command line', { timeout: 90_000 }, () => {
  let calc: Microservice;
  let calcStrategy: OccamsServer;
  let plain: Microservice; // reflection off
  let addr: string;
  let slow: RpcServer;
  let slowAddr: string;
  let dead: string;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'occams-cli-'));

  beforeAll(async () => {
    calcStrategy = new OccamsServer({ port: 0, reflection: true });
    const app = await NestFactory.createMicroservice(CalculatorModule, { strategy: calcStrategy, logger: false });
    await app.listen();
    calc = { app, strategy: calcStrategy, port: (calcStrategy.address as TcpAddress).port };
    plain = await startMicroservice(CalculatorModule);
    addr = `127.0.0.1:${calc.port}`;
    slow = new RpcServer(
      new MethodDispatch(
        {
          never: () => new Promise(() => {}),
          meta: (_m: unknown, req: { meta?: unknown }) => req.meta ?? null,
        },
        new MemoryLogger(),
      ),
      { logger: new MemoryLogger(), handlerTimeout: 0 },
    );
    const a = (await slow.listen()) as TcpAddress;
    slowAddr = `127.0.0.1:${a.port}`;
    dead = `127.0.0.1:${await deadPort()}`;
  }, 30_000);

  afterAll(async () => {
    await stopAll();
    await Promise.all([calc?.app.close(), plain?.app.close(), slow?.close()]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('call', () => {
    it('prints the result as JSON on stdout and exits 0', async () => {
      const r = await cli('call', addr, 'Calculator.add', '[2, 3]');
      expect(r).toMatchObject({ code: 0, stdout: '5\n', stderr: '' });
      const events = await cli('call', addr, 'Calculator.events', '--compact');
      expect(events.stdout).toBe('[]\n');
    });

    it('reads the value from stdin with -, and takes negative numbers as values', async () => {
      expect(await cliWithInput('[40, 2]\n', 'call', addr, 'Calculator.add', '-')).toMatchObject({ code: 0, stdout: '42\n' });
      expect(await cli('call', addr, 'Calculator.might_fail_with_errno', '21')).toMatchObject({ code: 0, stdout: '42\n' });
    });

    it('a typed error: its code and message on stderr, exit 1, nothing on stdout', async () => {
      const div = await cli('call', addr, 'Calculator.div', '[1, 0]');
      expect(div).toMatchObject({ code: 1, stdout: '' });
      expect(div.stderr).toBe('error: user_error: division by zero\n');
      const errno = await cli('call', addr, 'Calculator.might_fail_with_errno', '-1');
      expect(errno).toMatchObject({ code: 1, stdout: '' });
      expect(errno.stderr).toBe('error: user_errno 22: v must be >= 0\n');
    });

    it("the server's own errors exit 1 too (rpc_service_notfound, rpc_method_notfound)", async () => {
      const r = await cli('call', addr, 'Nope.x');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: rpc_service_notfound: /);
      expect((await cli('call', addr, 'Calculator.nope')).stderr).toMatch(/^error: rpc_method_notfound: /);
    });

    it('sends metadata (--metadata k=v, repeatable, values as JSON when they parse)', async () => {
      const r = await cli('call', slowAddr, 'meta', '-m', 'tenant=acme', '--metadata', 'n=3', '--compact');
      expect(r).toMatchObject({ code: 0 });
      expect(JSON.parse(r.stdout)).toEqual({ tenant: 'acme', n: 3 });
    });

    it('sends an event with --event (no answer awaited), which the handler gets', async () => {
      expect(await cli('call', addr, 'Calculator.log', '{"from": "cli"}', '--event')).toMatchObject({ code: 0, stdout: '' });
      const seen = await cli('call', addr, 'Calculator.events', '--compact');
      expect(JSON.parse(seen.stdout)).toContainEqual({ from: 'cli' });
    });

    it('fails over: a dead address first in the list, the live one answers', async () => {
      expect(await cli('call', `${dead},${addr}`, 'Calculator.add', '[1, 1]')).toMatchObject({ code: 0, stdout: '2\n' });
    });

    it('dials Unix sockets (unix:/path)', async () => {
      const sock = path.join(tmp, 'calc.sock');
      const unix = await startMicroservice(CalculatorModule, { path: sock });
      try {
        expect(await cli('call', `unix:${sock}`, 'Calculator.add', '[3, 4]')).toMatchObject({ code: 0, stdout: '7\n' });
      } finally {
        await unix.app.close();
      }
    });
  });

  describe('exit codes', () => {
    it('2: a bad command line or bad JSON, with the reason on stderr and nothing sent', async () => {
      const cases = [
        ['call', addr, 'Calculator.add', '[1,'],
        ['call', addr],
        ['call', addr, 'Calculator.add', '[1, 2]', 'extra'],
        ['call', addr, 'Calculator.add', '--bogus'],
        ['call', 'no-port', 'Calculator.add'],
        ['call', addr, 'Calculator.add', '--timeout', 'soon'],
        ['bench', addr, 'Calculator.add', '--concurrency', '0'],
        ['frobnicate'],
        [],
      ];
      const runs = await clis(...cases);
      for (const [i, r] of runs.entries()) {
        expect({ args: cases[i], code: r.code }).toEqual({ args: cases[i], code: 2 });
        expect(r.stderr).not.toBe('');
        expect(r.stdout).toBe('');
      }
      expect(runs[0]!.stderr).toMatch(/^usage: the JSON argument is not JSON/);
    });

    it('3: nothing listens there', async () => {
      const r = await cli('call', dead, 'Calculator.add', '[1, 2]');
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^error: rpc_unreachable: .*connection refused/);
    });

    it('4: no answer within --timeout', async () => {
      const r = await cli('call', slowAddr, 'never', '--timeout', '300ms');
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/^error: rpc_timeout: /);
    });

    it('130: Ctrl-C during a call exits at once', async () => {
      const connected = new Promise((r) => slow.once('connection', r)); // the CLI handles SIGINT before it dials
      const { child, exited } = ((): { child: ReturnType<typeof spawn>; exited: Promise<number | null> } => {
        const c = spawn(process.execPath, [CLI, 'call', slowAddr, 'never', '--timeout', '60s'], { stdio: 'ignore' });
        const timer = setTimeout(() => c.kill('SIGKILL'), 45_000);
        return { child: c, exited: new Promise((r) => c.once('close', (code) => (clearTimeout(timer), r(code)))) };
      })();
      await connected;
      child.kill('SIGINT');
      expect(await exited).toBe(130);
    });

    it('no colour codes when stderr is not a terminal', async () => {
      const r = await runProcess({ file: process.execPath, args: [CLI, 'call', dead, 'x'], env: { FORCE_COLOR: '1' } });
      expect(r.stderr).not.toContain('\x1b[');
    });
  });

  describe('stream', () => {
    it('prints each item as a JSON line (and call does too)', async () => {
      const [stream, call] = await clis(['stream', addr, 'Calculator.count', '3'], ['call', addr, 'Calculator.count', '3']);
      expect(stream).toMatchObject({ code: 0, stdout: '1\n2\n3\n', stderr: '' });
      expect(call).toMatchObject({ code: 0, stdout: '1\n2\n3\n', stderr: '' }); // call prints a streamed result the same way
    });

    it('Ctrl-C (SIGINT) cancels the call on the server and exits 130', async () => {
      const rpc = calcStrategy.unwrap<RpcServer>();
      const before = rpc.stats.ended.cancelled;
      const started = await startProcess({ file: process.execPath, args: [CLI, 'stream', addr, 'Calculator.count', '100000', '--timeout', '60s'] }, /^3$/m, 15_000);
      started.child.kill('SIGINT');
      const exit = await started.exited;
      expect(exit.code).toBe(130);
      const lines = exit.stdout.trim().split('\n').map(Number);
      expect(lines.slice(0, 3)).toEqual([1, 2, 3]);
      expect(lines.length).toBeLessThan(100_000);
      await waitFor(() => rpc.stats.ended.cancelled > before, 10_000);
      expect(rpc.stats.inFlight).toBe(0);
    });
  });

  describe('ping', () => {
    it('prints each round trip, then sent/received and min/avg/max', async () => {
      const r = await cli('ping', addr, '-c', '3', '-i', '20ms');
      expect(r.code).toBe(0);
      expect(r.stdout.match(/^reply from 127\.0\.0\.1:\d+: seq=\d time=\d+\.\d+ ms$/gm)).toHaveLength(3);
      expect(r.stdout).toContain('3 sent, 3 received, 0% loss');
      const [, min, avg, max] = /rtt min\/avg\/max = ([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(r.stdout)!.map(Number);
      expect(min).toBeLessThanOrEqual(avg!);
      expect(avg).toBeLessThanOrEqual(max!);
    });

    it('exits 3 when no PING is answered', async () => {
      const r = await cli('ping', dead, '-c', '2', '-i', '10ms');
      expect(r.code).toBe(3);
      expect(r.stdout).toContain('2 sent, 0 received, 100% loss');
    });
  });

  describe('list and describe (server reflection)', () => {
    it('list: the patterns, then the events', async () => {
      const r = await cli('list', addr);
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect(r.stdout).toBe(
        ['Calculator.add', 'Calculator.count', 'Calculator.div', 'Calculator.events', 'Calculator.might_fail_with_errno', 'Calculator.log (event)', ''].join('\n'),
      );
    });

    it('describe: the server, and one service, as text and as JSON', async () => {
      const all = await cli('describe', addr);
      expect(all.code).toBe(0);
      expect(all.stdout).toMatch(/^server nestjs-occams \d+\.\d+\.\d+, protocol v1, extensions v1\nfeatures: events, metadata, streaming, cancel/);
      expect(all.stdout).toMatch(/div\s+Calculator\.div\s+method, errors: message \(DivError\), idempotent/);
      expect(all.stdout).toMatch(/count\s+Calculator\.count\s+stream/);
      const one = await cli('describe', addr, 'Calculator', '--json');
      const service = JSON.parse(one.stdout);
      expect(service.name).toBe('Calculator');
      expect(service.methods.find((m: { name: string }) => m.name === 'mightFail')).toEqual({
        name: 'mightFail',
        pattern: 'Calculator.might_fail_with_errno',
        kind: 'method',
        errors: 'errno',
        errorClass: 'InvalidArgument',
      });
      const json = JSON.parse((await cli('list', addr, '--json')).stdout);
      expect(json).toMatchObject({ protocol: 1, server: 'nestjs-occams', events: ['Calculator.log'] });
      const missing = await cli('describe', addr, 'Nope');
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('no typed service Nope');
    });

    it('5: a clear message when the server has reflection off', async () => {
      for (const command of ['list', 'describe']) {
        const r = await cli(command, `127.0.0.1:${plain.port}`);
        expect(r.code).toBe(5);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(/^error: rpc_reflection_off: the server does not answer reflection \(its reflection option is off/);
      }
    });
  });

  describe('bench', () => {
    it('--json: calls, throughput, ordered percentiles and a histogram that adds up', async () => {
      const r = await cli('bench', addr, 'Calculator.add', '[1, 2]', '--calls', '300', '-c', '4', '--json');
      expect(r).toMatchObject({ code: 0, stderr: '' });
      const report = JSON.parse(r.stdout);
      expect(report).toMatchObject({ pattern: 'Calculator.add', concurrency: 4, connections: 1, calls: 300, ok: 300, errors: 0, errorCodes: {}, interrupted: false });
      expect(report.rps).toBeGreaterThan(0);
      const l = report.latencyMs;
      const order = [l.min, l.p50, l.p90, l.p99, l.p999, l.max];
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      expect(l.avg).toBeGreaterThanOrEqual(l.min);
      expect(l.avg).toBeLessThanOrEqual(l.max);
      expect(report.histogram.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(300);
      expect(report.histogram[0].from).toBe(l.min);
      expect(report.histogram.at(-1).to).toBe(l.max);
    });

    it('text: the summary, percentiles and the histogram drawn; --progress lines on stderr', async () => {
      const r = await cli('bench', addr, 'Calculator.add', '[1, 2]', '--duration', '700ms', '-c', '2', '--warmup', '100ms', '--progress');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Summary:\n {2}Address: {6}127\.0\.0\.1:\d+\n/);
      for (const label of ['p50', 'p90', 'p99', 'p99.9', 'max']) expect(r.stdout).toMatch(new RegExp(`^  ${label.replace('.', '\\.')} +\\d+\\.\\d+ ms$`, 'm'));
      expect(r.stdout).toContain('Latency histogram (ms, log-spaced buckets):');
      expect(r.stdout).toMatch(/\[ *\d+\] \|∎+$/m);
      expect(r.stderr).toMatch(/^\d+\.\d+s {2}\d+ calls {2}\d+\/s {2}0 errors$/m);
    });

    it('counts failures by code, and exits with the first one when every call failed', async () => {
      const [r, unreachable, timedOut] = await clis(
        ['bench', addr, 'Calculator.div', '[1, 0]', '--calls', '20', '-c', '2', '--json'],
        ['bench', dead, 'Calculator.add', '--calls', '5'],
        ['bench', slowAddr, 'never', '--calls', '2', '-c', '2', '--timeout', '200ms', '--json'],
      );
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ calls: 20, ok: 0, errors: 20, errorCodes: { user_error: 20 }, latencyMs: null });
      expect(r.stderr).toContain('every call failed, the first with user_error: division by zero');
      expect(unreachable.code).toBe(3);
      expect(timedOut.code).toBe(4);
      expect(JSON.parse(timedOut.stdout)).toMatchObject({ ok: 0, errorCodes: { rpc_timeout: 2 } });
    });
  });

  describe('TLS and mutual TLS', () => {
    const pki = testPki();
    const files = (): Record<string, string> => {
      const out: Record<string, string> = {};
      for (const [name, pem] of Object.entries({ ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, stranger: pki.strangerCert, strangerKey: pki.strangerKey })) {
        out[name] = path.join(tmp, `${name}.pem`);
        fs.writeFileSync(out[name]!, pem);
      }
      return out;
    };
    let f: Record<string, string>;
    let tlsCalc: Microservice;
    let mtlsCalc: Microservice;
    beforeAll(async () => {
      f = files();
      [tlsCalc, mtlsCalc] = await Promise.all([
        startMicroservice(CalculatorModule, { reflection: true, tls: { key: pki.serverKey, cert: pki.serverCert } }),
        startMicroservice(CalculatorModule, { tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: true } }),
      ]);
    }, 30_000);
    afterAll(async () => {
      await Promise.all([tlsCalc?.app.close(), mtlsCalc?.app.close()]);
    });

    it('--tls with --ca: calls, lists, pings over TLS', async () => {
      const at = `127.0.0.1:${tlsCalc.port}`;
      const [call, named, list, ping] = await clis(
        ['call', at, 'Calculator.add', '[5, 6]', '--ca', f.ca!],
        ['call', at, 'Calculator.add', '[1, 1]', '--tls', '--ca', f.ca!, '--servername', 'localhost'],
        ['list', at, '--ca', f.ca!],
        ['ping', at, '--ca', f.ca!, '-c', '1'],
      );
      expect(call).toMatchObject({ code: 0, stdout: '11\n' });
      expect(named).toMatchObject({ code: 0, stdout: '2\n' });
      expect(list.stdout).toContain('Calculator.add\n');
      expect(ping.code).toBe(0);
    });

    it('exits 3 when the certificate is not trusted, or the server is not TLS; --insecure skips the check', async () => {
      const at = `127.0.0.1:${tlsCalc.port}`;
      const [untrusted, insecure, notTls] = await clis(
        ['call', at, 'Calculator.add', '[1, 1]', '--tls'],
        ['call', at, 'Calculator.add', '[1, 1]', '--insecure'],
        ['call', addr, 'Calculator.add', '[1, 1]', '--ca', f.ca!, '--timeout', '2s'],
      );
      expect(untrusted.code).toBe(3);
      expect(untrusted.stderr).toMatch(/^error: rpc_unreachable: /);
      expect(insecure).toMatchObject({ code: 0, stdout: '2\n' });
      expect(notTls.code).toBe(3);
    });

    it('mutual TLS: --cert and --key from the trusted CA pass; none, or a stranger’s, exit 3', async () => {
      const at = `127.0.0.1:${mtlsCalc.port}`;
      const [mutual, none, stranger, half] = await clis(
        ['call', at, 'Calculator.add', '[2, 2]', '--ca', f.ca!, '--cert', f.cert!, '--key', f.key!],
        ['call', at, 'Calculator.add', '[2, 2]', '--ca', f.ca!, '--timeout', '3s'],
        ['call', at, 'Calculator.add', '[2, 2]', '--ca', f.ca!, '--cert', f.stranger!, '--key', f.strangerKey!, '--timeout', '3s'],
        ['call', at, 'Calculator.add', '[2, 2]', '--cert', f.cert!],
      );
      expect(mutual).toMatchObject({ code: 0, stdout: '4\n' });
      expect(none.code).toBe(3);
      expect(stranger.code).toBe(3);
      expect(half.code).toBe(2); // --cert without --key
    });
  });

  it('--help for every command: usage on stdout, exit 0', async () => {
    const commands = ['call', 'stream', 'ping', 'list', 'describe', 'bench'];
    const helps = await clis(...commands.map((command) => [command, '--help']));
    for (const [i, r] of helps.entries()) {
      const command = commands[i]!;
      expect({ command, code: r.code }).toEqual({ command, code: 0 });
      expect(r.stdout.startsWith(`Usage: nestjs-occams ${command} ADDRESS`)).toBe(true);
      expect(r.stdout).toContain('--servername');
    }
    const top = await cli('--help');
    expect(top).toMatchObject({ code: 0 });
    expect(top.stdout).toContain('bench ADDRESS PATTERN [JSON]');
  });
});
