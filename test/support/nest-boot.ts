/**
 * Real Nest applications on 127.0.0.1, for the specs that put a gateway,
 * a health check or a tracer in front of an occams microservice.
 */
import net from 'node:net';

import type { INestApplication, INestMicroservice, LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { OccamsServer, type OccamsServerOptions, type TcpAddress } from '../../lib/index.js';

export interface Microservice {
  app: INestMicroservice;
  strategy: OccamsServer;
  port: number;
}

/** `module` as an occams microservice on `options.port` (default: any free port); Nest's logger off unless given. */
export async function startMicroservice(module: unknown, options: OccamsServerOptions = {}, logger: LoggerService | false = false): Promise<Microservice> {
  const strategy = new OccamsServer({ port: 0, ...options });
  const app = await NestFactory.createMicroservice(module as never, { strategy, logger });
  await app.listen();
  return { app, strategy, port: (strategy.address as TcpAddress).port };
}

/** Starts an HTTP app on a free port; returns its base URL. */
export async function listenHttp(app: INestApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as net.AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/** GET with a 10 s bound; the body parsed when it is JSON. */
export async function get(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text };
}

/** A port nothing listens on (one that was just free). */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}
