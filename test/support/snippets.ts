/**
 * The TypeScript blocks of the project's markdown (README.md, docs/*.md),
 * for test/docs-snippets.spec.ts (all of them, type-checked) and
 * test/package.spec.ts (the README's quick start, run), and the compiler
 * options both compile them with.
 */
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

/**
 * The compiler options of the Nest 12 application template (`nest new`),
 * strict, module nodenext: the same for its CommonJS and ESM shapes (the
 * app's package.json decides).
 */
export const NEST_TEMPLATE_OPTIONS = {
  module: 'nodenext',
  moduleResolution: 'nodenext',
  resolvePackageJsonExports: true,
  esModuleInterop: true,
  isolatedModules: true,
  emitDecoratorMetadata: true,
  experimentalDecorators: true,
  target: 'ES2023',
  skipLibCheck: true,
  strict: true,
  strictPropertyInitialization: false,
  types: ['node'],
};

export interface Snippet {
  /** the markdown file, relative to the repo */
  doc: string;
  /** 1-based line of the block's first code line */
  line: number;
  /** the file name it is compiled as */
  name: string;
  code: string;
}

/** The TypeScript blocks of one markdown text. */
export function extractSnippets(doc: string, text: string): Snippet[] {
  const out: Snippet[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```\s*(ts|typescript)\s*$/.exec(lines[i]!);
    if (open === null) {
      if (/^\s*```/.test(lines[i]!)) {
        // another language's block: skip to its end, so its inner lines are never read as fences
        for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++);
      }
      continue;
    }
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end]!)) end++;
    if (end === lines.length) throw new Error(`${doc}:${i + 1}: a \`\`\`ts block that never ends`);
    const code = lines.slice(start, end).join('\n');
    const named = /^\/\/\s*([\w.-]+\.ts)\b/.exec(lines[start] ?? '');
    out.push({ doc, line: start + 1, name: named ? named[1]! : `line-${start + 1}.ts`, code });
    i = end;
  }
  return out;
}

/** README.md and every docs/*.md. */
export function documents(): string[] {
  const docs = fs
    .readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort();
  return ['README.md', ...docs.map((f) => `docs/${f}`)];
}

/** The README's quick start: its block named main.ts. */
export function quickStart(): Snippet {
  const found = extractSnippets('README.md', fs.readFileSync(path.join(root, 'README.md'), 'utf8')).filter((s) => s.name === 'main.ts');
  if (found.length !== 1) throw new Error(`README.md has ${found.length} blocks named main.ts, not one`);
  return found[0]!;
}
