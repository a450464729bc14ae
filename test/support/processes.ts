import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '../..');

/** Waits for an IPC message of `type` from `child`, at most `ms`. */
export function message<T = any>(child: ChildProcess, type: string, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no '${type}' message within ${ms} ms`)), ms);
    const onMessage = (m: any) => m?.type === type && done(undefined, m);
    const onExit = () => done(new Error(`process exited before '${type}'`));
    const done = (err: Error | undefined, m?: T) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Starts dist/bench/lifecycle-server.js (built by the global setup); resolves with its port. */
export async function lifecycleServer(mode: 'nest' | 'stream', options: Record<string, unknown> = {}) {
  const child = fork(path.join(root, 'dist/bench/lifecycle-server.js'), [mode, JSON.stringify(options)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const { port } = await message<{ port: number }>(child, 'ready', 20_000);
  return { child, port };
}

/** Resolves with the exit code or signal, at most `ms` (then rejects). */
export function exited(child: ChildProcess, ms = 10_000): Promise<number | string> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode ?? child.signalCode!);
    const timer = setTimeout(() => reject(new Error(`process still running after ${ms} ms`)), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal!);
    });
  });
}
