/**
 * What a benchmark process observes, from OCCAMS_BENCH_OBSERVE (set by
 * `bench/run.ts --observe` and `bench/observe.ts`):
 *   off       nothing (the default): no subscriber, tracing off
 *   channels  a no-op subscriber on every diagnostics channel
 *   otel      OpenTelemetry on: an SDK tracer provider sampling every span,
 *             a batch processor and an exporter that drops what it gets,
 *             the AsyncLocalStorage context manager, the W3C propagator
 *   otel-unsampled  the same, but the root sampler samples nothing (the
 *             calls of a trace that is not sampled: spans are not recorded,
 *             the trace context still travels)
 *   als       tracing off, only the SDK's context manager enabled (Node's
 *             AsyncLocalStorage, which any OpenTelemetry setup turns on for
 *             the whole process): the part of the cost that is not ours
 * Call before the first connection.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

import { CHANNELS, enableTracing } from '../lib/index.js';

export type ObserveMode = 'off' | 'channels' | 'otel' | 'otel-unsampled' | 'als';
const MODES: readonly string[] = ['off', 'channels', 'otel', 'otel-unsampled', 'als'];

export function observeMode(): ObserveMode {
  const mode = process.env.OCCAMS_BENCH_OBSERVE ?? 'off';
  if (!MODES.includes(mode)) throw new Error(`OCCAMS_BENCH_OBSERVE: expected one of ${MODES.join(', ')}, got ${mode}`);
  return mode as ObserveMode;
}

export async function setupObservation(mode = observeMode()): Promise<void> {
  if (mode === 'channels') {
    const noop = (): void => {};
    for (const name of Object.values(CHANNELS)) diagnosticsChannel.subscribe(name, noop);
  } else if (mode === 'als') {
    const api = await import('@opentelemetry/api');
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    // Node enables AsyncLocalStorage's hooks on its first run(), as a traced request would
    api.context.with(api.ROOT_CONTEXT, () => {});
  } else if (mode === 'otel' || mode === 'otel-unsampled') {
    const api = await import('@opentelemetry/api');
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
    const { AlwaysOffSampler, AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler } = await import('@opentelemetry/sdk-trace-base');
    const sampler = mode === 'otel' ? new AlwaysOnSampler() : new ParentBasedSampler({ root: new AlwaysOffSampler() });
    const dropAll = { export: (_spans: unknown[], done: (r: { code: number }) => void) => done({ code: 0 }), shutdown: () => Promise.resolve() };
    const provider = new BasicTracerProvider({
      sampler,
      spanProcessors: [new BatchSpanProcessor(dropAll, { maxQueueSize: 65_536, maxExportBatchSize: 8192, scheduledDelayMillis: 50 })],
    });
    api.trace.setGlobalTracerProvider(provider);
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    enableTracing();
  }
}
