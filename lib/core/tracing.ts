import type { PeerInfo } from '../transport/peer.js';

export type { PeerInfo };

/**
 * The seam between the stream layer and a tracing system: the client and
 * the server ask the installed `RpcTracer` (if any) for a span per call and
 * per request; `lib/tracing/` provides the OpenTelemetry one. With none
 * installed the cost is one property read per call.
 */
export interface RpcTracer {
  /**
   * A call begins on the client, in its caller's async context. `meta` is
   * the metadata the caller set; the span's `meta` is what goes out (with
   * the trace context added).
   */
  startCall(action: string | number, meta: Record<string, unknown> | undefined, event: boolean): CallSpan;
  /** A request is about to be dispatched on the server; `meta` carries the caller's trace context. */
  startRequest(action: string | number, meta: Record<string, unknown> | undefined, peer: PeerInfo, event: boolean): RequestSpan;
}

/** One client call's span. */
export interface CallSpan {
  /** the metadata to send: the caller's plus the trace context */
  readonly meta: Record<string, unknown> | undefined;
  /** the request went out on a connection to `peer` (once per attempt; the last one counts) */
  sent(peer: PeerInfo): void;
  /** the call is over; `items` streamed values were received */
  end(error: (Error & { readonly code: string }) | undefined, items: number): void;
}

/** One server request's span. */
export interface RequestSpan {
  /** runs `fn(arg)` inside the request's context (the handler sees its span as the active one) */
  run<A, R>(fn: (arg: A) => R, arg: A): R;
  /** the request is over (answered or abandoned) */
  end(error: (Error & { readonly code: string }) | undefined): void;
}

/** The installed tracer; undefined when tracing is off (the default). */
export const tracing: { tracer: RpcTracer | undefined } = { tracer: undefined };
