// OpenTelemetry for the stream layer (and so for Nest): off until enableTracing().
export { DEFAULT_TRACER_NAME, type TracingOptions, disableTracing, enableTracing, tracingEnabled } from './enable-tracing.js';
export type { OpenTelemetryApi, OtelSpanLike, OtelTracerLike } from './otel-tracer.js';
