import { clientCallError, type ClientCallInfo, clientCallResponse, clientCallSent, clientCallStart } from '../core/diagnostics.js';
import { type CallSpan, tracing } from '../core/tracing.js';
import { CancelledError, type OccamsError } from '../errors.js';
import type { Caller, CallHandle, CallObserver, CallOptions, ProbedConnection, ResponseHandler } from './call.js';

export type { ProbedConnection };

/**
 * True when calls are observed: tracing is on, or someone subscribes to a
 * call channel. False is the common case, and costs a few getter calls.
 */
export function callsObserved(): boolean {
  return tracing.tracer !== undefined || clientCallStart.hasSubscribers || clientCallSent.hasSubscribers || clientCallResponse.hasSubscribers || clientCallError.hasSubscribers;
}

/**
 * Starts observing a call made on `caller` (whichever public `call()` the
 * user reached first): its span is started in the caller's async context,
 * the trace context joins its metadata, and the call goes on through
 * `caller.call` again with the probe in its options, which the inner
 * layers (FailoverPool -> ClientPool -> ClientStream) see and do not probe
 * twice. Only called when `callsObserved()`.
 */
export function observeCall(caller: Pick<Caller, 'call'>, action: string | number, value: unknown, handler: ResponseHandler, options: CallOptions | undefined): CallHandle {
  const event = options?.event === true;
  const span = tracing.tracer?.startCall(action, options?.meta, event);
  const probe = new CallProbe(action, value, span !== undefined ? span.meta : options?.meta, event, handler, span);
  if (clientCallStart.hasSubscribers) clientCallStart.publish({ call: probe });
  probe.inner = caller.call(action, value, probe, { ...options, meta: probe.meta, probe });
  return probe;
}

/**
 * One observed call: publishes its channel messages and ends its span. It
 * stands between the layers and the user's handler, and is the handle the
 * user gets (so that a cancel is seen too). Settles at most once.
 */
export class CallProbe implements ClientCallInfo, CallHandle, ResponseHandler, CallObserver {
  /** the handle of the call proper */
  inner: CallHandle | undefined = undefined;
  items = 0;
  private done = false;

  constructor(
    readonly action: string | number,
    readonly value: unknown,
    readonly meta: Record<string, unknown> | undefined,
    readonly event: boolean,
    private readonly handler: ResponseHandler,
    private readonly span: CallSpan | undefined,
  ) {}

  get sent(): boolean {
    return this.inner?.sent === true;
  }

  /** The request was written to `connection` as `seq` (every attempt). */
  wrote(connection: ProbedConnection, seq: number): void {
    const peer = connection.peer;
    if (clientCallSent.hasSubscribers) clientCallSent.publish({ call: this, connection, seq, address: peer.text });
    this.span?.sent(peer);
  }

  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.inner?.cancel();
    this.ended(new CancelledError('cancelled by the caller'));
  }

  onItem(value: unknown): void {
    if (this.done) return;
    this.items++;
    this.handler.onItem?.(value);
  }

  onResult(value: unknown, blob: Buffer): void {
    if (this.done) return;
    this.done = true;
    if (clientCallResponse.hasSubscribers) clientCallResponse.publish({ call: this, value });
    this.span?.end(undefined, this.items);
    this.handler.onResult(value, blob);
  }

  onError(err: OccamsError): void {
    if (this.done) return;
    this.done = true;
    this.ended(err);
    this.handler.onError(err);
  }

  private ended(err: OccamsError): void {
    if (clientCallError.hasSubscribers) clientCallError.publish({ call: this, error: err });
    this.span?.end(err, this.items);
  }
}
