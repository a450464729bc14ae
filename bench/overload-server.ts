/**
 * The server of bench/overload.ts, in its own process: one Nest
 * OccamsServer whose handler waits on a limited resource, as a handler
 * waiting on a database pool does (SLOTS slots, each held HOLD_MS), and
 * does not watch its signal. It counts the handler runs that started after
 * their caller's deadline (the payload carries it, epoch ms: both
 * processes read the same clock).
 * Usage: node dist/bench/overload-server.js <concurrencyLimit: off | gradient | aimd | N> [slots 8] [hold ms 5]
 * IPC: sends { type: 'ready', port }; answers 'stats' with { type: 'stats', runs, late, server }.
 */
import 'reflect-metadata';

import dc from 'node:diagnostics_channel';

import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';

import { OccamsServer, type TcpAddress } from '../lib/index.js';
import type { RpcServer } from '../lib/server/rpc-server.js';

const SLOTS = Number(process.argv[3] ?? 8);
const HOLD_MS = Number(process.argv[4] ?? 5);

/** A pool of SLOTS slots, FIFO: what a handler waiting on a database pool waits on. */
class Resource {
  private free = SLOTS;
  private readonly waiters: (() => void)[] = [];
  private head = 0;

  async use(ms: number): Promise<void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiters.push(resolve));
    await new Promise((r) => setTimeout(r, ms));
    if (this.head < this.waiters.length) {
      const next = this.waiters[this.head]!;
      this.waiters[this.head++] = undefined as never;
      if (this.head > 4096 && this.head * 2 > this.waiters.length) {
        this.waiters.splice(0, this.head);
        this.head = 0;
      }
      next();
    } else {
      this.free++;
    }
  }
}

const counts = { runs: 0, late: 0 };
const resource = new Resource();

@Controller()
class WorkController {
  @MessagePattern('work')
  async work(@Payload() p: { deadline: number }): Promise<number> {
    counts.runs++;
    if (Date.now() > p.deadline) counts.late++;
    await resource.use(HOLD_MS);
    return 1;
  }
}

@Module({ controllers: [WorkController] })
class WorkModule {}

if (process.env.OVERLOAD_TRACE) {
  // every move of the limit, and refusals per 100 ms, on stderr
  const t0 = Date.now();
  let refused: Record<string, number> = {};
  dc.subscribe('occams:server:limit', (m: any) =>
    process.stderr.write(
      `${Date.now() - t0} limit ${m.previous} -> ${m.limit} latency ${m.latency} min ${m.minLatency} running ${m.running} queued ${m.queued} probing ${m.probing}\n`,
    ),
  );
  dc.subscribe('occams:server:request:refused', (m: any) => void (refused[m.reason] = (refused[m.reason] ?? 0) + 1));
  setInterval(() => {
    if (Object.keys(refused).length > 0) process.stderr.write(`${Date.now() - t0} refused ${JSON.stringify(refused)}\n`);
    refused = {};
  }, 100).unref();
}

const mode = process.argv[2] ?? 'gradient';
const concurrencyLimit = mode === 'off' ? false : mode === 'gradient' || mode === 'aimd' ? mode : Number(mode);
const strategy = new OccamsServer({ port: 0, concurrencyLimit });
const app = await NestFactory.createMicroservice(WorkModule, { strategy, logger: ['error'] });
await app.listen();
const rpc = strategy.unwrap<RpcServer>();
process.on('message', (m: unknown) => {
  if (m === 'stats') process.send!({ type: 'stats', runs: counts.runs, late: counts.late, server: rpc.stats });
  if (m === 'stop') void app.close().then(() => process.exit(0));
});
process.send!({ type: 'ready', port: (strategy.address as TcpAddress).port });
