import type { Clock, TimerHandle } from '../core/clock.js';
import type { ClientStream } from './client-stream.js';

/**
 * Closes a pool's connections beyond its minimum once they have carried
 * nothing for `idleTimeout` (a burst opened them; they are not needed now).
 * One coarse interval while the pool is above its minimum, never a timer
 * per connection.
 */
export class IdleCloser {
  /** when each connection was last seen with nothing in flight */
  private readonly idleSince = new Map<ClientStream, number>();
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly idleTimeout: number,
    private readonly min: number,
    /** the pool's open connections (it takes closed ones out itself) */
    private readonly streams: ClientStream[],
  ) {}

  /** The pool grew: watch it while it is above its minimum. */
  grew(): void {
    if (this.streams.length > this.min && this.idleTimeout > 0 && this.timer === undefined) {
      this.timer = this.clock.setInterval(() => this.sweep(), Math.min(this.idleTimeout, 1_000));
    }
  }

  /** A connection is gone. */
  forget(stream: ClientStream): void {
    this.idleSince.delete(stream);
  }

  stop(): void {
    this.clock.clear(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    const now = this.clock.now();
    if (this.streams.length <= this.min) return this.stop();
    for (const s of [...this.streams]) {
      if (s.load > 0) {
        this.idleSince.delete(s);
        continue;
      }
      const since = this.idleSince.get(s) ?? now;
      this.idleSince.set(s, since);
      if (now - since >= this.idleTimeout && this.streams.length > this.min) {
        this.streams.splice(this.streams.indexOf(s), 1);
        void s.close();
      }
    }
  }
}
