import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Starts `server-main.js <transport>` in its own process; resolves with its port. */
export function startServerProcess(transport: string): Promise<{ child: ChildProcess; port: number; stop(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(here, 'server-main.js'), [transport], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const timer = setTimeout(() => reject(new Error('server did not start')), 20_000);
    child.on('message', (m: { type?: string; port?: number }) => {
      if (m?.type !== 'ready') return;
      clearTimeout(timer);
      resolve({
        child,
        port: m.port!,
        stop: () =>
          new Promise((r) => {
            if (child.exitCode !== null) return r();
            child.once('exit', () => r());
            child.send('stop');
            setTimeout(() => child.kill('SIGKILL'), 2000).unref();
          }),
      });
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}
