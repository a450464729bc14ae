import { createRequire } from 'node:module';

import { tracing } from '../core/tracing.js';
import { InvalidOptionError, MissingDependencyError } from '../errors.js';
import { type OpenTelemetryApi, OtelTracer } from './otel-tracer.js';

export const DEFAULT_TRACER_NAME = 'nestjs-occams';

export interface TracingOptions {
  /**
   * The `@opentelemetry/api` module (`import * as api from
   * '@opentelemetry/api'`). Default: loaded with `require` from where
   * nestjs-occams is installed, which finds the application's copy.
   */
  api?: OpenTelemetryApi;
  /** The tracer's name (its instrumentation scope); default `nestjs-occams`. */
  tracerName?: string;
}

/**
 * Turns OpenTelemetry tracing on for every client and server of this
 * process (stream layer and Nest alike): a CLIENT span per call, a SERVER
 * span per request, the trace context carried in the call's metadata.
 * Spans go wherever the application's OpenTelemetry SDK sends them; until
 * an SDK is registered they are no-ops. Call it once at startup, before
 * the first call. Throws `rpc_missing_dependency` when `@opentelemetry/api`
 * is not installed (it is an optional peer dependency: without this call
 * it is never loaded, and nothing changes).
 */
export function enableTracing(options: TracingOptions = {}): void {
  const api = options.api ?? loadApi();
  if (typeof api?.trace?.getTracer !== 'function' || typeof api.context?.with !== 'function' || typeof api.propagation?.inject !== 'function') {
    throw new InvalidOptionError('api', 'expected the @opentelemetry/api module');
  }
  tracing.tracer = new OtelTracer(api, api.trace.getTracer(options.tracerName ?? DEFAULT_TRACER_NAME));
}

/** Turns tracing off again (calls and requests already started still end their spans). */
export function disableTracing(): void {
  tracing.tracer = undefined;
}

/** True while tracing is on. */
export function tracingEnabled(): boolean {
  return tracing.tracer !== undefined;
}

/**
 * `require` works the same from an ESM or a CommonJS application (the
 * package itself is ESM; `createRequire` gives it a CommonJS resolver), is
 * synchronous, and loads the same copy the application imports: the API's
 * package maps both `import` and `require` to one build, and its state
 * lives on a global registry in any case.
 */
function loadApi(): OpenTelemetryApi {
  try {
    return createRequire(import.meta.url)('@opentelemetry/api') as OpenTelemetryApi;
  } catch (err) {
    throw new MissingDependencyError('@opentelemetry/api', 'tracing needs @opentelemetry/api: npm install @opentelemetry/api (and an OpenTelemetry SDK)', { cause: err });
  }
}
