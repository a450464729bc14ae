import type { Clock, TimerHandle } from '../core/clock.js';

/** What the heartbeat needs from its connection (after nats.js heartbeats.ts). */
export interface HeartbeatPort {
  /** Sends one PING; its answer arrives as ordinary traffic (`received()`). */
  ping(): void;
  /** Nothing arrived for `silentMs` although a PING was outstanding: the peer is gone or frozen. */
  dead(silentMs: number): void;
}

/** Checks per interval: the finer, the closer detection is to its bound. */
const CHECKS_PER_INTERVAL = 4;

/**
 * Liveness of one connection. Anything received counts as life, so a busy
 * connection sends no pings. After `interval` ms of silence a PING goes out
 * (one per interval while silence lasts); once the silence reaches
 * `interval × maxMissed` with a PING outstanding, the port is told the peer
 * is dead. This holds while calls are in flight too: a frozen peer (SIGSTOP,
 * a paused VM, a partition) is caught within `interval × maxMissed` of its
 * last word, whatever the traffic.
 */
export class Heartbeat {
  private lastReceived: number;
  private lastPingSent = -Infinity;
  private timer: TimerHandle | undefined;
  private readonly step: number;

  constructor(
    private readonly port: HeartbeatPort,
    private readonly clock: Clock,
    readonly interval: number,
    readonly maxMissed: number,
  ) {
    this.lastReceived = clock.now();
    this.step = Math.max(1, Math.floor(interval / CHECKS_PER_INTERVAL));
  }

  start(): void {
    if (this.interval > 0 && this.timer === undefined) this.timer = this.clock.setInterval(() => this.check(), this.step);
  }

  stop(): void {
    this.clock.clear(this.timer);
    this.timer = undefined;
  }

  /** Call on every chunk received. */
  received(now: number): void {
    this.lastReceived = now;
  }

  /** One step passed. */
  check(): void {
    const now = this.clock.now();
    const silent = now - this.lastReceived;
    // the last check before the bound decides, so that detection never passes it
    if (this.lastPingSent > this.lastReceived && silent + this.step > this.interval * this.maxMissed) {
      this.stop();
      this.port.dead(silent);
      return;
    }
    if (silent + this.step > this.interval && now - this.lastPingSent + this.step > this.interval) {
      this.lastPingSent = now;
      this.port.ping();
    }
  }
}
