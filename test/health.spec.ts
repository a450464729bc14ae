/**
 * OccamsHealthIndicator under a real Terminus HealthCheckService: a client's
 * servers and a bare address, checked by a real PING while the server runs,
 * after it stopped, and once it is started again on the same port.
 */
import 'reflect-metadata';

import net from 'node:net';

import { type INestApplicationContext, Module, ServiceUnavailableException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';

import { OccamsClient, OccamsModule } from '../lib/index.js';
import { OccamsHealthIndicator } from '../lib/terminus/index.js';
import { CalculatorModule } from '../sample/calculator/calculator.module.js';
import { deadPort, type Microservice, startMicroservice } from './support/nest-boot.js';
import { waitFor } from './support/servers.js';

/** The sample calculator on `port` (default: any free one). */
function calculator(port = 0): Promise<Microservice> {
  return startMicroservice(CalculatorModule, { port, closeWait: 2000, drainGrace: 20 });
}

/** `health.check`'s result, or the body of the 503 it throws. */
async function check(health: HealthCheckService, fn: () => Promise<any>): Promise<any> {
  try {
    return await health.check([fn]);
  } catch (err) {
    if (err instanceof ServiceUnavailableException) return err.getResponse();
    throw err;
  }
}

describe('OccamsHealthIndicator', () => {
  let calc: Microservice;
  let ctx: INestApplicationContext;
  let health: HealthCheckService;
  let indicator: OccamsHealthIndicator;
  let client: OccamsClient;

  beforeAll(async () => {
    calc = await calculator();
    @Module({
      imports: [TerminusModule.forRoot({ logger: false }), OccamsModule.register([{ name: 'CALC', port: calc.port, backoff: { initial: 50, max: 200 } }])],
      providers: [OccamsHealthIndicator],
    })
    class HealthModule {}
    ctx = await NestFactory.createApplicationContext(HealthModule, { logger: false });
    health = ctx.get(HealthCheckService);
    indicator = ctx.get(OccamsHealthIndicator);
    client = ctx.get<OccamsClient>('CALC');
  });
  afterAll(async () => {
    await ctx?.close();
    await calc?.app.close();
  });

  it('up while the server answers, down once it stopped, up again once it is back on its port', async () => {
    const ping = () => indicator.pingCheck('calculator', { client, timeout: 2000 });
    const up = await check(health, ping);
    expect(up.status).toBe('ok');
    const details = up.details.calculator;
    expect(details.status).toBe('up');
    expect(details.servers).toEqual([
      { address: `127.0.0.1:${calc.port}`, pingMs: expect.any(Number), pool: { state: 'ready', connections: 1, inFlight: 0, queued: 0, healthy: true } },
    ]);
    expect(details.responseTime).toBeGreaterThanOrEqual(0);

    await calc.app.close();
    const down = await check(health, ping);
    expect(down.status).toBe('error');
    expect(down.error.calculator.status).toBe('down');
    expect(down.error.calculator.message).toMatch(new RegExp(`^127\\.0\\.0\\.1:${calc.port}: rpc_unreachable: `));
    expect(down.error.calculator.servers[0].pool.healthy).toBe(false);

    calc = await calculator(calc.port);
    let again = await check(health, ping);
    await waitFor(async () => (again = await check(health, ping)).status === 'ok', 5000);
    expect(again.status).toBe('ok');
    expect(again.details.calculator.servers[0].pool.state).toBe('ready');
  });

  it('an address: a connection of its own per check, closed after it', async () => {
    const byAddress = (address: string) => () => indicator.pingCheck('direct', { address, timeout: 500 });
    const up = await check(health, byAddress(`127.0.0.1:${calc.port}`));
    expect(up.details.direct).toMatchObject({ status: 'up', servers: [{ address: `127.0.0.1:${calc.port}`, pingMs: expect.any(Number) }] });
    const port = await deadPort();
    const down = await check(health, byAddress(`127.0.0.1:${port}`));
    expect(down.error.direct).toMatchObject({ status: 'down', servers: [{ address: `127.0.0.1:${port}`, error: expect.stringMatching(/^rpc_unreachable: .*refused/) }] });
  });

  it('a client with several servers is degraded while one of them is down', async () => {
    const port = await deadPort();
    @Module({ imports: [OccamsModule.register([{ name: 'TWO', addresses: [`127.0.0.1:${calc.port}`, `127.0.0.1:${port}`] }])] })
    class TwoModule {}
    const two = await NestFactory.createApplicationContext(TwoModule, { logger: false });
    try {
      const result = await check(health, () => indicator.pingCheck('two', { client: two.get<OccamsClient>('TWO'), timeout: 500 }));
      expect(result.status).toBe('degraded');
      expect(result.details.two.status).toBe('degraded');
      expect(result.details.two.servers.map((s: { pingMs?: number; error?: string }) => (s.pingMs !== undefined ? 'up' : s.error!.split(':')[0]))).toEqual([
        'up',
        'rpc_unreachable',
      ]);
    } finally {
      await two.close();
    }
  });

  it('a frozen server (connected, then silent) is down with "ping timed out", not "action 0"', async () => {
    // a proxy in front of the calculator that stops passing its answers on
    let frozen = false;
    const sockets: net.Socket[] = [];
    const proxy = net.createServer((down) => {
      const up = net.connect(calc.port, '127.0.0.1');
      sockets.push(down, up);
      down.on('error', () => {}).pipe(up.on('error', () => {}));
      up.on('data', (chunk: Buffer) => void (frozen || down.write(chunk)));
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as net.AddressInfo).port;
    const viaProxy = new OccamsClient({ port, pingInterval: 0 });
    try {
      await viaProxy.connect();
      frozen = true;
      const result = await check(health, () => indicator.pingCheck('frozen', { client: viaProxy, timeout: 300 }));
      expect(result.error.frozen.status).toBe('down');
      expect(result.error.frozen.message).toMatch(/rpc_timeout: ping timed out after \d+ ms/);
      expect(result.error.frozen.message).not.toMatch(/action 0/);
    } finally {
      await viaProxy.close().catch(() => {});
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('a timeout bounds the check: a server that accepts but never answers is down within it', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => void sockets.push(s)); // accepts, says nothing
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const started = Date.now();
      const result = await check(health, () => indicator.pingCheck('silent', { address: `127.0.0.1:${port}`, timeout: 300 }));
      expect(Date.now() - started).toBeLessThan(1500);
      expect(result.error.silent.status).toBe('down');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
