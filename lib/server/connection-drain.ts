import type { Socket } from 'node:net';

import type { Clock, TimerHandle } from '../core/clock.js';
import { DrainPolicy } from './drain-policy.js';

/** A server-ended connection whose peer has not closed its side this long after our FIN is destroyed. */
export const END_TIMEOUT = 1_000;

/** What ConnectionDrain needs of its connection. */
export interface DrainPort {
  /** the connection is still closing (not closed) */
  isClosing(): boolean;
  /** something is still running or held */
  owed(): boolean;
  /** streams still open past the grace end now */
  endStreams(): void;
  /** flush what is written: FIN follows */
  flush(): void;
  destroy(): void;
}

/**
 * The graceful close of one server connection, on the clock: DrainPolicy
 * decides when the peer is done sending (asked on a coarse tick); once it
 * is and nothing is owed, our FIN goes out; a peer that does not close its
 * side within END_TIMEOUT is destroyed.
 */
export class ConnectionDrain {
  readonly policy: DrainPolicy;
  private tickTimer: TimerHandle | undefined;
  private endTimer: TimerHandle | undefined;
  private cutOffTimer: TimerHandle | undefined;
  private readonly tickBound = (): void => this.tick();

  constructor(
    private readonly socket: Socket,
    private readonly clock: Clock,
    private readonly grace: number,
    streamGrace: number,
    private readonly port: DrainPort,
  ) {
    this.policy = new DrainPolicy(grace, streamGrace);
  }

  /** The close begins; `acknowledges`: the peer will send GOAWAY_ACK. */
  begin(acknowledges: boolean): void {
    this.policy.begin(this.clock.now(), acknowledges);
    const every = Math.max(5, Math.min(50, Math.floor(this.grace / 5)));
    this.tickTimer = this.clock.setInterval(this.tickBound, every);
    this.tick();
  }

  /**
   * The peer broke the protocol (reading has stopped): it is done sending;
   * what is owed has `ms` to go out, then the connection is destroyed.
   */
  cutOff(ms: number): void {
    this.policy.acknowledged();
    this.cutOffTimer ??= this.clock.setTimeout(() => this.port.destroy(), ms);
    this.maybeEnd();
  }

  /** Ends the connection (FIN) once it is closing, the peer is done and nothing is owed. */
  maybeEnd(): void {
    if (!this.policy.active || !this.policy.peerDone || this.port.owed() || this.socket.writableEnded) return;
    this.clock.clear(this.tickTimer);
    this.tickTimer = undefined;
    this.port.flush();
    this.socket.end();
    this.socket.once('finish', () => {
      if (this.port.isClosing()) this.endTimer = this.clock.setTimeout(() => this.port.destroy(), END_TIMEOUT);
    });
  }

  stop(): void {
    this.clock.clear(this.tickTimer);
    this.clock.clear(this.endTimer);
    this.clock.clear(this.cutOffTimer);
  }

  private tick(): void {
    if (!this.port.isClosing()) return;
    if (this.policy.tick(this.clock.now(), this.port.owed())) this.port.endStreams();
    this.maybeEnd();
  }
}
