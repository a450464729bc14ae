/**
 * How to run a script of dist/ under Node, Bun or Deno, shared by
 * `runtimes.ts` and test/runtimes.spec.ts. Bun and Deno are the pinned dev
 * dependencies `bun` and `deno` (their npm packages carry the binaries);
 * Deno gets only the permissions a process on 127.0.0.1 needs.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Bun and Deno set process.versions.bun / .deno (and process.execPath to themselves). */
const underNode = process.versions.bun === undefined && process.versions.deno === undefined;

export type RuntimeName = 'node' | 'bun' | 'deno';
export const RUNTIMES: readonly RuntimeName[] = ['node', 'bun', 'deno'];

/** Deno permissions beyond the base set (see `denoPermissions`). */
export interface DenoGrants {
  net?: string[];
  read?: string[];
  write?: string[];
}

/**
 * What our servers and clients need under Deno: the network on 127.0.0.1
 * and localhost, reading the project (its node_modules), and environment
 * variables (msgpackr and Nest read some; the samples read OCCAMS_*).
 * Not `--allow-ffi`: without it msgpackr's native string decoder stays off
 * and its JavaScript one is used (the same bytes).
 */
export function denoPermissions(root: string, extra: DenoGrants = {}): string[] {
  const flags = [`--allow-net=${['127.0.0.1', 'localhost', ...(extra.net ?? [])].join(',')}`, `--allow-read=${[root, ...(extra.read ?? [])].join(',')}`, '--allow-env'];
  if (extra.write?.length) flags.push(`--allow-write=${extra.write.join(',')}`);
  return flags;
}

export interface RuntimeCommand {
  file: string;
  args: string[];
  /** environment to add: no colours, no update checks, no telemetry */
  env: Record<string, string>;
}

/**
 * The runtime's executable: this Node, or the binary that the pinned `bun`
 * / `deno` package brings in its platform package (@oven/bun-linux-x64,
 * @deno/linux-x64-glibc, ...). Their postinstall scripts move (bun) or link
 * (deno) it into the main package; without them (`--ignore-scripts`) it stays
 * where it came, and `node_modules/.bin` holds only a stub (bun) or a Node
 * wrapper (deno) that does not pass on signals.
 */
export function runtimeBinary(runtime: RuntimeName, root: string): string {
  if (runtime === 'node') return underNode ? process.execPath : 'node';
  const modules = path.join(root, 'node_modules');
  const exe = process.platform === 'win32' ? '.exe' : '';
  const arch = runtime === 'bun' && process.arch === 'arm64' ? 'aarch64' : process.arch;
  const os = runtime === 'bun' && process.platform === 'win32' ? 'windows' : process.platform;
  const candidates =
    runtime === 'bun'
      ? [path.join(modules, `@oven/bun-${os}-${arch}/bin/bun${exe}`), path.join(modules, `@oven/bun-${os}-${arch}-musl/bin/bun${exe}`), path.join(modules, 'bun/bin/bun.exe')]
      : [path.join(modules, `@deno/${os}-${arch}${os === 'linux' ? '-glibc' : ''}/deno${exe}`), path.join(modules, `deno/deno${exe}`)];
  return candidates.find((file) => fs.existsSync(file)) ?? path.join(modules, '.bin', runtime);
}

/** The command that runs `script` (a path) with `scriptArgs` under `runtime`, from the project at `root`. */
export function runtimeCommand(runtime: RuntimeName, root: string, script: string, scriptArgs: string[] = [], grants: DenoGrants = {}): RuntimeCommand {
  const env = { NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DO_NOT_TRACK: '1' };
  const file = runtimeBinary(runtime, root);
  if (runtime === 'deno') return { file, args: ['run', '--no-prompt', ...denoPermissions(root, grants), script, ...scriptArgs], env };
  return { file, args: [script, ...scriptArgs], env };
}
