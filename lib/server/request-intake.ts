import type { Clock } from '../core/clock.js';
import { serverRequestRefused } from '../core/diagnostics.js';
import { ErrorCode, GoingAwayError, type OccamsError, stackless, TimeoutError } from '../errors.js';
import type { ConnectionFlow } from './connection-flow.js';
import type { Dispatch } from './dispatch.js';
import type { RpcLogger } from './logger.js';
import { EndReason, type NotRunCode } from './request-end.js';
import { RequestProbe, requestsObserved } from './request-probe.js';
import type { RequestTable } from './request-table.js';
import type { ResponseWriter } from './response-writer.js';
import type { ServerCounters } from './server-counters.js';
import { Refusal, type ServerLimiter } from './server-limiter.js';
import type { NormalizedRpcServerOptions } from './server-options.js';
import type { ServerRequest } from './server-request.js';

/** Bytes a waiting request is counted for beyond its msg and blob. */
export const HELD_OVERHEAD = 64;

/** What RequestIntake needs of its connection. */
export interface IntakePort {
  /** the connection, as its log lines name it */
  describe(): string;
  /** false once it is closed */
  isOpen(): boolean;
  /** what a request that never ran is answered: rpc_overloaded to peers that negotiated it, else rpc_unreachable */
  notRunCode(): NotRunCode;
}

/**
 * What becomes of a request one connection has read: past the connection
 * (room: under the in-flight cap, writes not backed up, nobody held before
 * it) to the server's concurrency limit (ServerLimiter: start now, wait in
 * the server's queue, or be refused at once, unrun), held on the
 * connection (up to maxQueuedPerConnection / maxQueuedBytes), or refused
 * at once (it never ran). Held requests go on as slots free up; one whose
 * deadline passed while it waited (either queue) never runs, and is
 * answered at once.
 */
export class RequestIntake {
  /** requests let past the connection's cap not yet released: running, or waiting for the concurrency limit */
  inFlight = 0;
  /** of those, waiting for the concurrency limit */
  waiting = 0;
  private pumping = false;
  private refusedLogged = false;
  private overloadLogged = false;
  private readonly cap: number;
  private readonly clock: Clock;
  private readonly dispatchBound = (req: ServerRequest): void => this.dispatch(req);

  constructor(
    private readonly requests: RequestTable,
    private readonly flow: ConnectionFlow,
    private readonly dispatcher: Dispatch,
    private readonly out: ResponseWriter,
    private readonly options: NormalizedRpcServerOptions,
    private readonly counters: ServerCounters,
    private readonly logger: RpcLogger,
    private readonly limiter: ServerLimiter | undefined,
    private readonly port: IntakePort,
  ) {
    this.cap = options.maxInFlightPerConnection;
    this.clock = options.clock;
  }

  /** A request read now would run at once. */
  get room(): boolean {
    return this.inFlight < this.cap && this.requests.heldCount === 0 && this.flow.writable;
  }

  /** Something is running or held. */
  get owed(): boolean {
    return this.inFlight > 0 || this.requests.heldCount > 0;
  }

  /**
   * Whether a request may wait; refuses it (answered,
   * counted, logged once) when not. The queue is full once it holds
   * maxQueuedPerConnection requests or maxQueuedBytes bytes, the same rule
   * ConnectionFlow pauses reading by: a request read while it is not full
   * waits even if it takes the queue past its bytes (by at most one frame),
   * and reading then pauses while writes are backed up. Refusing it instead
   * refused a large request to a peer that only kept its window (64 x 8
   * MiB in flight against 32 MiB), since reading had not paused for it.
   */
  mayHold(seq: number, isEvent: boolean, closing: boolean): boolean {
    const { requests, options } = this;
    if (closing) return this.refuse(seq, isEvent, 'the server is closing', true);
    if (requests.heldCount >= options.maxQueuedPerConnection || requests.heldBytes >= options.maxQueuedBytes) {
      return this.refuse(seq, isEvent, `${requests.heldCount} requests (${requests.heldBytes} bytes) already wait`, false);
    }
    return true;
  }

  /** Lets `req` past the connection (read at `now`): it starts, waits for the concurrency limit, or is refused unrun. */
  run(req: ServerRequest, now: number): void {
    const limiter = this.limiter;
    if (limiter === undefined || limiter.room || this.bypasses(req)) return this.start(req, now);
    const refusal = limiter.offer(req, now);
    if (refusal !== Refusal.None) return this.overloaded(req, refusal);
    this.inFlight++;
    this.waiting++;
    if (this.port.isOpen()) this.requests.running(req); // its deadline and handlerTimeout run while it waits
  }

  /** Dispatches `req` (read, or taken from the concurrency limit's queue, at `now`). */
  start(req: ServerRequest, now: number): void {
    const limiter = this.limiter;
    if (req.waiting) {
      limiter!.dequeue(req);
      this.waiting--;
    } else {
      this.inFlight++;
    }
    req.dispatched = true;
    if (limiter !== undefined && !this.bypasses(req)) limiter.started(req, now);
    if (requestsObserved()) RequestProbe.dispatch(req, this.dispatchBound);
    else this.dispatch(req);
    if (!req.released && this.port.isOpen()) this.requests.running(req);
  }

  /** `req`'s action bypasses the concurrency limit (`limitBypass`). */
  private bypasses(req: ServerRequest): boolean {
    const bypass = this.options.limitBypass;
    return bypass !== undefined && bypass(String(req.action));
  }

  /** `req` streams: a stream runs for as long as its consumer reads, so it leaves the concurrency limit. */
  streams(req: ServerRequest): void {
    this.limiter?.finished(req, false);
  }

  /** Hands `req` to the Dispatch; a throw or a rejected promise is answered rpc_internal_err. */
  private dispatch(req: ServerRequest): void {
    try {
      const result = this.dispatcher.dispatch(req);
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        (result as Promise<void>).then(undefined, (err: unknown) => this.handlerFailed(req, err));
      }
    } catch (err) {
      this.handlerFailed(req, err);
    }
  }

  hold(req: ServerRequest, size: number): void {
    this.requests.hold(req, size);
    if (!this.flow.writable) this.flow.update();
  }

  /** `req` freed its slot (answered or abandoned). */
  released(req: ServerRequest): void {
    if (req.dispatched) {
      this.inFlight--;
      if (this.limiter !== undefined) this.limiter.finished(req);
    } else if (req.waiting) {
      this.inFlight--;
      this.waiting--;
      this.limiter!.dequeue(req);
    } else {
      return;
    }
    if (this.requests.heldCount !== 0 && this.port.isOpen()) this.pumpHeld();
  }

  /** Dispatches held requests while there is room. */
  pumpHeld(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      let now = -1;
      while (this.inFlight < this.cap && this.flow.writable && this.port.isOpen()) {
        const req = this.requests.nextHeld();
        if (req === undefined) break;
        if (req.timeLimit > 0 && req.timerBucket === null) {
          // taken out of the wheel as expired, its turn in this very tick: it never runs
          this.expired(req);
          continue;
        }
        if (now < 0) now = this.clock.now();
        // its caller gave up while it was held (the wheel is coarse): it never runs
        if (req.deadline !== undefined && req.deadline <= now) this.drop(req);
        else this.run(req, now);
      }
    } finally {
      this.pumping = false;
    }
    this.flow.update();
  }

  /**
   * A request that waited (held, or for the concurrency limit) and can no
   * longer start in time: its deadline passed, or it waited past
   * maxQueueWait. Answered unrun at once (rpc_overloaded, or rpc_unreachable).
   */
  drop(req: ServerRequest): void {
    this.counters.expiredQueued++;
    this.notRun(req, 'expired');
  }

  /** Its deadline or `handlerTimeout` passed (a stream's restarts with each item sent or credit received). */
  expired(req: ServerRequest): void {
    if (req.released) return;
    // its caller's deadline passed while it still waited (held, or for the concurrency limit): it never ran, and says so
    if (!req.dispatched && req.deadline !== undefined) return this.drop(req);
    const out = req.out;
    if (out !== undefined) {
      const until = out.lastActive + req.timeLimit;
      if (until > this.clock.now()) return this.requests.refile(req, until);
    }
    if (req.deadline !== undefined) {
      req.abandon(EndReason.Deadline, stackless(TimeoutError, `deadline of ${String(req.action)} passed`), ErrorCode.Timeout);
    } else {
      req.abandon(EndReason.HandlerTimeout, stackless(TimeoutError, `${String(req.action)} ran past handlerTimeout ${this.options.handlerTimeout} ms`), ErrorCode.Timeout);
    }
  }

  /**
   * The peer is gone or sends nothing more: every request still owed an
   * answer is abandoned (handlers cancelled), the held ones first so that
   * freed slots do not start them. Events owe nothing and run on.
   */
  abandonOwed(gone: OccamsError): void {
    const owed = this.requests.owed().filter((r) => !r.isEvent);
    for (const req of owed) if (!req.dispatched) req.abandon(EndReason.Disconnect, gone, undefined);
    for (const req of owed) req.abandon(EndReason.Disconnect, gone, undefined);
  }

  /** The peer broke the protocol: requests read before it but not started never run (rpc_unreachable); events too. */
  refuseHeld(why: OccamsError): void {
    for (const req of this.requests.owed()) {
      if (!req.dispatched) req.abandon(EndReason.Disconnect, why, ErrorCode.Unreachable);
    }
  }

  /** The connection closed: requests are abandoned; events read still run (held ones now), each adopted by the server. */
  abandonAll(gone: OccamsError, adopt: () => void): void {
    for (const req of this.requests.clear()) {
      if (req.released) continue;
      if (!req.isEvent) {
        req.abandon(EndReason.Disconnect, gone, undefined);
        continue;
      }
      adopt();
      if (!req.dispatched) this.start(req, this.clock.now()); // held or waiting: read, so run (as the cap no longer applies)
    }
  }

  /** Streams still open past the graceful close's grace end with `code` (rpc_going_away; rpc_io_err for v1 peers). */
  endStreams(code: typeof ErrorCode.GoingAway | typeof ErrorCode.Io): void {
    for (const req of this.requests.owed()) {
      if (req.isStreaming && !req.released) req.abandon(EndReason.Shutdown, new GoingAwayError('the server closed this stream'), code);
    }
  }

  logHandlerError(req: ServerRequest, err: unknown): void {
    const e = err as Error;
    this.logger.error(`handler for ${String(req.action)} failed: ${e?.message ?? String(err)}`, e?.stack);
  }

  private handlerFailed(req: ServerRequest, err: unknown): void {
    this.logHandlerError(req, err);
    req.handlerThrew(err);
    req.internal(ErrorCode.Internal);
  }

  /** Past the connection's queue (or closing): refused before a request is made of it. */
  private refuse(seq: number, isEvent: boolean, why: string, closing: boolean): false {
    this.counters.refused++;
    const code = closing ? ErrorCode.Unreachable : this.port.notRunCode();
    if (!this.refusedLogged) {
      this.refusedLogged = true;
      this.logger.warn(`connection ${this.port.describe()}: refusing requests (${code}, not run): ${why}`);
    }
    if (!isEvent) this.out.writeCode(seq, code);
    return false;
  }

  /** Past the concurrency limit and its queue, or too late to start before its deadline: refused unrun. */
  private overloaded(req: ServerRequest, refusal: Refusal): void {
    this.counters.overloaded++;
    if (!this.overloadLogged) {
      this.overloadLogged = true;
      const s = this.limiter!.stats;
      this.logger.warn(
        `connection ${this.port.describe()}: refusing requests past the concurrency limit (${this.port.notRunCode()}, not run; limit ${s.limit}, ${s.queued} waiting, median latency ${s.latency} ms; further ones are counted, not logged)`,
      );
    }
    this.notRun(req, refusal === Refusal.Deadline ? 'deadline' : 'limit');
  }

  private notRun(req: ServerRequest, reason: 'limit' | 'deadline' | 'expired'): void {
    const code = this.port.notRunCode();
    if (serverRequestRefused.hasSubscribers) serverRequestRefused.publish({ request: req, reason, code });
    req.refuse(code);
  }
}
