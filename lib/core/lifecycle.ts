import { EventEmitter } from 'node:events';

import { ClosedError, IllegalStateError, OccamsError } from '../errors.js';

/** The states every lifecycle ends with. */
export type EndState = 'closing' | 'closed';

/** Legal moves: `table[from]` lists the states `from` may move to. */
export type Transitions<S extends string> = { readonly [K in S]: readonly S[] };

/**
 * The one rule for errors given to `destroy(err)`: an OccamsError is kept
 * as it is; anything else (a user's own abort reason) becomes `rpc_closed`
 * with the original as `cause`; nothing at all is a plain `rpc_closed`.
 */
export function abortError(err: Error | undefined, what: string): OccamsError {
  if (err === undefined) return new ClosedError(`${what} is closed`);
  if (err instanceof OccamsError) return err;
  return new ClosedError(`${what} destroyed: ${err.message}`, { cause: err });
}

/**
 * A state machine and the close/destroy lifecycle, written once for every
 * connection, pool and server (after undici's dispatcher-base and grpc-js's
 * subchannel transitions).
 *
 *   <own states> ──close()──► closing ──(drained)──► closed
 *        └──────────────destroy(err)────────────────────┘
 *
 * - Only `transition()` writes the state; a move the table does not list
 *   throws (it is a bug). Entry actions live in `onEnter`, in one place.
 * - `close()` drains: the subclass's `beginClose()` stops new work and lets
 *   accepted work finish; the returned promise (the same one for every
 *   caller) resolves once `closed` is reached, however that happens.
 * - `destroy(err)` aborts at once: `abort(error)` fails everything still
 *   open with one error (see `abortError`). Both are idempotent.
 * Events: 'close' (the error, or undefined when graceful).
 */
export abstract class Lifecycle<S extends string> extends EventEmitter {
  private current: S | EndState;
  private closedPromise: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;
  /** Why new work is refused once closing or closed. */
  protected closeError: OccamsError | undefined;

  protected constructor(
    /** names the owner in errors and in illegal-transition reports */
    protected readonly what: string,
    private readonly table: Transitions<S | EndState>,
    initial: S,
  ) {
    super();
    this.current = initial;
  }

  get state(): S | EndState {
    return this.current;
  }

  /** True once close() or destroy() has begun. */
  get ending(): boolean {
    return this.current === 'closing' || this.current === 'closed';
  }

  /** Moves to `next`; a move to the current state does nothing. */
  protected transition(next: S | EndState): void {
    const prev = this.current;
    if (prev === next) return;
    if (!this.table[prev].includes(next)) throw new IllegalStateError(`${this.what}: illegal transition ${prev} -> ${next}`);
    this.current = next;
    this.onEnter(next, prev);
  }

  /** Entry actions, in one place; runs right after the state changed. */
  protected onEnter(_next: S | EndState, _prev: S | EndState): void {}

  /** Graceful: refuse new work, finish accepted work, then close. Idempotent. */
  close(): Promise<void> {
    if (this.current !== 'closing' && this.current !== 'closed') {
      this.closeError ??= new ClosedError(`${this.what} is closed`);
      this.transition('closing');
      const drained = this.beginClose();
      if (drained !== undefined) {
        drained.then(
          () => this.terminate(undefined),
          (err: unknown) => this.terminate(abortError(err as Error, this.what)),
        );
      }
    }
    return this.whenClosed();
  }

  /** Aborts: everything still open fails with `err` (see abortError). Idempotent. */
  destroy(err?: Error): void {
    if (this.current === 'closed') return;
    this.terminate(abortError(err, this.what), err !== undefined);
  }

  /** Resolves once closed, however that happens. */
  whenClosed(): Promise<void> {
    if (this.current === 'closed') return Promise.resolve();
    this.closedPromise ??= new Promise((resolve) => (this.resolveClosed = resolve));
    return this.closedPromise;
  }

  /**
   * Ends the lifecycle (graceful completion when `err` is undefined): the
   * state becomes closed first, so anything `abort` calls back sees it.
   */
  protected terminate(err: OccamsError | undefined, report = err !== undefined): void {
    if (this.current === 'closed') return;
    const error = err ?? this.closeError ?? new ClosedError(`${this.what} is closed`);
    this.closeError = error;
    this.transition('closed');
    this.abort(error);
    this.resolveClosed?.();
    this.onClosed(report ? error : undefined);
    this.emit('close', report ? error : undefined);
  }

  /** Runs once closed, before the 'close' event; `reason` is undefined when the end was graceful. */
  protected onClosed(_reason: OccamsError | undefined): void {}

  /**
   * Starts a graceful close (state is already `closing`). Return a promise
   * that resolves when drained, or undefined and call `terminate()` later.
   */
  protected abstract beginClose(): Promise<void> | undefined;

  /** Releases everything (timers, sockets) and fails what is still open with `err`. */
  protected abstract abort(err: OccamsError): void;
}
