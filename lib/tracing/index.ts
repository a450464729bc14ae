// OpenTelemetry for the stream layer (and so for Nest): off until enableTracing().
export { disableTracing, enableTracing, tracingEnabled, type TracingOptions } from './enable-tracing.js';
export type { OpenTelemetryApi, OtelSpanLike, OtelTracerLike } from './otel-tracer.js';
