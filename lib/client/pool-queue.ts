import type { Clock } from '../core/clock.js';
import { TimeoutWheel } from '../core/timeout-wheel.js';
import { WaitQueue } from '../core/wait-queue.js';
import type { OccamsError } from '../errors.js';
import { CallState, deliverError } from './call.js';
import type { PooledCall } from './pooled-call.js';

/**
 * Calls waiting in a pool for a connection with room: a bounded FIFO, each
 * call on a timeout wheel for its deadline while it waits (once sent, its
 * connection times it out). A call leaves through exactly one of `shift`
 * (sent), `remove` (cancelled), `failAll` or its timeout.
 */
export class PoolQueue {
  private readonly queue: WaitQueue<PooledCall>;
  private readonly wheel: TimeoutWheel<PooledCall>;

  constructor(max: number, clock: Clock, resolution: number, onTimeout: (pc: PooledCall) => void) {
    this.queue = new WaitQueue(max);
    this.wheel = new TimeoutWheel(clock, resolution, (pc) => {
      if (!this.queue.remove(pc)) return;
      pc.state = CallState.Done;
      onTimeout(pc);
    });
  }

  get length(): number {
    return this.queue.length;
  }
  get full(): boolean {
    return this.queue.full;
  }
  get max(): number {
    return this.queue.max;
  }

  push(pc: PooledCall): void {
    this.wheel.add(pc, pc.deadline);
    this.queue.push(pc);
  }

  /** The next call, taken out to be sent. */
  shift(): PooledCall | undefined {
    const pc = this.queue.shift();
    if (pc !== undefined) this.wheel.remove(pc);
    return pc;
  }

  /** Takes a waiting call out (cancelled); false when it was not waiting. */
  remove(pc: PooledCall): boolean {
    if (!this.queue.remove(pc)) return false;
    pc.state = CallState.Done;
    this.wheel.remove(pc);
    return true;
  }

  /** Fails every waiting call with `err`. */
  failAll(err: OccamsError): void {
    for (const pc of this.queue.drain()) {
      pc.state = CallState.Done;
      this.wheel.remove(pc);
      deliverError(pc.handler, err);
    }
  }

  stop(): void {
    this.wheel.stop();
  }
}
