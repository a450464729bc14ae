import type { Clock, TimerHandle } from '../core/clock.js';

/** What the heartbeat needs from its connection (after nats.js heartbeats.ts). */
export interface HeartbeatPort {
  /** Sends one PING; its answer arrives as ordinary traffic (`received()`). */
  ping(): void;
  /**
   * Pings unanswered for `interval × maxMissed`: the peer is frozen, busy or
   * gone. Take no new work; what is in flight keeps its own deadlines.
   */
  suspect(silentMs: number): void;
  /** Something arrived from a suspect peer: it is alive after all. */
  alive(): void;
  /** Silent past the keepalive limit although PINGs were outstanding: the peer is gone. */
  dead(silentMs: number): void;
}

/** Checks per interval: the finer, the closer detection is to its bound. */
const CHECKS_PER_INTERVAL = 4;

/**
 * Liveness of one connection, in three steps:
 *
 *   healthy ──silence ≥ interval × maxMissed, PING outstanding──► suspect
 *      ▲                                                          │   │
 *      └──────────────── anything received ◄──────────────────────┘   │
 *                                     silence ≥ keepalive ─► dead ◄───┘
 *
 * Anything received counts as life, so a busy connection sends no pings.
 * After `interval` ms of silence a PING goes out (one per interval while
 * silence lasts, suspect or not). A frozen or blackholed peer (SIGSTOP, a
 * paused VM, a partition) is suspect within `interval × maxMissed` of its
 * last word, whatever the traffic, or sooner when a call's deadline passes
 * with a PING unanswered (`deadlinePassed`); a peer whose event loop is only busy
 * answers later and is healthy again. `keepalive` (gRPC's keepalive
 * timeout) bounds how long a suspect connection is kept; a `keepalive` at
 * or below `interval × maxMissed` makes the first bound final (no suspect step).
 */
export class Heartbeat {
  private lastReceived: number;
  private lastPingSent = -Infinity;
  private timer: TimerHandle | undefined;
  private readonly step: number;
  private readonly suspectAfter: number;
  /** invariant: true only between port.suspect() and the next received() or dead() */
  private suspected = false;

  constructor(
    private readonly port: HeartbeatPort,
    private readonly clock: Clock,
    readonly interval: number,
    readonly maxMissed: number,
    /** silence after which a suspect connection is dead, ms; default: interval × maxMissed (no suspect step) */
    readonly keepalive = interval * maxMissed,
  ) {
    this.lastReceived = clock.now();
    this.step = Math.max(1, Math.floor(interval / CHECKS_PER_INTERVAL));
    this.suspectAfter = interval * maxMissed;
  }

  /** When something last arrived (clock ms). */
  get lastWord(): number {
    return this.lastReceived;
  }
  /** Pings unanswered for `interval × maxMissed`, and nothing received since. */
  get suspect(): boolean {
    return this.suspected;
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
    if (this.suspected) {
      this.suspected = false;
      this.port.alive();
    }
  }

  /**
   * A call's deadline passed on this connection. With a PING unanswered for
   * at least an interval that is evidence enough: suspect now rather than
   * at `interval × maxMissed` (a frozen server's callers would otherwise
   * send their next calls to it, and wait a whole deadline again).
   */
  deadlinePassed(): void {
    if (this.suspected || this.timer === undefined) return;
    const now = this.clock.now();
    if (this.lastPingSent > this.lastReceived && now - this.lastReceived >= this.interval) {
      this.suspected = true;
      this.port.suspect(now - this.lastReceived);
    }
  }

  /** One step passed. */
  check(): void {
    const now = this.clock.now();
    const silent = now - this.lastReceived;
    const pinged = this.lastPingSent > this.lastReceived;
    // the last check before a bound decides, so that detection never passes it
    if (pinged && silent + this.step > Math.max(this.keepalive, this.suspectAfter)) {
      this.stop();
      this.suspected = false;
      this.port.dead(silent);
      return;
    }
    if (pinged && !this.suspected && silent + this.step > this.suspectAfter) {
      this.suspected = true;
      this.port.suspect(silent);
      if (this.timer === undefined) return; // the port closed the connection
    }
    if (silent + this.step > this.interval && now - this.lastPingSent + this.step > this.interval) {
      this.lastPingSent = now;
      this.port.ping();
    }
  }
}
