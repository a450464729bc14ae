import type { Call } from './call.js';

/** Buffered bytes past which fire-and-forget events are refused. */
export const MAX_EVENT_BACKLOG = 8 * 1024 * 1024;

/**
 * Fire-and-forget events written but not yet handed to the socket: each
 * resolves once its frame went out, all of a tick's at once (the writer
 * flushes on the same tick, before this runs).
 */
export class EventOutbox {
  private calls: Call[] = [];
  private readonly settleBound = (): void => this.settleAll();

  constructor(
    /** hands what the writer holds to the socket */
    private readonly flush: () => void,
    /** settles one event once the flush ran (resolved if the socket took it) */
    private readonly settle: (call: Call) => void,
  ) {}

  add(call: Call): void {
    if (this.calls.push(call) === 1) process.nextTick(this.settleBound);
  }

  /** Events not yet resolved, taken out (a connection that dies fails them). */
  take(): Call[] {
    const calls = this.calls;
    this.calls = [];
    return calls;
  }

  private settleAll(): void {
    const calls = this.take();
    this.flush();
    for (const call of calls) this.settle(call);
  }
}
