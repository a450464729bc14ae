import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';

import type { Codec } from '../codec/codec.js';
import type { Clock } from '../core/clock.js';
import { Connection } from '../core/connection.js';
import { goaway } from '../core/diagnostics.js';
import { FrameWriter } from '../core/frame-writer.js';
import { ErrorCode, IoError, type OccamsError } from '../errors.js';
import { EMPTY } from '../protocol/constants.js';
import { FEATURE_GOAWAY, FEATURE_GOAWAY_ACK, FEATURE_OVERLOADED, FEATURE_STREAMING, FLAG_GOAWAY } from '../protocol/extensions.js';
import { readSocket } from '../transport/socket-reads.js';
import { ConnectionDrain } from './connection-drain.js';
import { ConnectionFlow } from './connection-flow.js';
import { type ConnectionView, ReadOnlyConnection } from './connection-view.js';
import type { Dispatch } from './dispatch.js';
import type { RpcLogger } from './logger.js';
import type { OutboundStream } from './outbound-stream.js';
import type { ReadTurns } from './read-turns.js';
import type { EndReason } from './request-end.js';
import { RequestIntake } from './request-intake.js';
import { RequestReader } from './request-reader.js';
import { RequestTable } from './request-table.js';
import { ResponseWriter } from './response-writer.js';
import type { ServerConnectionStats, ServerCounters } from './server-counters.js';
import type { ServerLimiter } from './server-limiter.js';
export type { ServerConnectionState } from './server-counters.js';
import type { NormalizedRpcServerOptions } from './server-options.js';
import type { ServerRequest } from './server-request.js';

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly counters: ServerCounters;
  /** the server-wide concurrency limit; undefined when it is off */
  readonly limiter: ServerLimiter | undefined;
  /** which connections read lately (a connection that overstays its turn sits out only for others) */
  readonly turns: ReadTurns;
  /** the connection is gone */
  forget(conn: ServerConnection): void;
  /** a closed connection leaves an event running: the server's close waits for it */
  adoptEvent(): void;
  eventDone(): void;
  /** the DESCRIBE answer (reflection on), or undefined (off) */
  describe(): unknown;
}

/** ms the answers owed to a peer that broke the protocol get to go out before its connection is destroyed. */
export const VIOLATION_GRACE = 1_000;

const TRANSITIONS = { open: ['closing', 'closed'], closing: ['closed'], closed: [] } as const;

/**
 * One client connection on the server: one reader (RequestReader), one writer.
 *
 *   socket ─► RequestReader ─► control? (PING, CANCEL, CREDIT, GOAWAY_ACK) ─► handled at once
 *                                   │ a request
 *                                   ▼
 *           room? (inFlight < cap, writes not backed up, nobody held) ─yes─► Dispatch
 *                                   │ no                                     │
 *                                   ▼                                        ▼
 *           held: Fifo, <= maxQueuedPerConnection / maxQueuedBytes    ServerRequest ─► FrameWriter ─► socket
 *           past that: refused at once (rpc_unreachable, it never ran)
 *
 * Reading never stops for the cap: pings are answered, CANCELs and CREDITs
 * applied and a peer's FIN noticed while handlers are stuck (ConnectionFlow
 * has the rules for pausing reads and waiting for writes).
 *
 * Invariants: RequestIntake's `inFlight` counts dispatched requests not
 * yet released (it also decides run, hold or refuse); every request owed something past its dispatch, or held, is in `requests`
 * (RequestTable: by seq, and on one timeout wheel per connection for
 * deadlines and `handlerTimeout`). The graceful close's decisions are
 * DrainPolicy's; what goes out goes through ResponseWriter (`out`); what
 * comes in, and what the client negotiated, is RequestReader's (`reader`).
 * This class holds the lifecycle: stats, the request port (RequestPort: it
 * is handed to RequestReader as one; not declared with `implements`, whose
 * members are internal and stripped from the published types), and the
 * ways a connection ends (graceful close, protocol violation, the peer's
 * FIN, abort).
 */
export class ServerConnection extends Connection<'open'> {
  readonly id: number;
  readonly options: NormalizedRpcServerOptions;
  readonly codec: Codec;
  readonly clock: Clock;
  readonly streamBufferBytes: number;
  /** what its requests' handlers see of it */
  readonly view: ConnectionView;
  /** responses go out through it (ServerRequest, OutboundStream) */
  readonly out: ResponseWriter;
  private readonly intake: RequestIntake;
  private readonly logger: RpcLogger;
  private readonly counters: ServerCounters;
  private readonly writer: FrameWriter;
  private readonly reader: RequestReader;
  private readonly host: ConnectionHost;
  private readonly requests: RequestTable;
  private readonly drainer: ConnectionDrain;
  private readonly flow: ConnectionFlow;
  /** the socket's error, if it failed (the reason its close reports) */
  private socketError: Error | undefined = undefined;
  /** why the peer's input was refused (`violated`): the reason its close reports */
  private violation: IoError | undefined = undefined;
  private droppedLogged = false;

  constructor(id: number, socket: Socket, dispatcher: Dispatch, options: NormalizedRpcServerOptions, host: ConnectionHost) {
    super(`connection #${id}`, TRANSITIONS, 'open', socket, 'server', undefined);
    this.id = id;
    this.options = options;
    this.codec = options.codec;
    this.clock = options.clock;
    this.streamBufferBytes = options.streamBufferBytes;
    this.view = new ReadOnlyConnection(this);
    this.logger = options.logger;
    this.host = host;
    this.counters = host.counters;
    this.writer = new FrameWriter(
      socket,
      options.flushThreshold,
      () => this.flow.backpressure(),
      (bytes) => this.dropped(bytes),
    );
    this.out = new ResponseWriter(this.writer, this.codec, this.logger);
    this.requests = new RequestTable(options.clock, options.timerResolution, (req) => this.intake.expired(req), options.maxInFlightPerConnection);
    this.drainer = new ConnectionDrain(socket, options.clock, options.drainGrace, options.streamCloseGrace, {
      isClosing: () => this.state === 'closing',
      owed: () => this.intake.owed,
      endStreams: () => this.endStreams(),
      flush: () => this.writer.flush(),
      destroy: () => this.destroy(this.violation),
    });
    const reader = new RequestReader(socket, this, this.writer, this.out, this.requests, this.drainer, options, this.counters, this.logger, {
      describe: () => this.describe(),
      describeServer: () => host.describe(),
      violated: (reason, cause) => this.violated(reason, cause),
      kill: (reason) => this.kill(reason),
    });
    this.reader = reader;
    this.flow = new ConnectionFlow(
      socket,
      reader.decoder,
      this.requests,
      options,
      {
        pumpHeld: () => this.intake.pumpHeld(),
        kill: (reason, cause) => this.kill(reason, cause),
        violated: (reason, cause) => this.violated(reason, cause),
        flushed: () => this.writer.flushed,
        isOpen: () => this.state !== 'closed',
      },
      host.turns,
      this.counters,
    );
    this.intake = new RequestIntake(this.requests, this.flow, dispatcher, this.out, options, this.counters, this.logger, host.limiter, {
      describe: () => this.describe(),
      isOpen: () => this.state !== 'closed',
      notRunCode: () => ((reader.features & FEATURE_OVERLOADED) !== 0 ? ErrorCode.Overloaded : ErrorCode.Unreachable),
    });
    reader.flow = this.flow;
    reader.intake = this.intake;
    socket.setNoDelay(true);
    readSocket(socket, (chunk) => reader.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err) => {
      this.socketError = err;
      this.logger.warn(`connection ${this.describe()} error: ${err.message}`);
    });
    socket.on('end', () => this.onPeerEnd());
    socket.on('close', () => {
      const err = this.socketError;
      this.terminate(err === undefined ? this.violation : new IoError(`connection error: ${err.message}`, { cause: err }));
    });
    if (options.readTimeout > 0) {
      socket.setTimeout(options.readTimeout, () => this.flow.readTimeout());
    }
    this.announce();
  }

  /** @internal extension features the client negotiated (0: a plain v1 peer; handlers read `view.features`) */
  get features(): number {
    return this.reader.features;
  }
  /** client id from the latest request (informative) */
  get clientId(): number {
    return this.reader.clientId;
  }

  /** The client's TLS certificate subject when the connection is TLS. */
  get peerCertificate(): PeerCertificate | undefined {
    const s = this.socket as TLSSocket;
    return typeof s.getPeerCertificate === 'function' ? s.getPeerCertificate() : undefined;
  }
  get stats(): ServerConnectionStats {
    let streamBuffer = 0;
    for (const req of this.requests.owed()) streamBuffer += req.out?.queuedBytes ?? 0;
    return {
      inFlight: this.intake.inFlight - this.intake.waiting,
      queued: this.requests.heldCount,
      waiting: this.intake.waiting,
      features: this.reader.features,
      state: this.state,
      writeBuffer: this.socket.writableLength,
      streamBuffer,
    };
  }

  /**
   * ms this connection has been idle at `now`: nothing in flight or held,
   * nothing waiting to be written, no byte received since; 0 when busy.
   */
  idleFor(now: number): number {
    if (this.state !== 'open' || this.intake.owed || this.socket.writableLength > 0) return 0;
    return Math.max(0, now - this.reader.readAt);
  }

  /**
   * ms since this connection last had work at `now`: nothing in flight or
   * held, nothing waiting to be written, no request read since (pings and
   * other control frames do not count); 0 when busy.
   */
  quietFor(now: number): number {
    if (this.state === 'closed' || this.intake.owed || this.socket.writableLength > 0) return 0;
    return Math.max(0, now - this.reader.lastRequestAt);
  }

  /** Quiet a while: gives back the write buffers a burst grew, and the scratch of large results (RpcServer's idle sweep). */
  trim(): void {
    if (this.state === 'closed') return;
    this.writer.trim();
    this.out.release();
  }

  /** Bytes this connection's writer holds in its buffers, and the scratch of large results (stats, tests). */
  get writeBuffers(): number {
    return this.writer.heldBytes + this.out.heldBytes;
  }

  /** True when the client negotiated this extension feature. */
  has(feature: number): boolean {
    return (this.reader.features & feature) !== 0;
  }

  /** False while writes are backed up past highWaterMark: streams wait, new requests are held. */
  get writable(): boolean {
    return this.flow.writable;
  }

  /** @internal */
  logHandlerError(req: ServerRequest, err: unknown): void {
    this.intake.logHandlerError(req, err);
  }

  // ---- called by ServerRequest and OutboundStream ---------------------------

  /** A stream waits for the socket to drain. */
  waitForRoom(out: OutboundStream): void {
    this.flow.waitForRoom(out);
  }

  /** @internal the largest per-stream queue seen (stats) */
  noteBuffered(bytes: number): void {
    if (bytes > this.counters.peakStreamBuffer) this.counters.peakStreamBuffer = bytes;
  }

  /** @internal A request ended the stream layer's way: counted. */
  count(why: EndReason, dispatched: boolean): void {
    this.counters.ended[why]++;
    if (!dispatched) this.counters.droppedQueued++;
  }

  /** @internal The server's concurrency limit starts a request of this connection that waited for it. */
  startWaiting(req: ServerRequest, now: number): void {
    this.intake.start(req, now);
  }

  /** @internal A request of this connection that waited for the concurrency limit can no longer start in time: answered unrun. */
  dropWaiting(req: ServerRequest): void {
    this.intake.drop(req);
  }

  /** @internal `req` began to stream: it leaves the concurrency limit. */
  streams(req: ServerRequest): void {
    this.intake.streams(req);
  }

  /** A request's slot is free (answered, or abandoned). Called once per request. */
  release(req: ServerRequest): void {
    if (this.state === 'closed' && req.isEvent) this.host.eventDone(); // one the server adopted at abort
    this.requests.forget(req);
    this.intake.released(req);
    this.drainer.maybeEnd();
  }

  // ---- flow control --------------------------------------------------------

  private onDrain(): void {
    this.flow.drained();
    this.drainer.maybeEnd();
  }

  // ---- ending --------------------------------------------------------------

  /** Graceful: see `beginClose`. */
  drain(): void {
    void this.close();
  }

  /**
   * Graceful close. GOAWAY to a peer that speaks it; reading goes on, so
   * every request already sent is read and answered; when the peer is done
   * sending is DrainPolicy's call (its ack or FIN; for plain v1 peers, quiet
   * for `drainGrace`, with further requests refused past 4 x drainGrace).
   * Streams still open after `streamCloseGrace` end with `rpc_going_away`.
   * Then FIN once nothing is owed (ConnectionDrain).
   */
  protected beginClose(): undefined {
    const sendGoaway = this.has(FEATURE_GOAWAY);
    if (sendGoaway) {
      this.writer.response(FLAG_GOAWAY, 0, 0, EMPTY, undefined);
      if (goaway.hasSubscribers) goaway.publish({ side: 'server', connection: this });
    }
    this.drainer.begin(sendGoaway && this.has(FEATURE_GOAWAY_ACK));
    return undefined; // ends when the socket closes
  }

  /** Streams still open after the grace end with a coded error (rpc_io_err for v1 peers). */
  private endStreams(): void {
    this.intake.endStreams(this.has(FEATURE_STREAMING) ? ErrorCode.GoingAway : ErrorCode.Io);
  }

  /**
   * The peer broke the protocol: logged with `reason`; nothing more is
   * read (the rest of the chunk included); requests read before the
   * violation that have not started are refused (rpc_unreachable, never
   * run); those running answer within VIOLATION_GRACE, their answers
   * flushed; then FIN (GOAWAY first to a peer that speaks it), and the
   * connection is destroyed at VIOLATION_GRACE at the latest. The server
   * goes on.
   */
  private violated(reason: string, cause?: OccamsError): void {
    if (this.state === 'closed' || this.violation !== undefined) return;
    this.logger.warn(`closing connection ${this.describe()}: ${reason}${cause ? ` [${cause.code}]` : ''}`);
    this.violation = new IoError(`closed by the server: ${reason}`, { cause });
    this.reader.stop();
    this.flow.stopReading();
    this.intake.refuseHeld(this.violation);
    if (this.state === 'open') void this.close();
    this.drainer.cutOff(VIOLATION_GRACE);
  }

  /** Bytes written after the socket ended: nothing should be (requests after our FIN never run); said once if it happens. */
  private dropped(bytes: number): void {
    if (this.droppedLogged || this.state === 'closed') return;
    this.droppedLogged = true;
    this.logger.warn(`connection ${this.describe()}: ${bytes} bytes of answers dropped, the connection's write side had ended`);
  }

  /** Closes this connection at once (logged); the server goes on. */
  kill(reason: string, cause?: OccamsError): void {
    if (this.state === 'closed') return;
    this.logger.warn(`closing connection ${this.describe()}: ${reason}${cause ? ` [${cause.code}]` : ''}`);
    this.destroy(new IoError(`closed by the server: ${reason}`, { cause }));
  }

  /**
   * The peer's FIN: it sends nothing more and, for all we know, reads
   * nothing more (a client that destroyed its socket looks the same), so
   * every handler still owing it an answer is cancelled now. Events were
   * read and owe nothing: they run on. (Node ends our side too; 'close'
   * follows.)
   */
  private onPeerEnd(): void {
    this.drainer.policy.acknowledged();
    this.intake.abandonOwed(new IoError('the client closed the connection'));
  }

  /**
   * The socket is gone: every handler still owing an answer is cancelled
   * (signal aborted, Observable unsubscribed). Events that were read still
   * run (held ones are dispatched now); the server keeps count of them so
   * that its graceful close waits for them.
   */
  protected abort(): void {
    this.reader.stop();
    this.out.closed = true;
    this.socket.destroy();
    this.flow.stop();
    this.drainer.stop();
    this.intake.abandonAll(new IoError('connection closed'), () => this.host.adoptEvent());
    this.host.forget(this);
  }

  describe(): string {
    return `#${this.id} ${this.socket.remoteAddress ?? 'unix'}${this.socket.remotePort ? `:${this.socket.remotePort}` : ''}`;
  }
}
