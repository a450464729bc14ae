/**
 * The package as a new user gets it: `npm pack`, then the tarball
 * installed into two throwaway Nest 12 apps, one CommonJS (the classic
 * `nest new` shape: no "type", module nodenext, imports compiled to
 * require()) and one ESM, each with its own Nest. Both compile against our
 * types, start an occams microservice and call it (the CommonJS one also
 * calls the ESM one's server); `npm ls` shows one copy of each peer.
 *
 * The CommonJS app pins the oldest Nest our peer ranges allow (their
 * floors, read from package.json), the ESM app the Nest of our lock file:
 * both ends of the range we test, and the case where Nest as a dependency
 * of ours made npm install a private copy under nestjs-occams.
 *
 * Packing runs in a copy of the package files (with this repo's
 * node_modules linked), so `prepare` never rewrites the repo's own dist/
 * while other suites use it.
 */
import 'reflect-metadata';

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { freePort } from '../bench/free-port.js';
import { CalculatorModule } from '../sample/calculator/calculator.module.js';
import { startMicroservice } from './support/nest-boot.js';
import { NEST_TEMPLATE_OPTIONS, quickStart } from './support/snippets.js';

const root = path.resolve(import.meta.dirname, '..');
const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
const fixture = path.join(root, 'test/fixtures/consumer/main.ts');

const PEERS = ['@nestjs/common', '@nestjs/core', '@nestjs/microservices', 'rxjs', 'reflect-metadata'] as const;
/** Optional peers (tracing, health checks): never installed for the consumer, and not needed. */
const OPTIONAL_PEERS = ['@nestjs/terminus', '@opentelemetry/api'] as const;
/** The floor of each Nest peer range (`^12.0.1` gives 12.0.1): the oldest Nest a user may have (see the header). */
const OLDER_NEST = Object.fromEntries(
  (['@nestjs/common', '@nestjs/core', '@nestjs/microservices'] as const).map((name) => {
    const range = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).peerDependencies[name] as string;
    const floor = /^\^(\d+\.\d+\.\d+)$/.exec(range);
    if (floor === null) throw new Error(`peer range of ${name} is not ^x.y.z: ${range}`);
    return [name, floor[1]!];
  }),
) as Record<'@nestjs/common' | '@nestjs/core' | '@nestjs/microservices', string>;

/** The version this repo has installed (so most installs come from the warm npm cache). */
const ours = (name: string): string => JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;

/** The environment a user's shell would give npm: none of the outer npm run's own variables. */
function cleanEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toLowerCase().startsWith('npm_') || keep.has(k.toLowerCase())) env[k] = v;
  return env;
}

interface Ran {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion within `timeout` ms; rejects with its output on failure. */
function run(cmd: string, args: string[], cwd: string, timeout = 120_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: cleanEnv(), timeout, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} in ${cwd} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Runs a command to its end within `timeout` ms, whatever its exit code. */
function runExit(cmd: string, args: string[], cwd: string, timeout = 60_000): Promise<Ran & { code: number }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: cleanEnv(), timeout }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

const timed = async <T>(times: Record<string, number>, name: string, fn: () => Promise<T>): Promise<T> => {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    times[name] = Date.now() - started;
  }
};

function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** The Nest 12 application template's compiler options (module nodenext for both shapes), emitting to dist/. */
const TEMPLATE_OPTIONS = { ...NEST_TEMPLATE_OPTIONS, outDir: './dist', rootDir: './src' };

/**
 * The README's quick start as pasted, but for its port (7100 there; a free
 * one here, as other suites run beside it): src/quickstart.ts.
 */
function quickStartOn(port: number): string {
  const { code } = quickStart();
  expect(code.match(/\b7100\b/g)?.length).toBe(2); // the server's and the client's
  return code.replace(/\b7100\b/g, String(port));
}

function createApp(dir: string, kind: 'cjs' | 'esm', quickStartPort: number): void {
  writeJson(path.join(dir, 'package.json'), {
    name: `occams-consumer-${kind}`,
    version: '1.0.0',
    private: true,
    ...(kind === 'esm' ? { type: 'module' } : {}),
  });
  writeJson(path.join(dir, 'tsconfig.json'), { compilerOptions: TEMPLATE_OPTIONS, include: ['src'] });
  // type checks only: the other resolution modes a consumer may use
  writeJson(path.join(dir, 'tsconfig.bundler.json'), {
    extends: './tsconfig.json',
    compilerOptions: { module: 'preserve', moduleResolution: 'bundler', noEmit: true },
  });
  writeJson(path.join(dir, 'tsconfig.node16.json'), {
    extends: './tsconfig.json',
    compilerOptions: { module: 'node16', moduleResolution: 'node16', noEmit: true },
  });
  // the published types themselves, every entry point, checked as strictly as our own (skipLibCheck off);
  // not /terminus, whose types need the optional peer @nestjs/terminus (not installed here)
  writeJson(path.join(dir, 'tsconfig.libcheck.json'), {
    compilerOptions: { ...TEMPLATE_OPTIONS, skipLibCheck: false, noEmit: true, rootDir: '.' },
    include: ['typecheck'],
  });
  fs.mkdirSync(path.join(dir, 'typecheck'), { recursive: true });
  const entries = ['', '/stream', '/client', '/server', '/protocol', '/defaults'];
  fs.writeFileSync(
    path.join(dir, 'typecheck/entries.ts'),
    `${entries.map((e, i) => `import * as e${i} from 'nestjs-occams${e}';`).join('\n')}\nexport const entries = [${entries.map((_, i) => `e${i}`).join(', ')}];\n`,
  );
  fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
  fs.copyFileSync(fixture, path.join(dir, 'src/main.ts'));
  fs.writeFileSync(path.join(dir, 'src/quickstart.ts'), quickStartOn(quickStartPort));
}

/** Where each of `names` is installed under `dir`, from one `npm ls --all --parseable`. */
async function copiesOf(dir: string, names: readonly string[]): Promise<Record<string, string[]>> {
  const { stdout } = await run('npm', ['ls', ...names, '--all', '--parseable'], dir);
  const lines = [...new Set(stdout.split('\n'))];
  const out: Record<string, string[]> = {};
  for (const name of names) out[name] = lines.filter((line) => line.endsWith(`${path.sep}node_modules${path.sep}${name.split('/').join(path.sep)}`));
  return out;
}

function installedVersion(dir: string, name: string): string {
  return JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
}

/** Waits (bounded) for a line matching `re` on the child's stdout. */
function waitForLine(child: ChildProcess, re: RegExp, ms: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let errors = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${ms} ms:\n${buffered}\n${errors}`)), ms);
    child.stderr!.on('data', (d: Buffer) => (errors += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const m = buffered.match(re);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before ${re}:\n${buffered}\n${errors}`));
    });
  });
}

/** The first JSON line a consumer printed. */
const report = (stdout: string) => JSON.parse(stdout.split('\n').find((l) => l.startsWith('{'))!);

const expectedReport = (kind: string) => ({
  kind,
  sums: [42, 43],
  errno: { occams: true, remoteErrno: true, code: 'user_errno', errno: 22, message: 'bad input' },
  rpc: { occams: true, remoteErrno: false, code: 'user_error', message: 'plain message' },
  typed: { half: 21, odd: true, occams: false },
  stream: 42,
  typedStream: 42,
  channelMessages: 1,
  tracing: 'rpc_missing_dependency',
  subpaths: ['function', 'function', 'number', 'function'],
});

describe('the packed package in fresh CommonJS and ESM Nest apps', () => {
  const times: Record<string, number> = {};
  let tmp: string;
  let packed: { filename: string; files: { path: string }[] };
  const apps = { cjs: '', esm: '' };

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'occams-package-'));
    const src = path.join(tmp, 'package');
    fs.mkdirSync(src);
    for (const f of ['package.json', 'README.md', 'LICENSE', 'tsconfig.json', 'tsconfig.lib.json']) fs.copyFileSync(path.join(root, f), path.join(src, f));
    fs.cpSync(path.join(root, 'lib'), path.join(src, 'lib'), { recursive: true });
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(src, 'node_modules'), 'dir');
    const { stdout } = await timed(times, 'pack', () => run('npm', ['pack', '--json', '--pack-destination', tmp], src));
    packed = JSON.parse(stdout)[0];
    const tarball = path.join(tmp, packed.filename);

    apps.cjs = path.join(tmp, 'cjs-app');
    apps.esm = path.join(tmp, 'esm-app');
    createApp(apps.cjs, 'cjs', await freePort());
    createApp(apps.esm, 'esm', await freePort());
    const common = ['rxjs', 'reflect-metadata', '@types/node'].map((n) => `${n}@${ours(n)}`);
    const install = (dir: string, nest: string[]) =>
      run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, ...nest, ...common], dir, 240_000);
    await timed(times, 'install (both apps, in parallel)', () =>
      Promise.all([
        install(
          apps.cjs,
          Object.entries(OLDER_NEST).map(([n, v]) => `${n}@${v}`),
        ),
        install(
          apps.esm,
          Object.keys(OLDER_NEST).map((n) => `${n}@${ours(n)}`),
        ),
      ]),
    );
    await timed(times, 'compile (both apps)', () => Promise.all([run(process.execPath, [tsc, '-p', '.'], apps.cjs), run(process.execPath, [tsc, '-p', '.'], apps.esm)]));
  }, 420_000);

  afterAll(() => {
    console.log(`package test timings (ms): ${JSON.stringify(times)}`);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 120_000); // two apps' node_modules, on a busy disk

  it('packs what a consumer needs and nothing else', () => {
    const files = packed.files.map((f) => f.path).sort();
    for (const f of files) expect(f).toMatch(/^(package\.json|README\.md|LICENSE|dist\/lib\/.+\.(js|d\.ts))$/);
    for (const entry of ['index', 'stream/index', 'client/index', 'server/index', 'terminus/index', 'protocol/index', 'defaults']) {
      expect(files).toContain(`dist/lib/${entry}.js`);
      expect(files).toContain(`dist/lib/${entry}.d.ts`);
    }
    // internals stay out of the published types (stripInternal)
    const dts = files.filter((f) => f.endsWith('.d.ts')).map((f) => fs.readFileSync(path.join(apps.esm, 'node_modules/nestjs-occams', f), 'utf8'));
    expect(dts.filter((text) => text.includes('@internal'))).toEqual([]);
    expect(files).toContain('LICENSE');
    expect(files).toContain('dist/lib/cli/main.js');
    const manifest = JSON.parse(fs.readFileSync(path.join(apps.esm, 'node_modules/nestjs-occams/package.json'), 'utf8'));
    expect(manifest.bin).toEqual({ 'nestjs-occams': './dist/lib/cli/main.js' });
    expect(Object.keys(manifest.dependencies)).toEqual(['msgpackr']);
    expect(Object.keys(manifest.peerDependencies).sort()).toEqual([...PEERS, ...OPTIONAL_PEERS].sort());
    expect(Object.keys(manifest.peerDependenciesMeta).sort()).toEqual([...OPTIONAL_PEERS].sort());
    for (const name of OPTIONAL_PEERS) expect(manifest.peerDependenciesMeta[name]).toEqual({ optional: true });
  });

  it('installs one copy of each peer, the consumer’s own version', async () => {
    const listed = await Promise.all([apps.cjs, apps.esm].map((dir) => copiesOf(dir, PEERS)));
    for (const [i, dir] of [apps.cjs, apps.esm].entries()) {
      expect(fs.existsSync(path.join(dir, 'node_modules/nestjs-occams/node_modules'))).toBe(false);
      for (const name of PEERS) expect(listed[i]![name]).toEqual([path.join(dir, 'node_modules', ...name.split('/'))]);
      for (const name of OPTIONAL_PEERS) expect(fs.existsSync(path.join(dir, 'node_modules', ...name.split('/')))).toBe(false);
    }
    expect(installedVersion(apps.cjs, '@nestjs/core')).toBe(OLDER_NEST['@nestjs/core']);
  }, 60_000);

  it('types resolve under nodenext (compiled above), node16 and bundler', async () => {
    await timed(times, 'type checks', () =>
      Promise.all([
        run(process.execPath, [tsc, '-p', 'tsconfig.bundler.json'], apps.esm),
        run(process.execPath, [tsc, '-p', 'tsconfig.node16.json'], apps.esm),
        run(process.execPath, [tsc, '-p', 'tsconfig.bundler.json'], apps.cjs),
        run(process.execPath, [tsc, '-p', 'tsconfig.libcheck.json'], apps.esm),
      ]),
    );
    expect(fs.readFileSync(path.join(apps.cjs, 'dist/main.js'), 'utf8')).toContain('require("nestjs-occams")');
  }, 120_000);

  it("the README's quick start, compiled above as pasted (but for its port), runs in both apps: prints both sums and exits 0", async () => {
    const [cjs, esm] = await Promise.all([apps.cjs, apps.esm].map((dir) => run(process.execPath, ['dist/quickstart.js'], dir, 60_000)));
    for (const ran of [cjs!, esm!]) {
      // Nest's own log lines (the microservice starting) come between
      expect(ran.stdout.split('\n').filter((l) => l.startsWith('sum'))).toEqual(['sum = 6', 'sum = 9']);
      expect(ran.stderr).toBe('');
    }
    expect(fs.readFileSync(path.join(apps.cjs, 'dist/quickstart.js'), 'utf8')).toContain('require("nestjs-occams")');
  }, 90_000);

  it('the ESM app serves and calls itself; the CommonJS app calls itself and the ESM server', async () => {
    const esm = spawn(process.execPath, ['dist/main.js', 'esm', 'serve'], { cwd: apps.esm, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let esmOut = '';
      esm.stdout.on('data', (d: Buffer) => (esmOut += d.toString()));
      const [, esmPort] = await waitForLine(esm, /READY (\d+)/, 30_000);
      expect(report(esmOut)).toMatchObject(expectedReport('esm'));

      const cjs = await timed(times, 'cjs run', () => run(process.execPath, ['dist/main.js', 'cjs', 'once', esmPort!], apps.cjs, 60_000));
      expect(report(cjs.stdout)).toMatchObject({ ...expectedReport('cjs'), peer: 6 });
    } finally {
      const exited = new Promise((resolve) => (esm.exitCode !== null ? resolve(esm.exitCode) : esm.once('exit', resolve)));
      esm.kill('SIGTERM');
      const timer = setTimeout(() => esm.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    expect(esm.exitCode).toBe(0);
  }, 90_000);

  it('the CLI runs from the tarball through npx, in both apps, against the sample Calculator', async () => {
    const calc = await startMicroservice(CalculatorModule, { reflection: true });
    try {
      const at = `127.0.0.1:${calc.port}`;
      const npx = (dir: string, ...args: string[]) => runExit('npx', ['--no', 'nestjs-occams', ...args], dir);
      const [call, list, typedError, unreachable] = await timed(times, 'npx (4 runs)', () =>
        Promise.all([
          npx(apps.esm, 'call', at, 'Calculator.add', '[2, 3]'),
          npx(apps.cjs, 'list', at),
          npx(apps.cjs, 'call', at, 'Calculator.div', '[1, 0]'),
          npx(apps.esm, 'call', '127.0.0.1:1', 'Calculator.add', '[1, 1]', '--timeout', '2s'),
        ]),
      );
      expect(call).toMatchObject({ code: 0, stdout: '5\n' });
      expect(list.code).toBe(0);
      expect(list.stdout).toContain('Calculator.add\nCalculator.count\n');
      expect(typedError).toMatchObject({ code: 1, stdout: '' });
      expect(typedError.stderr).toContain('user_error: division by zero');
      expect(unreachable.code).toBe(3);
    } finally {
      await calc.app.close();
    }
  }, 90_000);
});
