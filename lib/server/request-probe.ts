import type { ServerRequestInfo } from '../core/diagnostics.js';
import { serverRequestEnd, serverRequestError, serverRequestStart } from '../core/diagnostics.js';
import { type RequestSpan, tracing } from '../core/tracing.js';
import type { OccamsError } from '../errors.js';
import type { PeerInfo } from '../transport/peer.js';

/** What a probe observes of a request (ServerRequest, which carries its probe). */
export interface ProbedRequest extends ServerRequestInfo {
  readonly connection: ServerRequestInfo['connection'] & { readonly peer: PeerInfo };
  probe: RequestProbe | undefined;
}

/**
 * True when requests are observed: tracing is on, or someone subscribes to
 * a request channel. False is the common case, and costs a few getter calls.
 */
export function requestsObserved(): boolean {
  return tracing.tracer !== undefined || serverRequestStart.hasSubscribers || serverRequestError.hasSubscribers || serverRequestEnd.hasSubscribers;
}

/**
 * Observes one dispatched request: publishes its start, its error (the
 * first one it settles or is ended with) and its end (when its slot is
 * free), and runs its dispatch inside its span's context, a child of the
 * caller's (the trace context arrives in its metadata).
 */
export class RequestProbe {
  failure: OccamsError | undefined = undefined;

  private constructor(
    private readonly req: ProbedRequest,
    private readonly span: RequestSpan | undefined,
  ) {}

  /** Dispatches `req` with `dispatch`, observed. Only called when `requestsObserved()`. */
  static dispatch<R extends ProbedRequest>(req: R, dispatch: (req: R) => void): void {
    const tracer = tracing.tracer;
    const span = tracer?.startRequest(req.action, req.meta, req.connection.peer, req.isEvent);
    req.probe = new RequestProbe(req, span);
    if (serverRequestStart.hasSubscribers) serverRequestStart.publish({ request: req });
    if (span !== undefined) span.run(dispatch, req);
    else dispatch(req);
  }

  /** The request failed with `err` (the first failure is the one reported). */
  fail(err: OccamsError): void {
    this.failure ??= err;
  }

  /** Its slot is free: nothing more is sent for it. */
  end(): void {
    const error = this.failure;
    if (error !== undefined && serverRequestError.hasSubscribers) serverRequestError.publish({ request: this.req, error });
    if (serverRequestEnd.hasSubscribers) serverRequestEnd.publish({ request: this.req, error });
    this.span?.end(error);
  }
}
