/**
 * The Node versions we support, as the package and its install say them:
 * every package of the lock file (dev tools included) accepts the Node 22
 * and 24 LTS releases `.ci/node-versions` runs the suite under, so `npm ci`
 * prints no EBADENGINE warning there; our own `engines` accepts them and the
 * oldest Node we still test (20.19); the README's table names them.
 */
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

type Version = [number, number, number];

function parseVersion(v: string): Version {
  const parts = v.split('.').map((p) => Number(p));
  return [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0];
}

function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * Whether `version` satisfies a node-semver range of the forms the lock file
 * holds (`*`, `>=x`, `>= x`, `>x`, `<x`, `<=x`, `^x.y.z`, `~x.y`, `x`, `x.*`,
 * joined by spaces and `||`); any other form throws, so the check never
 * passes by not understanding.
 */
export function satisfies(version: string, range: string): boolean {
  const v = parseVersion(version);
  return range.split('||').some((set) => {
    const comparators = set
      .trim()
      .replace(/([<>]=?)\s+/g, '$1')
      .split(/\s+/);
    return comparators.every((c) => {
      if (c === '*' || c === 'x' || c === '') return true; // any version
      const m = /^(>=|<=|>|<|\^|~)?v?(\d+)(?:\.(\d+|\*|x))?(?:\.(\d+|\*|x))?$/.exec(c);
      if (m === null) throw new Error(`range form not understood: ${JSON.stringify(range)}`);
      const [, op = '', major, minor, patch] = m;
      const wild = (p: string | undefined) => p === undefined || p === '*' || p === 'x';
      const low: Version = [Number(major), wild(minor) ? 0 : Number(minor), wild(patch) ? 0 : Number(patch)];
      switch (op) {
        case '>=':
          return compare(v, low) >= 0;
        case '>':
          return compare(v, low) > 0;
        case '<':
          return compare(v, low) < 0;
        case '<=':
          return compare(v, low) <= 0;
        case '^':
          if (low[0] === 0) throw new Error(`range form not understood: ${JSON.stringify(range)}`);
          return compare(v, low) >= 0 && v[0] === low[0];
        case '~':
          return compare(v, low) >= 0 && v[0] === low[0] && (wild(minor) || v[1] === low[1]);
        default: // a bare version: x, x.*, x.y
          return v[0] === low[0] && (wild(minor) || v[1] === low[1]) && (wild(patch) || v[2] === low[2]);
      }
    });
  });
}

/** The versions .ci/node-versions installs and runs. */
function ciVersions(): string[] {
  const script = fs.readFileSync(path.join(root, '.ci/node-versions'), 'utf8');
  const m = /^NODE_VERSIONS=\(([^)]*)\)$/m.exec(script);
  if (m === null) throw new Error('.ci/node-versions has no NODE_VERSIONS=(...) line');
  return m[1]!.trim().split(/\s+/);
}

/** Each installed package with an engines.node range: [path in the lock, range]. */
function lockEngines(): [string, string][] {
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: unknown }> };
  const out: [string, string][] = [];
  for (const [name, entry] of Object.entries(lock.packages)) {
    const engines = entry.engines as { node?: unknown } | undefined;
    if (name !== '' && engines !== null && typeof engines === 'object' && !Array.isArray(engines) && typeof engines.node === 'string') out.push([name, engines.node]);
  }
  return out;
}

describe('Node versions', () => {
  it('reads ranges as npm does', () => {
    expect(satisfies('22.23.5', '^22.22.3 || ^24.15.0 || >=26.0.0')).toBe(true);
    expect(satisfies('20.20.2', '^22.22.3 || ^24.15.0 || >=26.0.0')).toBe(false);
    expect(satisfies('24.22.3', '>=23.5.0 || ^22.13.0 || ^20.17.0')).toBe(true);
    expect(satisfies('21.0.0', '18 || 20 || >=22')).toBe(false);
    expect(satisfies('20.1.0', '6.* || 8.* || >= 10.*')).toBe(true);
    expect(satisfies('20.18.9', '>=20.19')).toBe(false);
    expect(() => satisfies('22.0.0', '>=1.0.0-beta')).toThrow(/not understood/);
  });

  it('CI runs the current 22 and 24 LTS lines', () => {
    expect(ciVersions().map((v) => parseVersion(v)[0])).toEqual([22, 24]);
  });

  it('every package of the lock file accepts each CI version: npm ci is quiet there (no EBADENGINE)', () => {
    const engines = lockEngines();
    expect(engines.length).toBeGreaterThan(100);
    for (const version of ciVersions())
      expect(
        engines.filter(([, range]) => !satisfies(version, range)).map(([name, range]) => `${name} ${range}`),
        version,
      ).toEqual([]);
  });

  it("our engines accept the CI versions and 20.19, not older; the README's table says the same", () => {
    const range = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).engines.node as string;
    for (const version of [...ciVersions(), '20.19.0']) expect(satisfies(version, range), version).toBe(true);
    expect(satisfies('20.18.0', range)).toBe(false);
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    expect(readme).toMatch(/\| 24 LTS \| supported \|/);
    expect(readme).toMatch(/\| 22 LTS \| supported \|/);
    expect(readme).toMatch(/\| 20\.19\+ \| works/);
  });
});
