/**
 * The typed layer's compile-time checks, as a user's compiler sees them:
 * `tsc` over test/fixtures/typed-service (against dist's .d.ts files, as
 * the package ships them). `good.ts` must compile; every line of a
 * `bad-*.ts` marked `// error: <text>` must fail with that text, and no
 * unmarked line may fail.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const fixtures = path.join(root, 'test/fixtures/typed-service');
const tsc = path.join(root, 'node_modules/typescript/bin/tsc');

interface Diagnostic {
  file: string;
  line: number;
  /** the first line and its elaboration */
  text: string;
}

/** tsc's `--pretty false` output: `file(line,col): error TSnnnn: message`, then indented elaboration lines. */
function parse(output: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const line of output.split('\n')) {
    const m = /^(.+?)\((\d+),\d+\): error (TS\d+: .*)$/.exec(line);
    if (m) out.push({ file: path.resolve(root, m[1]!), line: Number(m[2]), text: m[3]! });
    else if (line.startsWith(' ') && out.length > 0) out[out.length - 1]!.text += `\n${line.trim()}`;
  }
  return out;
}

/** The `// error: text` markers of a fixture, by line number. */
function markers(file: string): Map<number, string> {
  const found = new Map<number, string>();
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      const m = /\/\/ error: (.+)$/.exec(line);
      if (m) found.set(i + 1, m[1]!.trim());
    });
  return found;
}

describe('the typed layer at compile time (tsc over test/fixtures/typed-service)', () => {
  let diagnostics: Diagnostic[];
  let exitCode: number;
  beforeAll(async () => {
    const result = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(process.execPath, [tsc, '-p', path.join(fixtures, 'tsconfig.json'), '--pretty', 'false'], { cwd: root, timeout: 90_000 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, output: stdout + stderr });
      });
    });
    exitCode = result.code;
    diagnostics = parse(result.output);
    if (diagnostics.length === 0) throw new Error(`tsc gave no diagnostics (exit ${result.code}):\n${result.output}`);
  }, 90_000);

  const inFile = (name: string) => diagnostics.filter((d) => d.file === path.join(fixtures, name));

  it('compiles the intended uses: definitions, @OccamsService controllers, typed clients, injection, the stream layer', () => {
    expect(exitCode).not.toBe(0); // the bad fixtures fail the run...
    expect(inFile('good.ts')).toEqual([]); // ...and nothing in these
    expect(inFile('calculator.ts')).toEqual([]);
    const files = new Set(diagnostics.map((d) => path.basename(d.file)));
    expect([...files].sort()).toEqual(['bad-client.ts', 'bad-server.ts']);
  });

  it.each(['bad-server.ts', 'bad-client.ts'])('%s fails exactly on its marked lines, with the marked errors', (name) => {
    const expected = markers(path.join(fixtures, name));
    expect(expected.size).toBeGreaterThanOrEqual(5);
    const got = inFile(name);
    for (const [line, text] of expected) {
      const here = got.filter((d) => d.line === line);
      expect(here.length, `${name}:${line} should fail with ${text}`).toBeGreaterThan(0);
      expect(here.map((d) => d.text).join('\n'), `${name}:${line}`).toContain(text);
    }
    const unexpected = got.filter((d) => !expected.has(d.line));
    expect(unexpected, 'errors on unmarked lines').toEqual([]);
  });
});
