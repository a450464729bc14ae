import type { OccamsError } from '../errors.js';
import type { CallHandle, CallOptions, ResponseHandler } from './call.js';
import type { ClientPool } from './client-pool.js';

/** Where a FailoverCall reports how its attempts ended (FailoverPool). */
export interface AttemptSink {
  /** an attempt answered (`err` undefined) or failed for good; the picker and ejection learn from it */
  attemptEnded(fc: FailoverCall, err: OccamsError | undefined): void;
  /** an attempt failed: move, retry or give up */
  attemptFailed(fc: FailoverCall, err: OccamsError): void;
}

/** One request's journey across pools (see RetryPolicy for the rules). */
export class FailoverCall implements CallHandle, ResponseHandler {
  retries = 0;
  moves = 0;
  delivered = false;
  /** attempts started; a handle is kept only for the latest */
  attempts = 0;
  pool: ClientPool | undefined;
  inner: CallHandle | undefined;
  /** pools this call failed on */
  tried: Set<ClientPool> | undefined;
  done = false;
  /** clock ms the latest attempt started (kept only when the picker or ejection learns from attempts) */
  startedAt = 0;
  constructor(
    readonly owner: AttemptSink,
    readonly action: string | number,
    readonly value: unknown,
    readonly handler: ResponseHandler,
    readonly options: CallOptions | undefined,
    /** epoch ms; moves (never sent) keep it, retries start a new timeout */
    readonly deadline: number,
  ) {}
  get sent(): boolean {
    return this.inner?.sent === true;
  }
  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.inner?.cancel();
  }
  onItem(value: unknown): void {
    if (this.done) return;
    this.delivered = true;
    this.handler.onItem?.(value);
  }
  onResult(value: unknown, blob: Buffer): void {
    if (this.done) return;
    this.done = true;
    this.owner.attemptEnded(this, undefined);
    this.handler.onResult(value, blob);
  }
  onError(err: OccamsError): void {
    if (!this.done) this.owner.attemptFailed(this, err);
  }
}
