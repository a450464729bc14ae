import fs from 'node:fs';
import path from 'node:path';

import * as defaults from '../lib/defaults.js';
import * as root from '../lib/index.js';
import { OCCAMS_CLIENT_OPTIONS } from '../lib/nest/occams-client.js';
import { OCCAMS_SERVER_OPTIONS } from '../lib/nest/occams-server.js';
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

  it("README's option tables of OccamsClient and OccamsServer name every option each takes (old names aside)", () => {
    /** The backticked names in the README table whose header cell is `title`. */
    const table = (title: string): Set<string> => {
      const start = readme.indexOf(`| ${title} | options (defaults) |`);
      expect(start).toBeGreaterThan(-1);
      const rows = readme.slice(start).split('\n\n')[0]!;
      return new Set([...rows.matchAll(/`(\w+)`/g)].map((m) => m[1]!));
    };
    const missing = (known: Readonly<Record<string, true>>, old: string[], listed: Set<string>) => Object.keys(known).filter((k) => !old.includes(k) && !listed.has(k));
    const client = table('OccamsClient');
    expect(missing(OCCAMS_CLIENT_OPTIONS, ['idleTimeout'], client)).toEqual([]);
    expect(client.has('idleTimeout')).toBe(false); // the pool's old name is not advertised
    expect(missing(OCCAMS_SERVER_OPTIONS, ['handshakeTimeout'], table('OccamsServer'))).toEqual([]);
  });

  it("README's Layout names every file of the layers below the adapters", () => {
    const layout = readme.slice(readme.indexOf('## Layout'), readme.indexOf('## Performance'));
    const lib = path.resolve(import.meta.dirname, '../lib');
    const unnamed: string[] = [];
    for (const layer of ['codec', 'protocol', 'transport', 'core', 'client', 'server']) {
      for (const file of fs.readdirSync(path.join(lib, layer))) {
        const name = file.replace(/\.ts$/, '');
        if (name === 'index' || name === 'internal') continue;
        if (!new RegExp(`(^|[^\\w-])${name}([^\\w-]|$)`).test(layout)) unnamed.push(`${layer}/${file}`);
      }
    }
    expect(unnamed).toEqual([]);
  });
});
