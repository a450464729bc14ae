import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Codec } from '../codec/codec.js';
import type { TimerHandle } from '../core/clock.js';
import { FrameWriter } from '../core/frame-writer.js';
import { Lifecycle } from '../core/lifecycle.js';
import { ErrorCode, GoingAwayError, IoError, OccamsError, TimeoutError } from '../errors.js';
import { ACTION_PING, EMPTY, FLAG_ERROR_BYTES, FLAG_OK } from '../protocol/constants.js';
import { acceptHello, encodeHelloAnswer, helloCodec } from '../protocol/hello.js';
import {
  ACTION_CANCEL,
  ACTION_CREDIT,
  ACTION_GOAWAY_ACK,
  ACTION_HELLO,
  DEFAULT_STREAM_CREDIT,
  FEATURE_CREDIT,
  FEATURE_GOAWAY,
  FEATURE_GOAWAY_ACK,
  FEATURE_STREAMING,
  FLAG_GOAWAY,
  FORMAT_EVENT,
  FORMAT_EXT_HEADER,
  MAX_STREAM_CREDIT,
  type RequestExtHeader,
} from '../protocol/extensions.js';
import { RequestDecoder, type RequestSink } from '../protocol/request-decoder.js';
import type { Dispatch } from './dispatch.js';
import { DrainPolicy } from './drain-policy.js';
import type { RpcLogger } from './logger.js';
import type { OutboundStream } from './outbound-stream.js';
import type { ConnectionHost, ServerCounters } from './server-counters.js';
import { RequestTable } from './request-table.js';
import type { NormalizedRpcServerOptions } from './server-options.js';
import { EndReason, ServerRequest, codeBytes } from './server-request.js';
import { WriteStallWatch } from './write-stall.js';

/** Bytes a waiting request is counted for beyond its msg and blob. */
const HELD_OVERHEAD = 64;
/** A server-ended connection whose peer has not closed its side this long after our FIN is destroyed. */
export const END_TIMEOUT = 1_000;

/** `closing` is the graceful drain: GOAWAY sent, still reading, owed answers still go out. */
export type ServerConnectionState = 'open' | 'closing' | 'closed';

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
 * applied and a peer's FIN noticed while handlers are stuck. Reading
 * pauses only while writes are backed up AND the held queue is full (a
 * peer that neither reads nor stops sending); its close is then noticed by
 * the failing writes, and `writeTimeout` cuts it.
 *
 * Invariants: `inFlight` counts dispatched requests not yet released;
 * every request owed something past its dispatch, or held, is in `requests`
 * (RequestTable: by seq, and on one timeout wheel per connection for
 * deadlines and `handlerTimeout`). The graceful close's decisions are
 * DrainPolicy's; the stall cut-off is WriteStallWatch's.
 */
export class ServerConnection extends Lifecycle<'open'> implements RequestSink {
  readonly id: number;
  readonly socket: Socket;
  readonly options: NormalizedRpcServerOptions;
  readonly codec: Codec;
  private readonly dispatcher: Dispatch;
  private readonly logger: RpcLogger;
  private readonly counters: ServerCounters;
  private readonly writer: FrameWriter;
  private readonly decoder: RequestDecoder;
  private readonly host: ConnectionHost;
  private readonly requests: RequestTable;
  private readonly drainPolicy: DrainPolicy;
  private readonly stall: WriteStallWatch;
  /** clock time of the chunk being decoded (one clock read per chunk, not per request); accept time before the first */
  private readAt: number;
  /** streams waiting for the socket to drain */
  private readonly waitingForRoom = new Set<OutboundStream>();
  private inFlight = 0;
  private pumping = false;
  private features = 0;
  private writeBlocked = false;
  private readPaused = false;
  private drainTimer: TimerHandle | undefined;
  private endTimer: TimerHandle | undefined;
  private refusedLogged = false;
  private readonly checkDrainBound = (): void => this.checkDrain();
  /** client id from the first request (informative) */
  clientId = 0;

  constructor(
    id: number,
    socket: Socket,
    dispatcher: Dispatch,
    options: NormalizedRpcServerOptions,
    host: ConnectionHost,
  ) {
    super(`connection #${id}`, TRANSITIONS, 'open');
    this.id = id;
    this.socket = socket;
    this.dispatcher = dispatcher;
    this.options = options;
    this.codec = options.codec;
    this.logger = options.logger;
    this.host = host;
    this.counters = host.counters;
    this.readAt = options.clock.now();
    this.writer = new FrameWriter(socket, options.flushThreshold, () => this.onWriteBackpressure());
    this.decoder = new RequestDecoder(this, options.maxFrameSize);
    this.requests = new RequestTable(options.clock, options.timerResolution, (req) => this.expired(req));
    this.drainPolicy = new DrainPolicy(options.drainGrace, options.streamCloseGrace);
    this.stall = new WriteStallWatch(
      options.clock,
      options.writeTimeout,
      () => this.writer.flushed - this.socket.writableLength,
      () => this.kill(`write timeout (write stall): peer read none of our bytes for ${options.writeTimeout} ms (${this.socket.writableLength} bytes waiting)`),
    );
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err) => this.logger.warn(`connection ${this.describe()} error: ${err.message}`));
    socket.on('end', () => this.onPeerEnd());
    socket.on('close', () => this.terminate(undefined));
    if (options.readTimeout > 0) {
      socket.setTimeout(options.readTimeout, () => this.onReadTimeout());
    }
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  /** The client's TLS certificate subject when the connection is TLS. */
  get peerCertificate(): PeerCertificate | undefined {
    const s = this.socket as TLSSocket;
    return typeof s.getPeerCertificate === 'function' ? s.getPeerCertificate() : undefined;
  }
  get stats(): {
    inFlight: number;
    queued: number;
    features: number;
    state: ServerConnectionState;
    writeBuffer: number;
    streamBuffer: number;
  } {
    let streamBuffer = 0;
    for (const req of this.requests.owed()) streamBuffer += req.out?.queuedBytes ?? 0;
    return {
      inFlight: this.inFlight,
      queued: this.requests.heldCount,
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
    if (this.state !== 'open' || this.inFlight > 0 || this.requests.heldCount > 0 || this.socket.writableLength > 0) return 0;
    return Math.max(0, now - this.readAt);
  }

  /** True when the client negotiated this extension feature. */
  has(feature: number): boolean {
    return (this.features & feature) !== 0;
  }

  /** False while writes are backed up past highWaterMark: streams wait, new requests are held. */
  get writable(): boolean {
    return !this.writeBlocked;
  }

  // ---- reading -------------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.readAt = this.options.clock.now();
    if (this.drainPolicy.active) this.drainPolicy.read(this.readAt);
    const err = this.decoder.push(chunk);
    if (err !== undefined) this.kill(`protocol violation: ${err.message}`, err);
  }

  /** RequestSink: one decoded frame. */
  onRequest(format: number, action: number | string, seq: number, clientId: number, msg: Buffer, blob: Buffer): void {
    if (this.state === 'closed') return;
    this.clientId = clientId;
    if (typeof action === 'number') {
      if (action === ACTION_PING) return this.writer.response(FLAG_OK, 0, seq, EMPTY, undefined);
      if (this.features !== 0) {
        if (action === ACTION_CANCEL) return void this.requests.lookup(seq)?.cancel();
        if (action === ACTION_CREDIT) return this.onCredit(seq, msg);
        if (action === ACTION_GOAWAY_ACK) return this.onGoawayAck();
      }
      if (action === ACTION_HELLO && this.options.extensions) return this.onHello(seq, msg);
    }
    const isEvent = (format & FORMAT_EVENT) !== 0 && this.features !== 0;
    let header: RequestExtHeader | undefined;
    if ((format & FORMAT_EXT_HEADER) !== 0 && this.features !== 0) {
      const extLen = msg.length >= 4 ? msg.readUInt32LE(0) : -1;
      if (extLen < 0 || extLen > msg.length - 4) {
        return this.kill(`malformed extension header in request ${seq}`);
      }
      try {
        header = helloCodec.decode(msg.subarray(4, 4 + extLen)) as RequestExtHeader;
      } catch {
        header = undefined;
      }
      msg = msg.subarray(4 + extLen);
    }
    const table = this.requests;
    const runNow = this.inFlight < this.options.maxInFlightPerConnection && table.heldCount === 0 && !this.writeBlocked;
    let size = 0;
    if (!runNow || this.drainPolicy.refusing) {
      size = msg.length + blob.length + HELD_OVERHEAD;
      if (this.drainPolicy.refusing) return this.refuse(seq, isEvent, 'the server is closing');
      if (table.heldCount >= this.options.maxQueuedPerConnection || table.heldBytes + size > this.options.maxQueuedBytes) {
        return this.refuse(seq, isEvent, `${table.heldCount} requests (${table.heldBytes} bytes) already wait`);
      }
      if (blob.length !== 0) blob = Buffer.from(blob); // a view would pin the whole read buffer
    }
    let value: unknown;
    try {
      value = msg.length === 0 ? undefined : this.codec.decode(msg);
    } catch (err) {
      this.logger.warn(`connection ${this.describe()}: cannot decode request ${seq} (${String(action)}): ${(err as Error).message}`);
      if (!isEvent) this.writer.response(FLAG_ERROR_BYTES, 0, seq, EMPTY, codeBytes(ErrorCode.Decode));
      return;
    }
    const req = new ServerRequest(this, action, seq, clientId, value, blob, isEvent);
    req.timeLimit = this.options.handlerTimeout;
    req.readAt = this.readAt;
    if (header !== undefined && header !== null && typeof header === 'object') this.applyHeader(req, header);
    else if (this.features !== 0 && (this.features & FEATURE_CREDIT) !== 0) req.credit = DEFAULT_STREAM_CREDIT;
    if (runNow) this.run(req);
    else this.hold(req, size);
  }

  private applyHeader(req: ServerRequest, header: RequestExtHeader): void {
    if (header.m !== undefined && typeof header.m === 'object') req.meta = header.m;
    if (typeof header.d === 'number' && header.d >= 0) {
      req.deadline = this.readAt + header.d;
      req.timeLimit = Math.max(1, header.d);
    }
    if (this.has(FEATURE_CREDIT)) {
      const c = header.c;
      req.credit = typeof c === 'number' && c >= 1 ? Math.min(Math.floor(c), MAX_STREAM_CREDIT) : DEFAULT_STREAM_CREDIT;
    }
  }

  private run(req: ServerRequest): void {
    this.inFlight++;
    req.dispatched = true;
    try {
      const result = this.dispatcher.dispatch(req);
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        (result as Promise<void>).then(undefined, (err: unknown) => this.handlerFailed(req, err));
      }
    } catch (err) {
      this.handlerFailed(req, err);
    }
    if (!req.released && this.state !== 'closed') this.requests.running(req);
  }

  private hold(req: ServerRequest, size: number): void {
    this.requests.hold(req, size);
    if (this.writeBlocked) this.updateReading();
  }

  private refuse(seq: number, isEvent: boolean, why: string): void {
    this.counters.refused++;
    if (!this.refusedLogged) {
      this.refusedLogged = true;
      this.logger.warn(`connection ${this.describe()}: refusing requests (rpc_unreachable, not run): ${why}`);
    }
    if (!isEvent) this.writer.response(FLAG_ERROR_BYTES, 0, seq, EMPTY, codeBytes(ErrorCode.Unreachable));
  }

  /** Dispatches held requests while there is room. */
  private pumpHeld(): void {
    if (this.pumping) return;
    this.pumping = true;
    const cap = this.options.maxInFlightPerConnection;
    try {
      while (this.inFlight < cap && !this.writeBlocked && this.state !== 'closed') {
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
    this.updateReading();
  }

  private onHello(seq: number, msg: Buffer): void {
    this.features = acceptHello(msg);
    const answer = encodeHelloAnswer(this.features, this.options.maxInFlightPerConnection);
    this.writer.response(FLAG_OK, answer.length, seq, answer, undefined);
  }

  private onCredit(seq: number, msg: Buffer): void {
    const req = this.requests.lookup(seq);
    if (req === undefined || msg.length < 4 || !this.has(FEATURE_CREDIT)) return;
    req.credit = Math.min(req.credit + msg.readUInt32LE(0), 4 * MAX_STREAM_CREDIT);
    req.out?.credited();
  }

  private onGoawayAck(): void {
    this.drainPolicy.acknowledged();
    if (this.state === 'closing') this.maybeEnd();
  }

  private handlerFailed(req: ServerRequest, err: unknown): void {
    this.logHandlerError(req, err);
    req.internal(ErrorCode.Internal);
  }

  /** @internal */
  logHandlerError(req: ServerRequest, err: unknown): void {
    const e = err as Error;
    this.logger.error(`handler for ${String(req.action)} failed: ${e?.message ?? String(err)}`, e?.stack);
  }

  // ---- writing (called by ServerRequest and OutboundStream) -------------------

  sendValue(flag: number, seq: number, value: unknown, blob: Uint8Array | undefined): void {
    if (this.state === 'closed') return;
    if (value === undefined) return this.writer.response(flag, 0, seq, EMPTY, blob);
    let bytes: Uint8Array;
    try {
      bytes = this.codec.encode(value);
    } catch (err) {
      this.logger.error(`cannot encode response ${seq}: ${(err as Error).message}`);
      return this.writer.response(FLAG_ERROR_BYTES, 0, seq, EMPTY, codeBytes(ErrorCode.Encode));
    }
    this.writer.response(flag, bytes.length, seq, bytes, blob);
  }

  /** Encodes a value (EMPTY for undefined); logs and returns undefined when it cannot. */
  encode(value: unknown): Uint8Array | undefined {
    if (value === undefined) return EMPTY;
    try {
      return this.codec.encode(value);
    } catch (err) {
      this.logger.error(`cannot encode response: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Writes one response frame (flag 1: pass the errno as `msgLenOrErrno`). */
  writeFrame(flag: number, msgLenOrErrno: number, seq: number, msg: Uint8Array, blob: Uint8Array | undefined): void {
    if (this.state !== 'closed') this.writer.response(flag, msgLenOrErrno, seq, msg, blob);
  }

  /** A stream waits for the socket to drain. */
  waitForRoom(out: OutboundStream): void {
    this.waitingForRoom.add(out);
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

  /** A request's slot is free (answered, or abandoned). Called once per request. */
  release(req: ServerRequest): void {
    if (this.state === 'closed' && req.isEvent) this.host.eventDone(); // one the server adopted at abort
    this.requests.forget(req);
    if (req.dispatched) {
      this.inFlight--;
      if (this.requests.heldCount !== 0 && this.state !== 'closed') this.pumpHeld();
    }
    if (this.state === 'closing') this.maybeEnd();
  }

  // ---- deadlines -------------------------------------------------------------

  private expired(req: ServerRequest): void {
    if (req.released) return;
    const out = req.out;
    if (out !== undefined) {
      // a stream's clock restarts with each item sent or credit received
      const until = out.lastActive + req.timeLimit;
      if (until > this.options.clock.now()) return this.requests.refile(req, until);
    }
    if (req.deadline !== undefined) {
      req.abandon(EndReason.Deadline, new TimeoutError(`deadline of ${String(req.action)} passed`), ErrorCode.Timeout);
    } else {
      req.abandon(EndReason.HandlerTimeout, new TimeoutError(`${String(req.action)} ran past handlerTimeout ${this.options.handlerTimeout} ms`), ErrorCode.Timeout);
    }
  }

  // ---- flow control --------------------------------------------------------

  private onWriteBackpressure(): void {
    if (this.writeBlocked || this.socket.writableLength < this.options.highWaterMark) return;
    this.writeBlocked = true;
    this.stall.start();
    this.updateReading();
  }

  private onDrain(): void {
    if (this.writeBlocked) {
      this.writeBlocked = false;
      this.stall.stop();
      if (this.requests.heldCount !== 0) this.pumpHeld();
      else this.updateReading();
      if (this.waitingForRoom.size !== 0) {
        const waiting = [...this.waitingForRoom];
        this.waitingForRoom.clear();
        for (const out of waiting) if (this.writable) out.resume();
        else this.waitingForRoom.add(out);
      }
    }
    if (this.state === 'closing') this.maybeEnd();
  }

  /** Reading pauses only for a peer that neither reads nor stops sending. */
  private updateReading(): void {
    if (this.state === 'closed') return;
    const full = this.requests.heldCount >= this.options.maxQueuedPerConnection || this.requests.heldBytes >= this.options.maxQueuedBytes;
    const shouldPause = this.writeBlocked && full;
    if (shouldPause === this.readPaused) return;
    this.readPaused = shouldPause;
    if (shouldPause) {
      this.decoder.pause(); // stops even in the middle of a chunk
      this.socket.pause();
      return;
    }
    const err = this.decoder.resume();
    if (err !== undefined) return this.kill(`protocol violation: ${err.message}`, err);
    if (!this.decoder.isPaused) this.socket.resume();
  }

  /**
   * The peer sent nothing for `readTimeout` with part of a frame buffered:
   * it stalled mid-frame. Not while our own reading is paused (the bytes
   * buffered then are frames we stopped at; the peer does not read its
   * answers, and `writeTimeout` is the one to cut it, with that reason).
   */
  private onReadTimeout(): void {
    if (this.readPaused || this.decoder.isPaused || this.writeBlocked) return;
    if (this.decoder.buffered > 0) this.kill(`read timeout: peer sent ${this.decoder.buffered} bytes of an unfinished frame, then nothing for ${this.options.readTimeout} ms`);
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
   * Then FIN once nothing is owed; a peer that does not close its side
   * within END_TIMEOUT is destroyed.
   */
  protected beginClose(): undefined {
    const goaway = this.has(FEATURE_GOAWAY);
    this.drainPolicy.begin(this.options.clock.now(), goaway && this.has(FEATURE_GOAWAY_ACK));
    if (goaway) this.writer.response(FLAG_GOAWAY, 0, 0, EMPTY, undefined);
    const every = Math.max(5, Math.min(50, Math.floor(this.options.drainGrace / 5)));
    this.drainTimer = this.options.clock.setInterval(this.checkDrainBound, every);
    this.checkDrain();
    return undefined; // ends when the socket closes
  }

  private checkDrain(): void {
    if (this.state !== 'closing') return;
    if (this.drainPolicy.tick(this.options.clock.now(), this.inFlight > 0 || this.requests.heldCount > 0)) this.endStreams();
    this.maybeEnd();
  }

  /** Streams still open after the grace end with a coded error (rpc_io_err for v1 peers). */
  private endStreams(): void {
    for (const req of this.requests.owed()) {
      if (!req.isStreaming || req.released) continue;
      const v1 = !this.has(FEATURE_STREAMING);
      req.abandon(EndReason.Shutdown, new GoingAwayError('the server closed this stream'), v1 ? ErrorCode.Io : ErrorCode.GoingAway);
    }
  }

  private maybeEnd(): void {
    if (!this.drainPolicy.peerDone || this.inFlight > 0 || this.requests.heldCount > 0 || this.socket.writableEnded) return;
    this.options.clock.clear(this.drainTimer);
    this.drainTimer = undefined;
    this.writer.flush();
    this.socket.end();
    this.socket.once('finish', () => {
      if (this.state !== 'closed') this.endTimer = this.options.clock.setTimeout(() => this.destroy(), END_TIMEOUT);
    });
  }

  /** Closes this connection at once (logged); the server goes on. */
  kill(reason: string, cause?: OccamsError): void {
    if (this.state === 'closed') return;
    this.logger.warn(`closing connection ${this.describe()}: ${reason}${cause ? ` [${cause.code}]` : ''}`);
    this.destroy();
  }

  /**
   * The peer's FIN: it sends nothing more and, for all we know, reads
   * nothing more (a client that destroyed its socket looks the same), so
   * every handler still owing it an answer is cancelled now. Events were
   * read and owe nothing: they run on. (Node ends our side too; 'close'
   * follows.)
   */
  private onPeerEnd(): void {
    this.drainPolicy.acknowledged();
    const gone = new IoError('the client closed the connection');
    const owed = this.requests.owed().filter((r) => !r.isEvent);
    // the held ones first, so that freed slots do not start them
    for (const req of owed) if (!req.dispatched) req.abandon(EndReason.Disconnect, gone, undefined);
    for (const req of owed) req.abandon(EndReason.Disconnect, gone, undefined);
  }

  /**
   * The socket is gone: every handler still owing an answer is cancelled
   * (signal aborted, Observable unsubscribed). Events that were read still
   * run (held ones are dispatched now); the server keeps count of them so
   * that its graceful close waits for them.
   */
  protected abort(): void {
    this.socket.destroy();
    const clock = this.options.clock;
    this.stall.stop();
    clock.clear(this.drainTimer);
    clock.clear(this.endTimer);
    const gone = new IoError('connection closed');
    const pending = this.requests.clear();
    this.waitingForRoom.clear();
    for (const req of pending) {
      if (req.released) continue;
      if (!req.isEvent) {
        req.abandon(EndReason.Disconnect, gone, undefined);
        continue;
      }
      this.host.adoptEvent();
      if (!req.dispatched) this.run(req);
    }
    this.host.forget(this);
  }

  describe(): string {
    return `#${this.id} ${this.socket.remoteAddress ?? 'unix'}${this.socket.remotePort ? `:${this.socket.remotePort}` : ''}`;
  }
}
