import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Codec } from '../codec/codec.js';
import type { TimerHandle } from '../core/clock.js';
import { Fifo } from '../core/fifo.js';
import { FrameWriter } from '../core/frame-writer.js';
import { Lifecycle } from '../core/lifecycle.js';
import { TimeoutWheel } from '../core/timeout-wheel.js';
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
import type { RpcLogger } from './logger.js';
import type { OutboundStream } from './outbound-stream.js';
import type { ConnectionHost, ServerCounters } from './server-counters.js';
import type { NormalizedRpcServerOptions } from './server-options.js';
import { EndReason, ServerRequest, codeBytes } from './server-request.js';

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
 * every request owed something that did not settle during its dispatch is
 * in `fresh` (dispatched this event-loop turn) or `live` (by seq, and in
 * the wheel when it has a time limit); held ones go to `live` at once;
 * `heldCount` counts the held ones not yet released (the Fifo may also hold
 * released ones, skipped). Deadlines and `handlerTimeout` share one
 * TimeoutWheel per connection. Filing waits for the turn's end (one
 * setImmediate): most async handlers (Nest's) settle within microtasks and
 * never touch the Map or the wheel.
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
  private readonly wheel: TimeoutWheel<ServerRequest>;
  private readonly host: ConnectionHost;
  private readonly live = new Map<number, ServerRequest>();
  /** unsettled after their dispatch in this event-loop turn; filed into `live` at its end */
  private fresh: ServerRequest[] = [];
  private fileScheduled = false;
  private readonly fileFreshBound = (): void => this.fileFresh();
  /** clock time of the chunk being decoded (one clock read per chunk, not per request) */
  private readAt = 0;
  private readonly held = new Fifo<ServerRequest>();
  private heldCount = 0;
  private heldBytes = 0;
  /** streams waiting for the socket to drain */
  private readonly waitingForRoom = new Set<OutboundStream>();
  private inFlight = 0;
  private pumping = false;
  private features = 0;
  private writeBlocked = false;
  private readPaused = false;
  /** while writes are backed up: checks that the peer takes something */
  private stallTimer: TimerHandle | undefined;
  private stallTaken = 0;
  private stallSince = 0;
  /** graceful close: the peer will send nothing new (acknowledged GOAWAY, or quiet) */
  private peerDone = false;
  /** graceful close: the peer could not be told and never went quiet; new requests are refused */
  private refusing = false;
  private closeStarted = 0;
  private quietSince = 0;
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
    this.writer = new FrameWriter(socket, options.flushThreshold, () => this.onWriteBackpressure());
    this.decoder = new RequestDecoder(this, options.maxFrameSize);
    this.wheel = new TimeoutWheel(options.clock, options.timerResolution, (req) => this.expired(req));
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
  /** Every request owed something (running past its dispatch, held), for the rare paths. */
  private owed(): ServerRequest[] {
    const all = [...this.live.values()];
    for (const req of this.fresh) if (!req.released && !req.tracked) all.push(req);
    return all;
  }

  /** The request with this seq still owed something, if any. */
  private lookup(seq: number): ServerRequest | undefined {
    const req = this.live.get(seq);
    if (req !== undefined) return req;
    for (let i = this.fresh.length - 1; i >= 0; i--) {
      const r = this.fresh[i]!;
      if (r.seq === seq && !r.released) return r;
    }
    return undefined;
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
    for (const req of this.owed()) streamBuffer += req.out?.queuedBytes ?? 0;
    return {
      inFlight: this.inFlight,
      queued: this.heldCount,
      features: this.features,
      state: this.state,
      writeBuffer: this.socket.writableLength,
      streamBuffer,
    };
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
    if (this.state === 'closing') this.quietSince = this.readAt;
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
        if (action === ACTION_CANCEL) return void this.lookup(seq)?.cancel();
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
    const runNow = this.inFlight < this.options.maxInFlightPerConnection && this.heldCount === 0 && !this.writeBlocked;
    let size = 0;
    if (!runNow || this.refusing) {
      size = msg.length + blob.length + HELD_OVERHEAD;
      if (this.refusing) return this.refuse(seq, isEvent, 'the server is closing');
      if (this.heldCount >= this.options.maxQueuedPerConnection || this.heldBytes + size > this.options.maxQueuedBytes) {
        return this.refuse(seq, isEvent, `${this.heldCount} requests (${this.heldBytes} bytes) already wait`);
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
    if (!req.released && !req.tracked) {
      this.fresh.push(req);
      if (!this.fileScheduled) {
        this.fileScheduled = true;
        setImmediate(this.fileFreshBound);
      }
    }
  }

  /** End of the turn: files what is still running. */
  private fileFresh(): void {
    this.fileScheduled = false;
    const fresh = this.fresh;
    this.fresh = [];
    if (this.state === 'closed') return;
    for (let i = 0; i < fresh.length; i++) {
      const req = fresh[i]!;
      if (!req.released) this.track(req);
    }
  }

  /** Files a request that is still owed something: by seq (CANCEL, CREDIT, disconnect) and in the wheel. */
  private track(req: ServerRequest): void {
    if (req.tracked) return;
    req.tracked = true;
    this.live.set(req.seq, req);
    if (req.timeLimit > 0) this.wheel.add(req, req.deadline ?? req.readAt + req.timeLimit);
  }

  private hold(req: ServerRequest, size: number): void {
    req.heldBytes = size;
    this.heldBytes += size;
    this.heldCount++;
    this.held.push(req);
    this.track(req);
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
      while (this.heldCount > 0 && this.inFlight < cap && !this.writeBlocked && this.state !== 'closed') {
        const req = this.held.shift()!;
        if (req.released) continue;
        if (req.timeLimit > 0 && req.timerBucket === null) {
          // taken out of the wheel as expired, its turn in this very tick: it never runs
          this.expired(req);
          continue;
        }
        this.heldCount--;
        this.heldBytes -= req.heldBytes;
        req.heldBytes = 0;
        this.run(req);
      }
      if (this.heldCount === 0) this.held.drain(); // only released ones are left
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
    const req = this.lookup(seq);
    if (req === undefined || msg.length < 4 || !this.has(FEATURE_CREDIT)) return;
    req.credit = Math.min(req.credit + msg.readUInt32LE(0), 4 * MAX_STREAM_CREDIT);
    req.out?.credited();
  }

  private onGoawayAck(): void {
    this.peerDone = true;
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
    if (req.tracked) {
      if (req.timerBucket !== null) this.wheel.remove(req);
      if (this.live.get(req.seq) === req) this.live.delete(req.seq);
    }
    if (req.dispatched) {
      this.inFlight--;
      if (this.heldCount !== 0 && this.state !== 'closed') this.pumpHeld();
    } else {
      // abandoned while held: it stays in the Fifo, skipped
      this.heldCount--;
      this.heldBytes -= req.heldBytes;
      req.heldBytes = 0;
      if (this.heldCount === 0 && !this.pumping) this.held.drain();
      else if (this.held.length > 1024 && this.held.length > 2 * this.heldCount) this.held.retain((r) => !r.released);
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
      if (until > this.options.clock.now()) return this.wheel.add(req, until);
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
    if (this.options.writeTimeout > 0) {
      this.stallTaken = this.writer.flushed - this.socket.writableLength;
      this.stallSince = this.options.clock.now();
      const every = Math.max(10, Math.min(1_000, Math.floor(this.options.writeTimeout / 4)));
      this.stallTimer = this.options.clock.setInterval(() => this.checkStall(), every);
    }
    this.updateReading();
  }

  /** Cuts the peer when it took nothing of our writes for writeTimeout (never for volume). */
  private checkStall(): void {
    const taken = this.writer.flushed - this.socket.writableLength;
    const now = this.options.clock.now();
    if (taken > this.stallTaken) {
      this.stallTaken = taken;
      this.stallSince = now;
    } else if (now - this.stallSince >= this.options.writeTimeout) {
      this.kill(`write timeout: peer read nothing for ${this.options.writeTimeout} ms (${this.socket.writableLength} bytes waiting)`);
    }
  }

  private onDrain(): void {
    if (this.writeBlocked) {
      this.writeBlocked = false;
      this.options.clock.clear(this.stallTimer);
      this.stallTimer = undefined;
      if (this.heldCount !== 0) this.pumpHeld();
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
    const full = this.heldCount >= this.options.maxQueuedPerConnection || this.heldBytes >= this.options.maxQueuedBytes;
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

  private onReadTimeout(): void {
    if (this.decoder.buffered > 0) this.kill(`read timeout: ${this.decoder.buffered} bytes of an unfinished frame`);
  }

  // ---- ending --------------------------------------------------------------

  /** Graceful: see `beginClose`. */
  drain(): void {
    void this.close();
  }

  /**
   * Graceful close. GOAWAY to a peer that speaks it; reading goes on, so
   * every request already sent is read and answered. The peer is done
   * sending once it acknowledges GOAWAY (or sends FIN); a peer that cannot
   * (plain v1) once it has been quiet for `drainGrace` with nothing owed;
   * if it never goes quiet, its further requests are refused (answered
   * `rpc_unreachable`, not run) from 4 x drainGrace on, and it is let go
   * once quiet or at 8 x drainGrace. Streams still open after `streamCloseGrace`
   * end with `rpc_going_away`. Then FIN once nothing is owed; a peer that
   * does not close its side within END_TIMEOUT is destroyed.
   */
  protected beginClose(): undefined {
    const now = this.options.clock.now();
    this.closeStarted = now;
    this.quietSince = now;
    if (this.has(FEATURE_GOAWAY)) this.writer.response(FLAG_GOAWAY, 0, 0, EMPTY, undefined);
    const every = Math.max(5, Math.min(50, Math.floor(this.options.drainGrace / 5)));
    this.drainTimer = this.options.clock.setInterval(this.checkDrainBound, every);
    this.checkDrain();
    return undefined; // ends when the socket closes
  }

  private checkDrain(): void {
    if (this.state !== 'closing') return;
    const now = this.options.clock.now();
    const o = this.options;
    if (now - this.closeStarted >= o.streamCloseGrace) this.endStreams();
    if (!this.peerDone && !(this.has(FEATURE_GOAWAY) && this.has(FEATURE_GOAWAY_ACK))) {
      // a peer that cannot be told: done once quiet (nothing read, nothing
      // owed) for drainGrace; one that keeps sending is refused after
      // 4 x drainGrace (told at once, nothing run), and let go once quiet or
      // after 4 x drainGrace more
      if (this.inFlight > 0 || this.heldCount > 0) this.quietSince = now;
      const limit = 4 * o.drainGrace;
      if (now - this.quietSince >= o.drainGrace) this.peerDone = true;
      else if (!this.refusing && now - this.closeStarted >= limit) this.refusing = true;
      else if (this.refusing && now - this.closeStarted >= 2 * limit) this.peerDone = true;
    }
    this.maybeEnd();
  }

  /** Streams still open after the grace end with a coded error (rpc_io_err for v1 peers). */
  private endStreams(): void {
    for (const req of this.owed()) {
      if (!req.isStreaming || req.released) continue;
      const v1 = !this.has(FEATURE_STREAMING);
      req.abandon(EndReason.Shutdown, new GoingAwayError('the server closed this stream'), v1 ? ErrorCode.Io : ErrorCode.GoingAway);
    }
  }

  private maybeEnd(): void {
    if (!this.peerDone || this.inFlight > 0 || this.heldCount > 0 || this.socket.writableEnded) return;
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
    this.peerDone = true;
    const gone = new IoError('the client closed the connection');
    const owed = this.owed().filter((r) => !r.isEvent);
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
    clock.clear(this.stallTimer);
    clock.clear(this.drainTimer);
    clock.clear(this.endTimer);
    this.wheel.stop();
    const gone = new IoError('connection closed');
    const pending = this.owed();
    this.live.clear();
    this.fresh = [];
    this.held.drain();
    this.waitingForRoom.clear();
    for (const req of pending) {
      if (req.released) continue;
      if (!req.isEvent) {
        req.abandon(EndReason.Disconnect, gone, undefined);
        continue;
      }
      this.host.adoptEvent();
      if (!req.dispatched) {
        this.heldCount--;
        this.run(req);
      }
    }
    this.host.forget(this);
  }

  describe(): string {
    return `#${this.id} ${this.socket.remoteAddress ?? 'unix'}${this.socket.remotePort ? `:${this.socket.remotePort}` : ''}`;
  }
}
