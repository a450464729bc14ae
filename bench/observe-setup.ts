/**
 * What a benchmark process observes, from OCCAMS_BENCH_OBSERVE (set by
 * `bench/run.ts --observe` and `bench/observe.ts`):
 *   off       nothing (the default): no subscriber, tracing off
 *   channels  a no-op subscriber on every diagnostics channel
 *   otel      OpenTelemetry on: an SDK tracer provider sampling every span,
 *             a batch processor and an exporter that drops what it gets,
 *             the AsyncLocalStorage context manager, the W3C propagator
 * Call before the first connection.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { CHANNELS, enableTracing } from '../lib/index.js';

export type ObserveMode = 'off' | 'channels' | 'otel';

export function observeMode(): ObserveMode {
  const mode = process.env.OCCAMS_BENCH_OBSERVE ?? 'off';
  if (mode !== 'off' && mode !== 'channels' && mode !== 'otel') throw new Error(`OCCAMS_BENCH_OBSERVE: expected off, channels or otel, got ${mode}`);
  return mode;
}

export async function setupObservation(mode = observeMode()): Promise<void> {
  if (mode === 'channels') {
    const noop = (): void => {};
    for (const name of Object.values(CHANNELS)) diagnosticsChannel.subscribe(name, noop);
  } else if (mode === 'otel') {
    const api = await import('@opentelemetry/api');
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
    const { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
    const dropAll = { export: (_spans: unknown[], done: (r: { code: number }) => void) => done({ code: 0 }), shutdown: () => Promise.resolve() };
    const provider = new BasicTracerProvider({ sampler: new AlwaysOnSampler(), spanProcessors: [new BatchSpanProcessor(dropAll, { maxQueueSize: 65_536, maxExportBatchSize: 8192, scheduledDelayMillis: 50 })] });
    api.trace.setGlobalTracerProvider(provider);
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    enableTracing();
  }
}
