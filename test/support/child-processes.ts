/**
 * Child processes for tests: every wait bounded, every child killed by
 * `stopAll()` (call it in afterEach/afterAll so a failed test leaves none).
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface ProcessCommand {
  file: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Started {
  child: ChildProcess;
  /** the match of `ready` in the line that announced readiness */
  match: RegExpExecArray;
  /** everything printed so far (stdout and stderr, interleaved) */
  output(): string;
  /** resolves when the process exits */
  exited: Promise<Exit>;
}

const running = new Set<ChildProcess>();

function launch(cmd: ProcessCommand): { child: ChildProcess; exited: Promise<Exit>; output: () => string } {
  const child = spawn(cmd.file, cmd.args, { cwd: cmd.cwd, env: { ...process.env, ...cmd.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  let all = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => ((stdout += s), (all += s)));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => ((stderr += s), (all += s)));
  const exited = new Promise<Exit>((resolve) => {
    child.once('error', (err) => ((stderr += String(err)), (all += String(err))));
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, exited, output: () => all };
}

/** Runs a command to its end; killed (SIGKILL) after `timeoutMs`. */
export async function runProcess(cmd: ProcessCommand, timeoutMs = 20_000): Promise<Exit> {
  const { child, exited } = launch(cmd);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts a long-running command and resolves once a line of its stdout
 * matches `ready`; rejects (and kills it) if it exits first or stays silent
 * for `timeoutMs`, with what it printed.
 */
export function startProcess(cmd: ProcessCommand, ready: RegExp, timeoutMs = 15_000): Promise<Started> {
  const { child, exited, output } = launch(cmd);
  return new Promise<Started>((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${cmd.file} ${cmd.args.join(' ')}: ${why}\n${output()}`));
    };
    const timer = setTimeout(() => fail(`not ready within ${timeoutMs} ms`), timeoutMs);
    let pending = '';
    const onData = (s: string) => {
      pending += s;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const match = ready.exec(line);
        if (match === null || settled) continue;
        settled = true;
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve({ child, match, output, exited });
        return;
      }
    };
    child.stdout!.on('data', onData);
    void exited.then((e) => fail(`exited (code ${e.code}, signal ${e.signal}) before it was ready`));
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
export async function stopProcess(started: Pick<Started, 'child' | 'exited'>, graceMs = 5000): Promise<Exit> {
  const { child, exited } = started;
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Kills every child still running (SIGKILL) and waits for them to go. */
export async function stopAll(): Promise<void> {
  const left = [...running];
  for (const child of left) child.kill('SIGKILL');
  await Promise.all(left.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('close', r)) : undefined)));
}
