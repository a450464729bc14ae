import type { ChildProcess } from 'node:child_process';

/**
 * The next IPC message of `type` from `child`; rejects after `ms`, or when
 * the child exits first. Every listener it adds is removed whatever the
 * outcome (a runner waits on the same long-lived server thousands of times).
 */
export function waitMessage<T = any>(child: ChildProcess, type: string, ms = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no '${type}' within ${ms} ms`));
    }, ms);
    const onMessage = (m: any): void => {
      if (m?.type !== type) return;
      done();
      resolve(m as T);
    };
    const onExit = (): void => {
      done();
      reject(new Error(`process exited before '${type}'`));
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
