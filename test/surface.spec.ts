import fs from 'node:fs';
import path from 'node:path';

import * as defaults from '../lib/defaults.js';
import * as root from '../lib/index.js';
import * as stream from '../lib/stream/index.js';

const readme = fs.readFileSync(path.resolve(import.meta.dirname, '../README.md'), 'utf8');

describe('the public surface', () => {
  it("the root's runtime names are as many as README's Layout says, and no DEFAULT_* or wire namespace is among them", () => {
    const names = Object.keys(root);
    const said = readme.match(/listed in `lib\/index\.ts`: (\d+) runtime names/);
    expect(said).not.toBeNull();
    expect(names.length).toBe(Number(said![1]));
    expect(names.length).toBeLessThanOrEqual(66);
    expect(names.filter((n) => /^(DEFAULT_|BACKOFF_)/.test(n) || n === 'protocol')).toEqual([]);
    expect(Object.keys(stream).length).toBe(Number(readme.match(/client,\s+server, shared; (\d+)\)/)![1]));
  });

  it('every DEFAULT_* name is in nestjs-occams/defaults', () => {
    expect(Object.keys(defaults).every((n) => /^(DEFAULT_|BACKOFF_)/.test(n))).toBe(true);
    expect(Object.keys(defaults)).toEqual(expect.arrayContaining(['DEFAULT_OCCAMS_PORT', 'DEFAULT_TIMEOUT', 'DEFAULT_CONCURRENCY_LIMIT', 'DEFAULT_DNS_TIMEOUT']));
  });

  it('lib/nest and lib/terminus import the layers below only through their index.ts (or a deliberate internal.ts)', () => {
    const lib = path.resolve(import.meta.dirname, '../lib');
    const reaching: string[] = [];
    for (const layer of ['nest', 'terminus']) {
      for (const file of fs.readdirSync(path.join(lib, layer)).filter((f) => f.endsWith('.ts'))) {
        const text = fs.readFileSync(path.join(lib, layer, file), 'utf8');
        for (const [, target] of text.matchAll(/from '(\.\.\/[^']+)'/g)) {
          if (!/^\.\.\/(errors|[a-z]+\/(index|internal))\.js$/.test(target)) reaching.push(`${layer}/${file} -> ${target}`);
        }
      }
    }
    expect(reaching).toEqual([]);
  });
});
