// OpenTelemetry for the stream layer (and so for Nest): off until enableTracing().
export { type TracingOptions, disableTracing, enableTracing, tracingEnabled } from './enable-tracing.js';
export type { OpenTelemetryApi, OtelSpanLike, OtelTracerLike } from './otel-tracer.js';
