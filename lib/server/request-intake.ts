import { ErrorCode, GoingAwayError, type OccamsError, stackless, TimeoutError } from '../errors.js';
import type { Clock } from '../core/clock.js';
import type { ConnectionFlow } from './connection-flow.js';
import type { Dispatch } from './dispatch.js';
import type { RpcLogger } from './logger.js';
import type { RequestTable } from './request-table.js';
import type { ResponseWriter } from './response-writer.js';
import type { ServerCounters } from './server-counters.js';
import type { NormalizedRpcServerOptions } from './server-options.js';
import { EndReason, type ServerRequest } from './server-request.js';
import { RequestProbe, requestsObserved } from './request-probe.js';

/** Bytes a waiting request is counted for beyond its msg and blob. */
export const HELD_OVERHEAD = 64;

/**
 * What becomes of a request one connection has read: run now (there is
 * room: under the in-flight cap, writes not backed up, nobody held before
 * it), held (up to maxQueuedPerConnection / maxQueuedBytes), or refused at
 * once with `rpc_unreachable` (it never ran). Held requests run as slots
 * free up; one whose time ran out while held never runs.
 */
export class RequestIntake {
  /** dispatched requests not yet released */
  inFlight = 0;
  private pumping = false;
  private refusedLogged = false;
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
    /** the connection, as its log lines name it; false once it is closed */
    private readonly port: { describe(): string; isOpen(): boolean },
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

  /** Whether a request of `size` bytes may wait; refuses it (answered, counted, logged once) when not. */
  mayHold(seq: number, isEvent: boolean, size: number, closing: boolean): boolean {
    const { requests, options } = this;
    if (closing) return this.refuse(seq, isEvent, 'the server is closing');
    if (requests.heldCount >= options.maxQueuedPerConnection || requests.heldBytes + size > options.maxQueuedBytes) {
      return this.refuse(seq, isEvent, `${requests.heldCount} requests (${requests.heldBytes} bytes) already wait`);
    }
    return true;
  }

  run(req: ServerRequest): void {
    this.inFlight++;
    req.dispatched = true;
    if (requestsObserved()) RequestProbe.dispatch(req, this.dispatchBound);
    else this.dispatch(req);
    if (!req.released && this.port.isOpen()) this.requests.running(req);
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
    if (!req.dispatched) return;
    this.inFlight--;
    if (this.requests.heldCount !== 0 && this.port.isOpen()) this.pumpHeld();
  }

  /** Dispatches held requests while there is room. */
  pumpHeld(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.inFlight < this.cap && this.flow.writable && this.port.isOpen()) {
        const req = this.requests.nextHeld();
        if (req === undefined) break;
        if (req.timeLimit > 0 && req.timerBucket === null) {
          // taken out of the wheel as expired, its turn in this very tick: it never runs
          this.expired(req);
          continue;
        }
        this.run(req);
      }
    } finally {
      this.pumping = false;
    }
    this.flow.update();
  }

  /** Its deadline or `handlerTimeout` passed (a stream's restarts with each item sent or credit received). */
  expired(req: ServerRequest): void {
    if (req.released) return;
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
      if (!req.dispatched) this.run(req);
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

  private refuse(seq: number, isEvent: boolean, why: string): false {
    this.counters.refused++;
    if (!this.refusedLogged) {
      this.refusedLogged = true;
      this.logger.warn(`connection ${this.port.describe()}: refusing requests (rpc_unreachable, not run): ${why}`);
    }
    if (!isEvent) this.out.writeCode(seq, ErrorCode.Unreachable);
    return false;
  }
}
