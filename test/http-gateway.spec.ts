/**
 * OccamsHttpExceptionFilter behind real HTTP gateways (Nest + Express)
 * calling real occams microservices: each failure code gets its status
 * instead of Nest's 500.
 */
import 'reflect-metadata';

import { Controller, Get, type INestApplication, Module, Param, UseFilters } from '@nestjs/common';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';

import {
  ClosedError,
  InjectOccamsClient,
  IoError,
  type OccamsClient,
  OccamsHttpExceptionFilter,
  occamsHttpStatus,
  OccamsModule,
  OverloadedError,
  QueueFullError,
} from '../lib/index.js';
import { InjectOccamsService, type OccamsServiceClient } from '../lib/index.js';
import { CalculatorModule } from '../sample/calculator/calculator.module.js';
import { Calculator, DivError } from '../sample/calculator-api.js';
import { GatewayModule } from '../sample/gateway/gateway.module.js';
import { TestAppModule } from './support/nest-apps.js';
import { deadPort, get, listenHttp, type Microservice, startMicroservice } from './support/nest-boot.js';

describe('the sample gateway in front of the sample calculator', () => {
  let calc: Microservice;
  let gateway: INestApplication;
  let base: string;
  beforeAll(async () => {
    calc = await startMicroservice(CalculatorModule);
    process.env.OCCAMS_PORT = String(calc.port); // read by the gateway's registerAsync factory, as a string
    try {
      gateway = await NestFactory.create(GatewayModule, { logger: false });
      base = await listenHttp(gateway);
    } finally {
      delete process.env.OCCAMS_PORT;
    }
  });
  afterAll(async () => {
    await gateway?.close();
    await calc?.app.close();
  });

  it('answers results, and user errors as 422 with the code, message and errno', async () => {
    expect(await get(`${base}/add/2/3`)).toEqual({ status: 200, body: '5' });
    expect(await get(`${base}/count/3`)).toEqual({ status: 200, body: [1, 2, 3] }); // a typed stream, collected
    // the typed client raises DivError and InvalidArgument; the gateway's filter lists them, so they answer as the remote errors they came from
    expect(await get(`${base}/div/1/0`)).toEqual({
      status: 422,
      body: { statusCode: 422, code: 'user_error', message: 'division by zero' },
    });
    expect(await get(`${base}/double/-1`)).toEqual({
      status: 422,
      body: { statusCode: 422, code: 'user_errno', message: 'v must be >= 0', errno: 22 },
    });
  });

  it("leaves other exceptions to Nest (a pipe's 400 stays 400)", async () => {
    const res = await get(`${base}/add/two/3`);
    expect(res.status).toBe(400);
  });

  it('GET /health: 200 with the calculator up, its round trip and its pool', async () => {
    const res = await get(`${base}/health`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'ok',
      info: { calculator: { status: 'up', servers: [{ address: `127.0.0.1:${calc.port}`, pingMs: expect.any(Number), pool: { state: 'ready' } }] } },
    });
  });
});

describe('OccamsHttpExceptionFilter as a global filter: every code family', () => {
  @Controller()
  class ProxyController {
    constructor(
      @InjectOccamsClient('UP') private readonly up: OccamsClient,
      @InjectOccamsClient('DOWN') private readonly down: OccamsClient,
    ) {}
    @Get('call/:pattern')
    call(@Param('pattern') pattern: string) {
      return this.up.send(pattern, pattern === 'slow' ? 600 : {}, { timeout: 150 });
    }
    @Get('down')
    callDown() {
      return this.down.send('echo', 1);
    }
    /** A filter instance built with `new` and no adapter: it answers through Express's response. */
    @Get('bare/:pattern')
    @UseFilters(new OccamsHttpExceptionFilter())
    bare(@Param('pattern') pattern: string) {
      return this.up.send(pattern, {});
    }
  }

  let ms: Microservice;
  let gateway: INestApplication;
  let base: string;
  beforeAll(async () => {
    ms = await startMicroservice(TestAppModule);
    @Module({
      imports: [
        OccamsModule.register([
          { name: 'UP', port: ms.port, timerResolution: 50 },
          { name: 'DOWN', port: await deadPort(), connectTimeout: 1000 },
        ]),
      ],
      controllers: [ProxyController],
    })
    class ProxyModule {}
    gateway = await NestFactory.create(ProxyModule, { logger: false });
    gateway.useGlobalFilters(new OccamsHttpExceptionFilter(gateway.get(HttpAdapterHost)));
    base = await listenHttp(gateway);
  });
  afterAll(async () => {
    await gateway?.close();
    await ms?.app.close();
  });

  it('user errors 422, method not found 501, unreachable 503, timeout 504, the rest 502', async () => {
    expect(await get(`${base}/call/echo`)).toEqual({ status: 200, body: {} });
    const byMessage = await get(`${base}/call/fail.message`);
    expect([byMessage.status, byMessage.body.code, byMessage.body.message]).toEqual([422, 'user_error', 'something went wrong']);
    const byValue = await get(`${base}/call/fail.object`);
    expect([byValue.status, byValue.body.details]).toEqual([422, { reason: 'quota', limit: 10 }]);
    expect((await get(`${base}/call/fail.nope`)).body).toMatchObject({ statusCode: 501, code: 'rpc_method_notfound' });
    expect((await get(`${base}/call/no.such.pattern`)).body).toMatchObject({ statusCode: 501, code: 'rpc_service_notfound' });
    expect((await get(`${base}/down`)).body).toMatchObject({ statusCode: 503, code: 'rpc_unreachable' });
    expect((await get(`${base}/call/slow`)).body).toMatchObject({ statusCode: 504, code: 'rpc_timeout' });
    expect((await get(`${base}/call/fail.crash`)).body).toMatchObject({ statusCode: 502, code: 'rpc_internal_err' });
    expect(await get(`${base}/bare/fail.errno`)).toEqual({
      status: 422,
      body: { statusCode: 422, code: 'user_errno', message: 'remote error errno 5', errno: 5 },
    });
  });

  it('occamsHttpStatus maps local failures too', () => {
    expect(occamsHttpStatus(new QueueFullError())).toBe(503);
    expect(occamsHttpStatus(new OverloadedError())).toBe(503);
    expect(occamsHttpStatus(new IoError())).toBe(502);
    expect(occamsHttpStatus(new ClosedError())).toBe(502);
  });
});

describe('the documented global OccamsHttpExceptionFilter and a typed client', () => {
  let calc: Microservice;
  let gateway: INestApplication;
  let base: string;
  beforeAll(async () => {
    calc = await startMicroservice(CalculatorModule);
    @Controller()
    class TypedController {
      constructor(@InjectOccamsService('CALC', Calculator) private readonly calc: OccamsServiceClient<typeof Calculator>) {}
      @Get('div/:a/:b')
      div(@Param('a') a: string, @Param('b') b: string) {
        return this.calc.div.request([Number(a), Number(b)]);
      }
      @Get('local')
      local(): never {
        throw new DivError('divide_by_zero'); // the same class, thrown by the gateway itself: not a remote error
      }
    }
    @Module({
      imports: [OccamsModule.register([{ name: 'CALC', port: calc.port, services: [Calculator] }])],
      controllers: [TypedController],
    })
    class TypedGatewayModule {}
    gateway = await NestFactory.create(TypedGatewayModule, { logger: false });
    gateway.useGlobalFilters(new OccamsHttpExceptionFilter(gateway.get(HttpAdapterHost)));
    base = await listenHttp(gateway);
  });
  afterAll(async () => {
    await gateway?.close();
    await calc?.app.close();
  });

  it('a declared error raised from a remote user error answers 422 as the user error it came from, without listing its class', async () => {
    expect(await get(`${base}/div/8/2`)).toEqual({ status: 200, body: '4' });
    expect(await get(`${base}/div/1/0`)).toEqual({ status: 422, body: { statusCode: 422, code: 'user_error', message: 'division by zero' } });
  });

  it("the same class thrown by the gateway's own code is left to Nest (500)", async () => {
    expect((await get(`${base}/local`)).status).toBe(500);
  });
});
