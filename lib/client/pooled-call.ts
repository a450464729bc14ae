import { TimedEntry } from '../core/timeout-wheel.js';
import type { Waiter } from '../core/wait-queue.js';
import type { OccamsError } from '../errors.js';
import { type CallHandle, type CallOptions, CallState, type ResponseHandler } from './call.js';

/** A call waiting in the pool's queue for a connection with room. */
export class PooledCall extends TimedEntry implements Waiter, CallHandle, ResponseHandler {
  state = CallState.New;
  waiting = false;
  inner: CallHandle | undefined;
  constructor(
    readonly pool: { dequeue(pc: PooledCall): void },
    readonly action: string | number,
    readonly value: unknown,
    readonly handler: ResponseHandler,
    readonly options: CallOptions | undefined,
    /** epoch ms at which the call times out */
    readonly deadline: number,
  ) {
    super();
  }
  get sent(): boolean {
    return this.inner?.sent === true;
  }
  cancel(): void {
    if (this.state === CallState.New) this.pool.dequeue(this);
    else if (this.state === CallState.Sent) this.inner!.cancel();
    this.state = CallState.Done;
  }
  onItem(value: unknown): void {
    this.handler.onItem?.(value);
  }
  onResult(value: unknown, blob: Buffer): void {
    this.state = CallState.Done;
    this.handler.onResult(value, blob);
  }
  onError(err: OccamsError): void {
    this.state = CallState.Done;
    this.handler.onError(err);
  }
}
