import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';

import type { Codec } from '../codec/codec.js';
import { MessageTooHeavyError } from '../codec/msgpack-check.js';
import type { Clock } from '../core/clock.js';
import { Connection } from '../core/connection.js';
import { goaway } from '../core/diagnostics.js';
import { FrameWriter } from '../core/frame-writer.js';
import { DecodeError, ErrorCode, IoError, type OccamsError } from '../errors.js';
import { ACTION_PING, EMPTY, FLAG_OK } from '../protocol/constants.js';
import {
  ACTION_CANCEL,
  ACTION_CREDIT,
  ACTION_DESCRIBE,
  ACTION_GOAWAY_ACK,
  ACTION_HELLO,
  ALL_FEATURES,
  FEATURE_CREDIT,
  FEATURE_GOAWAY,
  FEATURE_GOAWAY_ACK,
  FEATURE_OVERLOADED,
  FEATURE_RECORDS,
  FEATURE_STREAMING,
  FLAG_GOAWAY,
  FORMAT_EVENT,
  FORMAT_EXT_HEADER,
  FORMAT_RECORDS,
  MAX_STREAM_CREDIT,
  readDeadlineHeader,
  type RequestExtHeader,
} from '../protocol/extensions.js';
import { acceptHello, encodeHelloAnswer } from '../protocol/hello.js';
import { RequestDecoder, type RequestSink } from '../protocol/request-decoder.js';
import { ConnectionDrain } from './connection-drain.js';
import { ConnectionFlow } from './connection-flow.js';
import { type ConnectionView, ReadOnlyConnection } from './connection-view.js';
import type { Dispatch } from './dispatch.js';
import { applyDeadline, applyExtHeader, splitExtHeader } from './ext-header.js';
import type { RpcLogger } from './logger.js';
import type { OutboundStream } from './outbound-stream.js';
import type { EndReason } from './request-end.js';
import { HELD_OVERHEAD, RequestIntake } from './request-intake.js';
import { RequestTable } from './request-table.js';
import { ResponseWriter } from './response-writer.js';
import type { ServerConnectionStats, ServerCounters } from './server-counters.js';
import type { ServerLimiter } from './server-limiter.js';
export type { ServerConnectionState } from './server-counters.js';
import type { NormalizedRpcServerOptions } from './server-options.js';
import { ServerRequest } from './server-request.js';

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly counters: ServerCounters;
  /** the server-wide concurrency limit; undefined when it is off */
  readonly limiter: ServerLimiter | undefined;
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

/**
 * Bytes of frames after which the read slice is checked (besides every 32
 * frames): a few KiB of MessagePack can take a millisecond to decode (new
 * keys, record shapes), so larger frames check it each.
 */
const SLICE_CHECK_BYTES = 16 * 1024;

/** Requests that cannot be decoded logged per connection (each is answered rpc_decode all the same). */
const LOGGED_DECODE_FAILURES = 3;

const TRANSITIONS = { open: ['closing', 'closed'], closing: ['closed'], closed: [] } as const;

/**
 * One client connection on the server: one reader, one writer.
 *
 *   socket ─► RequestDecoder ─► control? (PING, CANCEL, CREDIT, GOAWAY_ACK) ─► handled at once
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
 * DrainPolicy's; what goes out goes through ResponseWriter (`out`).
 */
export class ServerConnection extends Connection<'open'> implements RequestSink {
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
  private readonly decoder: RequestDecoder;
  private readonly host: ConnectionHost;
  private readonly requests: RequestTable;
  private readonly drainer: ConnectionDrain;
  private readonly flow: ConnectionFlow;
  /** clock time of the chunk being decoded (one clock read per chunk, not per request); accept time before the first */
  private readAt: number;
  /** @internal extension features the client negotiated */
  features = 0;
  /**
   * The codec's session for this connection once the client was granted
   * FEATURE_RECORDS: decodes every FORMAT_RECORDS request, in order, whether
   * it runs, waits or is refused (it may describe a shape later ones use).
   */
  private records: Codec | undefined;
  /** a HELLO was answered (the first one decides the record sessions) */
  private helloAnswered = false;
  /** client id from the first request (informative) */
  clientId = 0;
  /** the socket's error, if it failed (the reason its close reports) */
  private socketError: Error | undefined = undefined;
  /** why the peer's input was refused (`violated`): the reason its close reports */
  private violation: IoError | undefined = undefined;
  private droppedLogged = false;
  private oversizedLogged = false;
  private decodeFailures = 0;
  /** clock time of the last request read (not a control frame) */
  private lastRequestAt = 0;
  /** frames read so far (wraps); every 32nd checks the read slice */
  private framesRead = 0;
  /** bytes of frames read since the read slice was last checked */
  private bytesRead = 0;

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
    this.readAt = options.clock.now();
    this.writer = new FrameWriter(
      socket,
      options.flushThreshold,
      () => this.flow.backpressure(),
      (bytes) => this.dropped(bytes),
    );
    this.out = new ResponseWriter(this.writer, this.codec, this.logger);
    this.decoder = new RequestDecoder(this, options.maxFrameSize);
    this.requests = new RequestTable(options.clock, options.timerResolution, (req) => this.intake.expired(req), options.maxInFlightPerConnection);
    this.drainer = new ConnectionDrain(socket, options.clock, options.drainGrace, options.streamCloseGrace, {
      isClosing: () => this.state === 'closing',
      owed: () => this.intake.owed,
      endStreams: () => this.endStreams(),
      flush: () => this.writer.flush(),
      destroy: () => this.destroy(this.violation),
    });
    this.flow = new ConnectionFlow(socket, this.decoder, this.requests, options, {
      pumpHeld: () => this.intake.pumpHeld(),
      kill: (reason, cause) => this.kill(reason, cause),
      violated: (reason, cause) => this.violated(reason, cause),
      flushed: () => this.writer.flushed,
      isOpen: () => this.state !== 'closed',
    });
    this.intake = new RequestIntake(this.requests, this.flow, dispatcher, this.out, options, this.counters, this.logger, host.limiter, {
      describe: () => this.describe(),
      isOpen: () => this.state !== 'closed',
      notRunCode: () => ((this.features & FEATURE_OVERLOADED) !== 0 ? ErrorCode.Overloaded : ErrorCode.Unreachable),
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
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
      features: this.features,
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
    return Math.max(0, now - this.readAt);
  }

  /**
   * ms since this connection last had work at `now`: nothing in flight or
   * held, nothing waiting to be written, no request read since (pings and
   * other control frames do not count); 0 when busy.
   */
  quietFor(now: number): number {
    if (this.state === 'closed' || this.intake.owed || this.socket.writableLength > 0) return 0;
    return Math.max(0, now - this.lastRequestAt);
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
    return (this.features & feature) !== 0;
  }

  /** False while writes are backed up past highWaterMark: streams wait, new requests are held. */
  get writable(): boolean {
    return this.flow.writable;
  }

  // ---- reading -------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.violation !== undefined) return; // reads nothing more (bytes the socket had already taken)
    this.readAt = this.options.clock.now();
    this.flow.reading(this.readAt);
    const policy = this.drainer.policy;
    if (policy.active) policy.read(this.readAt);
    const err = this.decoder.push(chunk);
    this.flow.worked(this.readAt, this.options.clock.now());
    if (err !== undefined) this.violated(`protocol violation: ${err.message}`, err);
  }

  /** RequestSink: one decoded frame. */
  onRequest(format: number, action: number | string, seq: number, clientId: number, msg: Buffer, blob: Buffer): void {
    if (this.state === 'closed' || this.violation !== undefined) return;
    // every 32 frames or 16 KiB: has this connection had its slice of the loop for this turn?
    this.bytesRead += msg.length + blob.length;
    if ((++this.framesRead & 31) === 0 || this.bytesRead >= SLICE_CHECK_BYTES) {
      this.bytesRead = 0;
      this.flow.spent(this.options.clock.now());
    }
    this.clientId = clientId;
    if (this.socket.writableEnded) {
      // our FIN is out (the peer said it was done): nothing it sends now can be answered, so nothing runs
      if (typeof action === 'number' && action !== ACTION_PING) return; // control frames (CANCEL, CREDIT, an ack) want no answer
      return this.kill(`protocol violation: request ${seq} (${String(action)}) after the server ended the connection`);
    }
    if (typeof action === 'number') {
      if (action === ACTION_PING) return this.writer.response(FLAG_OK, 0, seq, EMPTY, undefined);
      if (this.features !== 0) {
        if (action === ACTION_CANCEL) return void this.requests.lookup(seq)?.cancel();
        if (action === ACTION_CREDIT) return this.onCredit(seq, msg);
        if (action === ACTION_GOAWAY_ACK) return this.onGoawayAck();
      }
      if (action === ACTION_HELLO && this.options.extensions) return this.onHello(seq, msg);
      if (action === ACTION_DESCRIBE) return this.onDescribe(seq, format);
    }
    // seqs go up by one per request: one still owed an answer is never sent again (both would run, and only one could be cancelled or timed out)
    if (this.requests.owns(seq)) return this.violated(`protocol violation: request ${seq} (${String(action)}) repeats the seq of a request still in flight`);
    this.lastRequestAt = this.readAt;
    const isEvent = (format & FORMAT_EVENT) !== 0 && this.features !== 0;
    let header: RequestExtHeader | undefined;
    /** ms left of a header that is just `{d}` (every plain call's), read by hand; -1 otherwise */
    let left = -1;
    if ((format & FORMAT_EXT_HEADER) !== 0 && this.features !== 0) {
      left = readDeadlineHeader(msg);
      if (left >= 0) {
        msg = msg.subarray(4 + msg[0]!);
      } else {
        const split = splitExtHeader(msg, this.options.maxRequestWeight);
        if (split === undefined) return this.violated(`protocol violation: malformed extension header in request ${seq}`);
        header = split.header;
        msg = split.msg;
      }
    }
    let value: unknown;
    // (a v1 peer's format byte is ignored, as the reference says; a peer that said HELLO is held to what it negotiated)
    const inRecords = (format & FORMAT_RECORDS) !== 0 && this.features !== 0;
    if (inRecords) {
      const records = this.records;
      if (records === undefined) return this.violated(`protocol violation: request ${seq} is in a record session the connection did not negotiate`);
      try {
        value = msg.length === 0 ? undefined : records.decode(msg, this.options.maxRequestWeight);
      } catch (err) {
        // refused unread, the session intact (the codec took the shapes it defines): that request alone fails
        if (err instanceof MessageTooHeavyError) return this.undecodable(seq, action, isEvent, err);
        // the session's state is unknown from here: nothing later on it can be read
        return this.violated(
          `cannot decode request ${seq} (${String(action)}) in the record session: ${(err as Error).message}`,
          new DecodeError((err as Error).message, { cause: err }),
        );
      }
    }
    const intake = this.intake;
    const runNow = intake.room;
    let size = 0;
    const refusing = this.drainer.policy.refusing;
    if (!runNow || refusing) {
      size = msg.length + blob.length + HELD_OVERHEAD;
      if (!intake.mayHold(seq, isEvent, size, refusing)) return;
      if (blob.length !== 0) blob = Buffer.from(blob); // a view would pin the whole read buffer
    }
    if (!inRecords) {
      try {
        value = msg.length === 0 ? undefined : this.codec.decode(msg, this.options.maxRequestWeight);
      } catch (err) {
        return this.undecodable(seq, action, isEvent, err as Error);
      }
    }
    const req = new ServerRequest(this, action, seq, clientId, value, blob, isEvent);
    req.timeLimit = this.options.handlerTimeout;
    req.readAt = this.readAt;
    const credit = (this.features & FEATURE_CREDIT) !== 0;
    if (header !== undefined || credit) applyExtHeader(req, header, this.readAt, credit);
    if (left >= 0) applyDeadline(req, left, this.readAt);
    this.requests.own(req);
    if (runNow) intake.run(req, this.readAt);
    else intake.hold(req, size);
  }

  /** A request that cannot be decoded fails alone (rpc_decode); the first few of a connection are logged, so a flood of them is not a flood of lines. */
  private undecodable(seq: number, action: number | string, isEvent: boolean, err: Error): void {
    const n = ++this.decodeFailures;
    if (n <= LOGGED_DECODE_FAILURES) {
      const more = n === LOGGED_DECODE_FAILURES ? ' (further ones on this connection are not logged)' : '';
      this.logger.warn(`connection ${this.describe()}: cannot decode request ${seq} (${String(action)}): ${err.message}${more}`);
    }
    if (!isEvent) this.out.writeCode(seq, ErrorCode.Decode);
  }

  /**
   * RequestSink: a request past maxFrameSize is refused alone, unread: its
   * body is read past (never buffered), it is answered
   * `rpc_frame_too_large` (`rpc_decode` to a plain v1 peer, whose codes
   * have no such one; an event, nothing) and logged; the connection goes on.
   */
  onOversized(format: number, seq: number, size: number): boolean {
    if (this.state === 'closed' || this.violation !== undefined || this.socket.writableEnded || this.requests.owns(seq)) return false;
    this.counters.refused++;
    if (!this.oversizedLogged) {
      this.oversizedLogged = true;
      this.logger.warn(
        `connection ${this.describe()}: refusing request ${seq} of ${size} bytes, past maxFrameSize ${this.options.maxFrameSize} (rpc_frame_too_large, not read; further ones are not logged)`,
      );
    }
    if ((format & FORMAT_EVENT) === 0 || this.features === 0) this.out.writeCode(seq, this.features === 0 ? ErrorCode.Decode : ErrorCode.FrameTooLarge);
    return true;
  }

  private onHello(seq: number, msg: Buffer): void {
    const codec = this.codec;
    const features = acceptHello(msg, codec.session === undefined ? ALL_FEATURES & ~FEATURE_RECORDS : ALL_FEATURES, codec.name);
    if (this.helloAnswered) {
      // the first HELLO decided the record sessions: a later one neither starts nor stops them (frames of both kinds may be on the way)
      this.features = (features & ~FEATURE_RECORDS) | (this.features & FEATURE_RECORDS);
    } else {
      this.helloAnswered = true;
      this.features = features;
      if ((features & FEATURE_RECORDS) !== 0) {
        this.records = codec.session!();
        if (this.records !== undefined) this.out.useRecords(this.records);
        else this.features &= ~FEATURE_RECORDS;
      }
    }
    const answer = encodeHelloAnswer(this.features, this.options.maxInFlightPerConnection);
    this.writer.response(FLAG_OK, answer.length, seq, answer, undefined);
  }

  /** Reflection (reflection.ts): the server's description, or rpc_method_notfound when it is off; never a user handler. */
  private onDescribe(seq: number, format: number): void {
    if ((format & FORMAT_EVENT) !== 0 && this.features !== 0) return;
    const description = this.options.reflection ? this.host.describe() : undefined;
    if (description === undefined) return this.out.writeCode(seq, ErrorCode.MethodNotFound);
    this.out.sendValue(FLAG_OK, seq, description, undefined);
  }

  private onCredit(seq: number, msg: Buffer): void {
    const req = this.requests.lookup(seq);
    if (req === undefined || msg.length < 4 || !this.has(FEATURE_CREDIT)) return;
    req.credit = Math.min(req.credit + msg.readUInt32LE(0), 4 * MAX_STREAM_CREDIT);
    req.out?.credited();
  }

  private onGoawayAck(): void {
    // an ack answers our GOAWAY: outside a drain it would have us end a connection the peer goes on using
    if (!this.drainer.policy.active) return this.violated('protocol violation: GOAWAY_ACK without a GOAWAY');
    this.drainer.policy.acknowledged();
    this.drainer.maybeEnd();
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
