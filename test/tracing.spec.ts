/**
 * OpenTelemetry across real hops, with the SDK's in-memory exporter: an HTTP
 * gateway (Nest + Express, an HTTP server span made by a middleware as the
 * HTTP instrumentation would) -> OccamsClient -> OccamsServer (Nest), and
 * the stream layer alone, two hops deep. Client spans are children of the
 * caller's span, server spans children of the client's (the W3C trace
 * context travels in the call's metadata), handlers run inside theirs;
 * plain v1 peers get no metadata.
 */
import 'reflect-metadata';

import { Controller, Get, type INestApplication, Module, Param, ParseIntPipe, UseFilters } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import * as api from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { lastValueFrom, toArray } from 'rxjs';

import { ClientStream, disableTracing, enableTracing, InjectOccamsClient, type OccamsClient, OccamsHttpExceptionFilter, OccamsModule, tracingEnabled } from '../lib/index.js';
import { NO_PROPAGATOR_WARNING, OtelTracer } from '../lib/tracing/otel-tracer.js';
import { CalculatorModule } from '../sample/calculator/calculator.module.js';
import { get, listenHttp, type Microservice, startMicroservice } from './support/nest-boot.js';
import { startServer, waitFor } from './support/servers.js';

const { SpanKind, SpanStatusCode, context, propagation, trace } = api;
const exporter = new InMemorySpanExporter();
const tracer = () => trace.getTracer('test');

/** What a handler sees as its active span. */
function activeIds(): { traceId?: string; spanId?: string } {
  const s = trace.getActiveSpan()?.spanContext();
  return { traceId: s?.traceId, spanId: s?.spanId };
}

@Controller()
class ProbeController {
  @MessagePattern('Probe.active')
  active() {
    return activeIds();
  }
}
@Module({ imports: [CalculatorModule], controllers: [ProbeController] })
class TracedServiceModule {}

@Controller()
@UseFilters(OccamsHttpExceptionFilter)
class TracedGatewayController {
  constructor(@InjectOccamsClient('CALC') private readonly calc: OccamsClient) {}
  @Get('add/:a/:b')
  add(@Param('a', ParseIntPipe) a: number, @Param('b', ParseIntPipe) b: number) {
    return this.calc.send<number>('Calculator.add', [a, b]);
  }
  @Get('div/:a/:b')
  div(@Param('a', ParseIntPipe) a: number, @Param('b', ParseIntPipe) b: number) {
    return this.calc.send<number>('Calculator.div', [a, b]);
  }
  @Get('count/:n')
  count(@Param('n', ParseIntPipe) n: number) {
    return lastValueFrom(this.calc.send<number>('Calculator.count', n).pipe(toArray()));
  }
  @Get('active')
  active() {
    return this.calc.send('Probe.active', {});
  }
}

const spans = () => exporter.getFinishedSpans();
const named = (name: string, kind: api.SpanKind) => spans().filter((s) => s.name === name && s.kind === kind);
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const idOf = (s: ReadableSpan) => s.spanContext().spanId;
const traceOf = (s: ReadableSpan) => s.spanContext().traceId;

/** The HTTP span of `path`, and the client and server spans of `name` under it, once all have ended. */
async function hop(path: string, name: string): Promise<{ http: ReadableSpan; client: ReadableSpan; server: ReadableSpan }> {
  await waitFor(() => named(`GET ${path}`, SpanKind.SERVER).length === 1 && named(name, SpanKind.CLIENT).length === 1 && named(name, SpanKind.SERVER).length === 1);
  return { http: named(`GET ${path}`, SpanKind.SERVER)[0]!, client: named(name, SpanKind.CLIENT)[0]!, server: named(name, SpanKind.SERVER)[0]! };
}

beforeAll(() => {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  enableTracing(); // loads @opentelemetry/api itself, from where the package is installed
});
afterAll(() => {
  disableTracing();
  trace.disable();
  context.disable();
  propagation.disable();
});
afterEach(() => exporter.reset());

describe('a gateway -> OccamsClient -> OccamsServer hop', () => {
  let service: Microservice;
  let gateway: INestApplication;
  let base: string;
  beforeAll(async () => {
    service = await startMicroservice(TracedServiceModule);
    @Module({ imports: [OccamsModule.register([{ name: 'CALC', port: service.port }])], controllers: [TracedGatewayController] })
    class TracedGatewayModule {}
    gateway = await NestFactory.create(TracedGatewayModule, { logger: false });
    // what @opentelemetry/instrumentation-http does: a SERVER span per request, active while it is handled
    gateway.use((req: { method: string; url: string }, res: { on(e: string, f: () => void): void }, next: () => void) => {
      const span = tracer().startSpan(`${req.method} ${req.url}`, { kind: SpanKind.SERVER });
      res.on('finish', () => span.end());
      context.with(trace.setSpan(context.active(), span), next);
    });
    base = await listenHttp(gateway);
  });
  afterAll(async () => {
    await gateway?.close();
    await service?.app.close();
  });

  it('one trace: HTTP span -> client span -> server span, named and attributed per the RPC conventions', async () => {
    expect(tracingEnabled()).toBe(true);
    expect(await get(`${base}/add/2/3`)).toEqual({ status: 200, body: '5' });
    const { http, client, server } = await hop('/add/2/3', 'Calculator/add');
    expect(traceOf(client)).toBe(traceOf(http));
    expect(traceOf(server)).toBe(traceOf(http));
    expect(parentOf(client)).toBe(idOf(http));
    expect(parentOf(server)).toBe(idOf(client));
    expect(client.attributes).toMatchObject({
      'rpc.system': 'occams',
      'rpc.service': 'Calculator',
      'rpc.method': 'add',
      'server.address': '127.0.0.1',
      'server.port': service.port,
      'network.peer.address': '127.0.0.1',
      'network.peer.port': service.port,
      'network.transport': 'tcp',
    });
    expect(server.attributes).toMatchObject({ 'rpc.system': 'occams', 'rpc.service': 'Calculator', 'rpc.method': 'add', 'network.peer.address': '127.0.0.1' });
    expect(server.attributes['client.port']).toBeGreaterThan(0);
    expect(client.status.code).toBe(SpanStatusCode.UNSET);
    expect(server.status.code).toBe(SpanStatusCode.UNSET);
    expect(client.instrumentationScope.name).toBe('nestjs-occams');
  });

  it('the handler runs inside its server span', async () => {
    const { body } = await get(`${base}/active`);
    const { server } = await hop('/active', 'Probe/active');
    expect(body).toEqual({ traceId: traceOf(server), spanId: idOf(server) });
  });

  it('a streamed call: one client span with the count of items, one server span', async () => {
    expect(await get(`${base}/count/3`)).toEqual({ status: 200, body: [1, 2, 3] });
    const { http, client, server } = await hop('/count/3', 'Calculator/count');
    expect(parentOf(client)).toBe(idOf(http));
    expect(parentOf(server)).toBe(idOf(client));
    expect(client.attributes['rpc.occams.stream.items']).toBe(3);
    expect(server.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('an error: the client span fails with the code; the server span keeps the code, not the status, for a refusal', async () => {
    expect((await get(`${base}/div/1/0`)).status).toBe(422);
    const { client, server } = await hop('/div/1/0', 'Calculator/div');
    expect(client.status).toEqual({ code: SpanStatusCode.ERROR, message: 'division by zero' });
    expect(client.attributes).toMatchObject({ 'rpc.occams.error_code': 'user_error', 'error.type': 'user_error' });
    expect(client.events.map((e) => e.name)).toEqual(['exception']);
    expect(server.attributes).toMatchObject({ 'rpc.occams.error_code': 'user_error' });
    expect(server.status.code).toBe(SpanStatusCode.UNSET); // the caller's fault, as a 4xx on an HTTP server span
    expect(parentOf(server)).toBe(idOf(client));
  });
});

describe('the stream layer', () => {
  it('two hops deep: every span a child of the one before, handlers inside theirs; a server error fails both spans', async () => {
    const back = await startServer({ 'Back.echo': (v: unknown) => ({ v, seen: activeIds() }) });
    const backClient = await ClientStream.connect(back.url);
    const front = await startServer({
      'Front.relay': async (v: unknown) => ({ inFront: activeIds(), back: await backClient.request('Back.echo', v) }),
      'Front.broken': () => {
        throw new Error('boom');
      },
    });
    const client = await ClientStream.connect(front.url);
    try {
      const root = tracer().startSpan('root');
      const answer = (await context.with(trace.setSpan(api.ROOT_CONTEXT, root), () => client.request('Front.relay', 'x'))) as any;
      root.end();
      await waitFor(() => spans().length === 5);
      const [clientFront] = named('Front/relay', SpanKind.CLIENT);
      const [serverFront] = named('Front/relay', SpanKind.SERVER);
      const [clientBack] = named('Back/echo', SpanKind.CLIENT);
      const [serverBack] = named('Back/echo', SpanKind.SERVER);
      expect(parentOf(clientFront!)).toBe(root.spanContext().spanId);
      expect(parentOf(serverFront!)).toBe(idOf(clientFront!));
      expect(parentOf(clientBack!)).toBe(idOf(serverFront!));
      expect(parentOf(serverBack!)).toBe(idOf(clientBack!));
      expect(new Set(spans().map(traceOf))).toEqual(new Set([root.spanContext().traceId]));
      expect(answer.inFront.spanId).toBe(idOf(serverFront!));
      expect(answer.back.seen.spanId).toBe(idOf(serverBack!));

      exporter.reset();
      await expect(client.request('Front.broken', null)).rejects.toMatchObject({ code: 'rpc_internal_err' });
      await waitFor(() => spans().length === 2);
      const [c] = named('Front/broken', SpanKind.CLIENT);
      const [s] = named('Front/broken', SpanKind.SERVER);
      expect(c!.status.code).toBe(SpanStatusCode.ERROR);
      expect(s!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'handler for Front.broken failed: boom' });
      expect(s!.attributes['rpc.occams.error_code']).toBe('rpc_internal_err');
      expect(parentOf(s!)).toBe(idOf(c!));
    } finally {
      client.destroy();
      backClient.destroy();
      await front.server.destroy();
      await back.server.destroy();
    }
  });

  it('plain v1 peers get no metadata: the server span starts a trace of its own', async () => {
    let meta: unknown = 'unset';
    const ctx = await startServer({ 'V1.meta': (_v: unknown, req) => ((meta = req.meta), 1) });
    const v1Client = await ClientStream.connect(ctx.url, { extensions: false });
    try {
      expect(await v1Client.request('V1.meta', null, { meta: { kept: 'no' } })).toBe(1);
      await waitFor(() => spans().length === 2);
      expect(meta).toBeUndefined();
      const [c] = named('V1/meta', SpanKind.CLIENT);
      const [s] = named('V1/meta', SpanKind.SERVER);
      expect(parentOf(s!)).toBeUndefined();
      expect(traceOf(s!)).not.toBe(traceOf(c!));
    } finally {
      v1Client.destroy();
      await ctx.server.destroy();
    }
  });

  it('with tracing off, no span and no trace context', async () => {
    let meta: unknown = 'unset';
    const ctx = await startServer({ 'Off.meta': (_v: unknown, req) => ((meta = req.meta), 1) });
    const client = await ClientStream.connect(ctx.url);
    disableTracing();
    try {
      const root = tracer().startSpan('root');
      await context.with(trace.setSpan(api.ROOT_CONTEXT, root), () => client.request('Off.meta', null));
      root.end();
      expect(spans().map((s) => s.name)).toEqual(['root']);
      expect(meta).toBeUndefined();
    } finally {
      enableTracing({ api });
      client.destroy();
      await ctx.server.destroy();
    }
  });
});

describe('an SDK without a global propagator', () => {
  it('warns once (a process warning naming the fix), as soon as a client span records; with the propagator, never', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      propagation.disable(); // the API's no-op propagator, as a BasicTracerProvider set up by hand has
      const bare = new OtelTracer(api, api.trace.getTracer('no-propagator'));
      for (let i = 0; i < 3; i++) bare.startCall('Calc.add', undefined, false).end(undefined, 0);
      propagation.setGlobalPropagator(new W3CTraceContextPropagator());
      const fine = new OtelTracer(api, api.trace.getTracer('with-propagator'));
      fine.startCall('Calc.add', undefined, false).end(undefined, 0);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      const ours = warnings.filter((w) => (w as Error & { code?: string }).code === NO_PROPAGATOR_WARNING);
      expect(ours).toHaveLength(1);
      expect(ours[0]!.message).toMatch(/no global propagator.*every hop starts a new trace.*setGlobalPropagator/);
    } finally {
      process.off('warning', onWarning);
      propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    }
  });
});
