/**
 * Vitest global setup: compiles lib/, bench/ and sample/ to dist/ once per
 * run, for the tests that start real processes (soak, SIGTERM, RSS). Set
 * OCCAMS_SKIP_BUILD=1 to reuse an existing dist/ while iterating on one file.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): void {
  if (process.env.OCCAMS_SKIP_BUILD === '1') return;
  const root = path.resolve(import.meta.dirname, '../..');
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe' });
}
