import type { Observer } from 'rxjs';

import { isAsyncIterable } from '../core/index.js';
import type { ServerRequest } from '../server/index.js';
import { replyWithError } from './error-reply.js';

/**
 * Turns a handler's Observable into frames. The first value is held until
 * the end of the tick: a result that completes at once (the usual case)
 * goes out as one ok frame; a real stream sends each value as it comes.
 * Values emitted while `subscribe()` runs need no tick to decide: if the
 * Observable has not completed when `subscribe()` returns, it is a stream.
 */
export class ResponseObserver implements Observer<unknown> {
  private held: unknown = undefined;
  private holding = false;
  private streaming = false;
  private inSubscribe = true;

  constructor(
    private readonly req: ServerRequest,
    private readonly endHook: (() => void) | undefined,
    private readonly streamFailed: (req: ServerRequest, err: unknown) => void,
  ) {}

  next(value: unknown): void {
    if (this.streaming) {
      this.req.item(value);
    } else if (!this.holding) {
      this.holding = true;
      this.held = value;
      if (!this.inSubscribe) process.nextTick(releaseHeld, this);
    } else {
      this.startStreaming();
      this.req.item(value);
    }
  }

  error(err: unknown): void {
    this.holding = false;
    replyWithError(this.req, err);
    this.endHook?.();
  }

  complete(): void {
    if (this.holding) {
      this.holding = false;
      const held = this.held;
      this.held = undefined;
      if (isAsyncIterable(held)) {
        // an interceptor wrapped the handler's AsyncIterable in an Observable
        void this.req.streamFrom(held, (err) => this.streamFailed(this.req, err)).then(this.endHook);
        return;
      }
      this.req.ok(held);
    } else {
      this.req.end();
    }
    this.held = undefined;
    this.endHook?.();
  }

  /** `subscribe()` returned: a value still held belongs to a stream. */
  subscribed(): void {
    this.inSubscribe = false;
    if (this.holding) this.startStreaming();
  }

  startStreaming(): void {
    if (this.streaming) return;
    this.streaming = true;
    if (this.holding) {
      this.holding = false;
      this.req.item(this.held);
      this.held = undefined;
    }
  }
}

function releaseHeld(observer: ResponseObserver): void {
  observer.startStreaming();
}
