/**
 * Every TypeScript block of README.md and docs/*.md (fences ```ts and
 * ```typescript), type-checked as a new user's Nest app would compile it:
 * the compiler options of the Nest 12 application template with `strict`,
 * once as a CommonJS app (the `nest new` shape: no "type", so top-level
 * `await` is an error there) and once as an ESM app, against the package's
 * own exports (dist/, built by the global setup) and this repo's Nest.
 *
 * A block is one file. Its first line may name it (`// calculator-api.ts`),
 * so that later blocks of the same document import it
 * (`./calculator-api.js`); otherwise it is named after its line. A canary
 * file with one known error is compiled with them: the check fails unless
 * that error, and no other, is reported, so types that silently resolved to
 * `any` would not pass.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { documents, extractSnippets, NEST_TEMPLATE_OPTIONS, type Snippet } from './support/snippets.js';

const root = path.resolve(import.meta.dirname, '..');
const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
const work = path.join(root, '.tmp/snippets');

/** The Nest 12 application template's compiler options, strict; type checks only. */
const TEMPLATE_OPTIONS = { ...NEST_TEMPLATE_OPTIONS, noEmit: true };

/** One known error: a number result is no string (found only if the package's types resolved). */
const CANARY = `import { OccamsClient } from 'nestjs-occams';
export const wrong: Promise<string> = new OccamsClient({ host: '127.0.0.1', port: 7100 }).request<number>('sum', [1, 2]);
`;

function slug(doc: string): string {
  return doc.replace(/\.md$/, '').replace(/[^\w]+/g, '-');
}

/** Writes a CommonJS or ESM app holding every snippet; returns where each file came from. */
function writeApp(kind: 'cjs' | 'esm', snippets: Snippet[]): Map<string, Snippet> {
  const dir = path.join(work, kind);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `snippets-${kind}`, private: true, ...(kind === 'esm' ? { type: 'module' } : {}) }));
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: TEMPLATE_OPTIONS, include: ['src'] }));
  // the package as its users import it: by name, through its exports (dist/); Nest and the rest from this repo
  fs.symlinkSync(root, path.join(dir, 'node_modules/nestjs-occams'), 'dir');
  const files = new Map<string, Snippet>();
  for (const s of snippets) {
    const file = `src/${slug(s.doc)}/${s.name}`;
    if (files.has(file)) throw new Error(`${s.doc}:${s.line}: a second block named ${s.name} (the first at line ${files.get(file)!.line})`);
    files.set(file, s);
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), `${s.code}\n`);
  }
  fs.writeFileSync(path.join(dir, 'src/canary.ts'), CANARY);
  return files;
}

/** Runs tsc on one app; its diagnostics, each pointed back at its markdown line. */
function check(kind: 'cjs' | 'esm', files: Map<string, Snippet>): Promise<string[]> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: path.join(work, kind), timeout: 120_000 }, (_err, stdout, stderr) => {
      const diagnostics = `${stdout}${stderr}`
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.startsWith(' '))
        .map((l) => {
          const m = /^(src\/[^(]+)\((\d+),(\d+)\): (.*)$/.exec(l);
          const s = m ? files.get(m[1]!) : undefined;
          return s ? `${s.doc}:${s.line + Number(m![2]) - 1}:${m![3]} (${kind}) ${m![4]}` : `(${kind}) ${l}`;
        });
      resolve(diagnostics);
    });
  });
}

describe('the TypeScript blocks of README.md and docs/*.md', () => {
  it('are found: the README has its quick start and many more', () => {
    const all = documents().flatMap((doc) => extractSnippets(doc, fs.readFileSync(path.join(root, doc), 'utf8')));
    expect(all.filter((s) => s.doc === 'README.md').length).toBeGreaterThanOrEqual(10);
    expect(all.some((s) => s.doc === 'README.md' && s.name === 'main.ts' && s.code.includes('OccamsServer') && s.code.includes('OccamsClient'))).toBe(true);
  });

  it('extraction: named and unnamed blocks, other languages skipped, with their lines', () => {
    const md = ['# t', '```sh', '```ts', '```', '```ts', '// api.ts', 'export const a = 1;', '```', 'text', '```typescript', 'const b = 2;', '```'].join('\n');
    expect(extractSnippets('x.md', md)).toEqual([
      { doc: 'x.md', line: 6, name: 'api.ts', code: '// api.ts\nexport const a = 1;' },
      { doc: 'x.md', line: 11, name: 'line-11.ts', code: 'const b = 2;' },
    ]);
  });

  it('compile under strict Nest-template options, as a CommonJS app and as an ESM app (only the canary errs)', async () => {
    const snippets = documents().flatMap((doc) => extractSnippets(doc, fs.readFileSync(path.join(root, doc), 'utf8')));
    const [cjs, esm] = await Promise.all((['cjs', 'esm'] as const).map((kind) => check(kind, writeApp(kind, snippets))));
    for (const diagnostics of [cjs!, esm!]) {
      const canary = diagnostics.filter((d) => d.includes('canary.ts'));
      expect(canary.length, diagnostics.join('\n')).toBe(1);
      expect(canary[0]).toMatch(/TS2322.*Promise<number>.*Promise<string>/);
    }
    expect([...cjs!, ...esm!].filter((d) => !d.includes('canary.ts'))).toEqual([]);
  }, 180_000);
});
