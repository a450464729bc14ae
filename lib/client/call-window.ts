import type { Clock } from '../core/clock.js';
import { SeqTable } from '../core/seq-table.js';
import { TimeoutWheel } from '../core/timeout-wheel.js';
import { WaitQueue } from '../core/wait-queue.js';
import { type Call, CallKind, CallState } from './call.js';

/**
 * The sliding window of one connection: the calls sent and awaiting their
 * response (by seq), the user calls waiting for a slot, and the timeout
 * wheel every unanswered call is filed on.
 *
 *   queue (bounded) ─take()─► pending SeqTable<Call> ─finish()─► gone
 *        └── wheel: expires whole buckets, each call within 10 % ─┘
 *
 * Invariants: `inFlight` counts User calls Sent and not Done, <= `size`
 * whenever calls are taken through `take()`; a Sent call is in `pending`,
 * a waiting one in `queue`; either is on the wheel until it is finished.
 */
export class CallWindow {
  readonly pending: SeqTable<Call>;
  private readonly queue: WaitQueue<Call>;
  private readonly wheel: TimeoutWheel<Call>;
  /** User calls Sent and not Done */
  inFlight = 0;

  constructor(
    /** slots: maxInFlight, clamped to the server's announced cap */
    public size: number,
    maxQueued: number,
    private readonly clock: Clock,
    resolution: number,
    onExpired: (call: Call) => void,
  ) {
    this.pending = new SeqTable(size);
    this.queue = new WaitQueue(maxQueued);
    this.wheel = new TimeoutWheel(clock, resolution, onExpired);
  }

  get queued(): number {
    return this.queue.length;
  }
  /** True when a new user call may go out at once (a slot free, nobody waiting before it). */
  get open(): boolean {
    return this.inFlight < this.size && this.queue.length === 0;
  }
  get hasRoom(): boolean {
    return this.inFlight < this.size;
  }
  get queueFull(): boolean {
    return this.queue.full;
  }
  get idle(): boolean {
    return this.inFlight === 0 && this.queue.length === 0;
  }

  /** Files `call` to time out `timeout` ms from now (again, when it was filed). Returns the clock's time it read (one read per call: the wheel and the request's header use it). */
  arm(call: Call, timeout: number): number {
    if (call.timerBucket !== null) this.wheel.remove(call);
    const now = this.clock.now();
    call.timeoutMs = call.options?.statedTimeout ?? timeout; // what the error names: the caller's timeout
    call.expiresAt = now + timeout; // what the server is told (FEATURE_DEADLINE): a pool's `timeout` is the time left of the whole call
    this.wheel.add(call, call.expiresAt, now);
    return now;
  }

  wait(call: Call): void {
    this.queue.push(call);
  }

  /** The next waiting call when a slot is free. */
  take(): Call | undefined {
    return this.inFlight < this.size ? this.queue.shift() : undefined;
  }

  /** `call` went out as `seq`; a User call takes its slot. */
  sent(call: Call, seq: number): void {
    call.seq = seq;
    call.state = CallState.Sent;
    this.pending.add(call);
    if (call.kind === CallKind.User) this.inFlight++;
  }

  /** Takes `call` out of every structure (frees its slot); returns the state it had. */
  finish(call: Call): CallState {
    const state = call.state;
    call.state = CallState.Done;
    this.wheel.remove(call);
    if (state === CallState.Sent) {
      this.pending.delete(call.seq);
      if (call.kind === CallKind.User) this.inFlight--;
    } else {
      this.queue.remove(call);
    }
    return state;
  }

  /** Calls that never went out, taken out of the queue (still on the wheel). */
  drainQueue(): Call[] {
    return this.queue.drain();
  }

  /** Stops the wheel; returns every call sent or waiting. */
  stop(): Call[] {
    this.wheel.stop();
    return [...this.pending.values(), ...this.queue.drain()];
  }
}
