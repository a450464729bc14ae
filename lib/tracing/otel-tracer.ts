import type { CallSpan, PeerInfo, RequestSpan, RpcTracer } from '../core/tracing.js';
import { ErrorCode } from '../errors.js';

/**
 * The part of `@opentelemetry/api` we use, structurally, so that our types
 * never name the package (it is an optional peer): pass the module itself,
 * `import * as api from '@opentelemetry/api'`.
 */
export interface OpenTelemetryApi {
  trace: {
    getTracer(name: string, version?: string): OtelTracerLike;
    setSpan(context: unknown, span: OtelSpanLike): unknown;
  };
  context: {
    active(): unknown;
    with(context: unknown, fn: (arg: never) => unknown, thisArg?: unknown, ...args: never[]): unknown;
  };
  propagation: {
    inject(context: unknown, carrier: Record<string, unknown>): void;
    extract(context: unknown, carrier: Record<string, unknown>): unknown;
    /** the keys the global propagator writes: none for the API's no-op one */
    fields?(): string[];
  };
  ROOT_CONTEXT: unknown;
}

/** A Tracer, as far as we use it. */
export interface OtelTracerLike {
  startSpan(name: string, options?: { kind?: number; attributes?: Record<string, string | number | boolean> }, context?: unknown): OtelSpanLike;
}

/** A Span, as far as we use it. */
export interface OtelSpanLike {
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  recordException(exception: Error): void;
  end(): void;
  isRecording?(): boolean;
}

/** process.emitWarning's code for a tracer provider without a global propagator. */
export const NO_PROPAGATOR_WARNING = 'OCCAMS_NO_PROPAGATOR';

// Fixed by the OpenTelemetry specification (SpanKind, SpanStatusCode).
const SPAN_KIND_SERVER = 1;
const SPAN_KIND_CLIENT = 2;
const STATUS_ERROR = 2;

/** Distinct actions whose span name and attributes are cached. */
const MAX_CACHED_ACTIONS = 1_000;

interface ActionNames {
  /** span name: `Service/method` */
  name: string;
  /** rpc.system, rpc.service, rpc.method (shared: the SDK copies them into each span) */
  attributes: Record<string, string>;
}

type CodedError = Error & { readonly code: string; readonly errno?: number };

/**
 * Spans per the OpenTelemetry RPC semantic conventions: `rpc.system`
 * "occams"; a `Service.method` action gives `rpc.service` and `rpc.method`
 * (split at the first dot, as the Rust crate does) and the span name
 * `Service/method`; any other action is the method alone. Client spans are
 * children of the caller's active context and carry the trace context in
 * the call's metadata (through the global propagator: W3C `traceparent`
 * and `tracestate` by default); server spans are children of what that
 * metadata carries, and the handler runs inside them.
 */
export class OtelTracer implements RpcTracer {
  private readonly names = new Map<string | number, ActionNames>();
  /** whether the global propagator was looked at (on the first recording client span) */
  private propagatorChecked = false;

  constructor(
    private readonly api: OpenTelemetryApi,
    private readonly tracer: OtelTracerLike,
  ) {}

  startCall(action: string | number, meta: Record<string, unknown> | undefined, event: boolean): CallSpan {
    const api = this.api;
    const names = this.namesOf(action);
    const parent = api.context.active();
    const span = this.tracer.startSpan(names.name, { kind: SPAN_KIND_CLIENT, attributes: names.attributes }, parent);
    if (event) span.setAttribute('rpc.occams.event', true);
    const carrier: Record<string, unknown> = meta === undefined ? {} : { ...meta };
    api.propagation.inject(api.trace.setSpan(parent, span), carrier);
    if (!this.propagatorChecked && span.isRecording?.() === true) this.checkPropagator();
    return new OtelCallSpan(span, meta === undefined && isEmpty(carrier) ? undefined : carrier);
  }

  /**
   * An SDK records spans but no global propagator is set (the API's default
   * is a no-op: a BasicTracerProvider set up by hand, without NodeSDK): the
   * trace context never travels, and every hop would silently start a trace
   * of its own. Said once, as a process warning.
   */
  private checkPropagator(): void {
    this.propagatorChecked = true;
    const fields = this.api.propagation.fields?.();
    if (fields === undefined || fields.length > 0) return;
    process.emitWarning(
      'nestjs-occams tracing: spans are recorded but no global propagator is set, so the trace context does not travel and every ' +
        'hop starts a new trace. Set one: propagation.setGlobalPropagator(new W3CTraceContextPropagator()) (@opentelemetry/core), or start NodeSDK.',
      { code: NO_PROPAGATOR_WARNING },
    );
  }

  startRequest(action: string | number, meta: Record<string, unknown> | undefined, peer: PeerInfo, event: boolean): RequestSpan {
    const api = this.api;
    const names = this.namesOf(action);
    const parent = meta === undefined ? api.ROOT_CONTEXT : api.propagation.extract(api.ROOT_CONTEXT, meta);
    const span = this.tracer.startSpan(names.name, { kind: SPAN_KIND_SERVER, attributes: names.attributes }, parent);
    if (event) span.setAttribute('rpc.occams.event', true);
    span.setAttribute('network.transport', peer.transport);
    if (peer.peerAddress !== undefined) {
      span.setAttribute('client.address', peer.peerAddress);
      span.setAttribute('network.peer.address', peer.peerAddress);
    }
    if (peer.peerPort !== undefined) {
      span.setAttribute('client.port', peer.peerPort);
      span.setAttribute('network.peer.port', peer.peerPort);
    }
    return new OtelRequestSpan(api, span, api.trace.setSpan(parent, span));
  }

  private namesOf(action: string | number): ActionNames {
    let names = this.names.get(action);
    if (names === undefined) {
      names = actionNames(action);
      if (this.names.size < MAX_CACHED_ACTIONS) this.names.set(action, names);
    }
    return names;
  }
}

class OtelCallSpan implements CallSpan {
  constructor(
    private readonly span: OtelSpanLike,
    readonly meta: Record<string, unknown> | undefined,
  ) {}

  sent(peer: PeerInfo): void {
    const span = this.span;
    span.setAttribute('network.transport', peer.transport);
    if (peer.address !== undefined) span.setAttribute('server.address', peer.address);
    if (peer.port !== undefined) span.setAttribute('server.port', peer.port);
    if (peer.peerAddress !== undefined) span.setAttribute('network.peer.address', peer.peerAddress);
    if (peer.peerPort !== undefined) span.setAttribute('network.peer.port', peer.peerPort);
  }

  end(error: CodedError | undefined, items: number): void {
    const span = this.span;
    if (items > 0) span.setAttribute('rpc.occams.stream.items', items);
    if (error !== undefined) recordError(span, error, true);
    span.end();
  }
}

class OtelRequestSpan implements RequestSpan {
  constructor(
    private readonly api: OpenTelemetryApi,
    private readonly span: OtelSpanLike,
    private readonly context: unknown,
  ) {}

  run<A, R>(fn: (arg: A) => R, arg: A): R {
    return this.api.context.with(this.context, fn as (arg: never) => unknown, undefined, arg as never) as R;
  }

  end(error: CodedError | undefined): void {
    if (error !== undefined) recordError(this.span, error, false);
    this.span.end();
  }
}

/**
 * The error code on a failed span (`rpc.occams.error_code`, and
 * `error.type`), with the errno of a numeric user error. Status Error on
 * every failed client span; on server spans not for what the caller caused
 * (a handler's refusal, `user_error` / `user_errno`, or the caller's
 * cancel), as the conventions treat a client's fault on a server span.
 */
function recordError(span: OtelSpanLike, error: CodedError, client: boolean): void {
  const code = error.code;
  span.setAttribute('rpc.occams.error_code', code);
  span.setAttribute('error.type', code);
  if (typeof error.errno === 'number') span.setAttribute('rpc.occams.errno', error.errno);
  if (client || !CALLER_FAULTS.has(code)) {
    span.setStatus({ code: STATUS_ERROR, message: error.message });
    span.recordException(error);
  }
}

const CALLER_FAULTS: ReadonlySet<string> = new Set([ErrorCode.UserError, ErrorCode.UserErrno, ErrorCode.Cancelled]);

function actionNames(action: string | number): ActionNames {
  if (typeof action === 'number') {
    const method = `action ${action}`;
    return { name: method, attributes: { 'rpc.system': 'occams', 'rpc.method': method } };
  }
  const dot = action.indexOf('.');
  if (dot <= 0 || dot === action.length - 1) return { name: action, attributes: { 'rpc.system': 'occams', 'rpc.method': action } };
  const service = action.slice(0, dot);
  const method = action.slice(dot + 1);
  return { name: `${service}/${method}`, attributes: { 'rpc.system': 'occams', 'rpc.service': service, 'rpc.method': method } };
}

function isEmpty(o: Record<string, unknown>): boolean {
  for (const _ in o) return false;
  return true;
}
