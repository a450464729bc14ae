import type { Clock, TimerHandle } from '../core/clock.js';

/** What the heartbeat needs from its connection (after nats.js heartbeats.ts). */
export interface HeartbeatPort {
  /** Sends one PING; its answer arrives as ordinary traffic (`received()`). */
  ping(): void;
  /** `missed` pings went unanswered: the peer is gone or frozen. */
  dead(missed: number): void;
}

/**
 * Liveness of one connection: every `interval` ms in which nothing arrived,
 * a PING goes out; after `maxMissed` intervals with a PING outstanding and
 * nothing received, the port is told the peer is dead. Traffic of any kind
 * counts as life, so a busy connection sends no pings; a connection waiting
 * on answers from a frozen peer receives nothing and is caught within
 * `interval × (maxMissed + 1)`.
 */
export class Heartbeat {
  private lastReceived: number;
  private lastPingSent = 0;
  private missed = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly port: HeartbeatPort,
    private readonly clock: Clock,
    readonly interval: number,
    readonly maxMissed: number,
  ) {
    this.lastReceived = clock.now();
  }

  start(): void {
    if (this.interval > 0 && this.timer === undefined) this.timer = this.clock.setInterval(() => this.check(), this.interval);
  }

  stop(): void {
    this.clock.clear(this.timer);
    this.timer = undefined;
  }

  /** Call on every chunk received. */
  received(now: number): void {
    this.lastReceived = now;
    this.missed = 0;
  }

  /** One interval passed. */
  check(): void {
    const now = this.clock.now();
    // timers drift by a few ms: a check a little early still counts
    const interval = this.interval * 0.9;
    if (now - this.lastReceived < interval || now - this.lastPingSent < interval) return;
    if (this.lastPingSent > this.lastReceived && ++this.missed >= this.maxMissed) {
      this.stop();
      this.port.dead(this.missed);
      return;
    }
    this.lastPingSent = now;
    this.port.ping();
  }
}
