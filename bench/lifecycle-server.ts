/**
 * A server process for the lifecycle scenarios (bench/lifecycle.ts and the
 * process tests): `node lifecycle-server.js <nest|stream> [options-json]`.
 * Patterns: `echo`, `slow` ([ms, id]: waits, answers id), `never` (never
 * answers; counts its aborted signals), `blobs` ([n, size]: an async
 * generator of n buffers), `ticks` (an Observable every 10 ms, forever),
 * `silent` (an Observable that never emits; counts teardowns), event
 * `audit` (takes 50 ms; counted). Every executed `slow` id is remembered.
 * IPC: 'stats' -> { rssMiB (peak), stats, executed, aborted, tornDown,
 * events }. SIGTERM: graceful close, then a 'closed' message ({ ms,
 * executed, events }) and exit 0.
 */
import 'reflect-metadata';

import fs from 'node:fs';

import { Controller, type INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { interval, Observable } from 'rxjs';

import { MethodDispatch, OccamsContext, OccamsServer, RpcServer, type RpcServerOptions, type ServerRequest, silentLogger, type TcpAddress } from '../lib/index.js';

const mode = process.argv[2] ?? 'stream';
const options = JSON.parse(process.argv[3] ?? '{}') as RpcServerOptions;
const executed: number[] = [];
let aborted = 0;
let subscribed = 0;
let tornDown = 0;
let events = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function* blobs(n: number, size: number): AsyncGenerator<Buffer> {
  const chunk = Buffer.alloc(size, 7);
  for (let i = 0; i < n; i++) yield chunk;
}

function never(signal: AbortSignal): Promise<never> {
  signal.addEventListener('abort', () => aborted++);
  return new Promise(() => {});
}

@Controller()
class LifecycleController {
  @MessagePattern('echo')
  echo(@Payload() v: unknown) {
    return v;
  }
  @MessagePattern('slow')
  async slow(@Payload() [ms, id]: [number, number]) {
    await sleep(ms);
    executed.push(id);
    return id;
  }
  @MessagePattern('never')
  never(@Ctx() ctx: OccamsContext) {
    return never(ctx.signal);
  }
  @MessagePattern('blobs')
  blobs(@Payload() [n, size]: [number, number]) {
    return blobs(n, size);
  }
  @MessagePattern('ticks')
  ticks(): Observable<number> {
    return interval(10);
  }
  @MessagePattern('silent')
  silent(): Observable<never> {
    return new Observable<never>(() => {
      subscribed++;
      return () => void tornDown++;
    });
  }
  @EventPattern('audit')
  async audit(@Payload() _entry: unknown) {
    await sleep(50);
    events++;
  }
}

@Module({ controllers: [LifecycleController] })
class LifecycleModule {}

let rpc: RpcServer;
let close: () => Promise<void>;
if (mode === 'nest') {
  const strategy = new OccamsServer({ ...options, host: '127.0.0.1', port: 0, logger: silentLogger as never });
  const app: INestMicroservice = await NestFactory.createMicroservice(LifecycleModule, { strategy, logger: false });
  await app.listen();
  rpc = strategy.unwrap<RpcServer>();
  close = () => app.close();
} else {
  rpc = new RpcServer(
    new MethodDispatch(
      {
        echo: (v: unknown) => v,
        slow: async ([ms, id]: [number, number]) => {
          await sleep(ms);
          executed.push(id);
          return id;
        },
        never: (_: unknown, req: ServerRequest) => never(req.signal),
        blobs: ([n, size]: [number, number]) => blobs(n, size),
      },
      silentLogger,
    ),
    { logger: silentLogger, ...options },
  );
  await rpc.listen('127.0.0.1:0');
  close = () => rpc.close();
}

function peakRssMiB(): number {
  try {
    const kib = Number(fs.readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/)?.[1] ?? 0);
    if (kib > 0) return kib / 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS / 1024;
}

process.on('message', (m: string) => {
  if (m === 'stats') process.send!({ type: 'stats', rssMiB: peakRssMiB(), stats: rpc.stats, executed: executed.length, aborted, subscribed, tornDown, events });
});
process.once('SIGTERM', () => {
  const t0 = performance.now();
  void close().then(() => {
    process.send!({ type: 'closed', ms: performance.now() - t0, executed, events, stats: rpc.stats }, () => process.exit(0));
  });
});
process.send!({ type: 'ready', port: (rpc.address as TcpAddress).port });
// The test that started us died: do not outlive it.
process.once('disconnect', () => process.exit(1));
