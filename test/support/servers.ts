import net from 'node:net';

import { type RpcLogger } from '../../lib/server/logger.js';
import { MethodDispatch, type MethodHandler } from '../../lib/server/method-dispatch.js';
import { RpcServer } from '../../lib/server/rpc-server.js';
import type { RpcServerOptions } from '../../lib/server/server-options.js';
import type { TcpAddress } from '../../lib/transport/address.js';

/** A logger that remembers what it was told (and prints nothing). */
export class MemoryLogger implements RpcLogger {
  readonly lines: string[] = [];
  log(m: string) {
    this.lines.push(`log: ${m}`);
  }
  warn(m: string) {
    this.lines.push(`warn: ${m}`);
  }
  error(m: string) {
    this.lines.push(`error: ${m}`);
  }
}

export async function startServer(methods: Record<string, MethodHandler>, options: RpcServerOptions = {}) {
  const logger = options.logger instanceof MemoryLogger ? options.logger : new MemoryLogger();
  const server = new RpcServer(new MethodDispatch(methods, logger), { logger, ...options });
  const address = (await server.listen()) as TcpAddress;
  return { server, address, logger, url: `${address.host}:${address.port}` };
}

/** The call's outcome as a word: 'ok', or the error's code. */
export const settle = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: { code: string }) => e.code,
  );

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` (which may ask something asynchronous: a health check, a child process) every 10 ms for at most `ms`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`condition not met within ${ms} ms`);
    await sleep(10);
  }
}

/** A raw TCP socket for speaking bytes directly. */
export function rawConnect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host }, () => resolve(s));
    s.once('error', reject);
  });
}
