import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Codec } from '../codec/codec.js';
import type { TimerHandle } from '../core/clock.js';
import { Lifecycle } from '../core/lifecycle.js';
import { ErrorCode, OccamsError } from '../errors.js';
import { ACTION_PING, EMPTY, FLAG_ERRNO, FLAG_ERROR_BYTES, FLAG_OK } from '../protocol/constants.js';
import { acceptHello, encodeHelloAnswer, helloCodec } from '../protocol/hello.js';
import {
  ACTION_CANCEL,
  ACTION_HELLO,
  FEATURE_GOAWAY,
  FLAG_ERRNO_MESSAGE,
  FLAG_GOAWAY,
  FORMAT_EVENT,
  FORMAT_EXT_HEADER,
  type RequestExtHeader,
} from '../protocol/extensions.js';
import { RequestDecoder, type RequestSink } from '../protocol/request-decoder.js';
import type { Dispatch } from './dispatch.js';
import type { RpcLogger } from './logger.js';
import { FrameWriter } from '../core/frame-writer.js';
import type { NormalizedRpcServerOptions } from './server-options.js';
import { ServerRequest } from './server-request.js';

const ENCODE_ERROR = Buffer.from(ErrorCode.Encode, 'latin1');

/** `closing` is the graceful drain: no new requests, owed responses still go out. */
export type ServerConnectionState = 'open' | 'closing' | 'closed';

const TRANSITIONS = { open: ['closing', 'closed'], closing: ['closed'], closed: [] } as const;

/**
 * One client connection on the server: one reader, one writer.
 *
 *   socket ─► RequestDecoder ─► Dispatch ─► ServerRequest.ok() ─► FrameWriter ─► socket
 *                 ▲ paused while: writes backed up past highWaterMark,
 *                 │               inFlight >= maxInFlightPerConnection,
 *                 │               closing (graceful drain)
 *
 * Invariant: `inFlight` counts requests handed to the Dispatch and not yet
 * settled; a closing connection ends once it is 0 and the writes are out.
 */
export class ServerConnection extends Lifecycle<'open'> implements RequestSink {
  readonly id: number;
  readonly socket: Socket;
  private readonly options: NormalizedRpcServerOptions;
  private readonly dispatcher: Dispatch;
  private readonly codec: Codec;
  private readonly logger: RpcLogger;
  private readonly writer: FrameWriter;
  private readonly decoder: RequestDecoder;
  private readonly onClosed: (conn: ServerConnection) => void;
  /** requests that registered a cancel handler, by seq */
  private readonly cancellable = new Map<number, ServerRequest>();
  private inFlight = 0;
  private features = 0;
  private writeBlocked = false;
  /** armed while writes are backed up: a peer that never drains is cut off */
  private writeStall: TimerHandle | undefined;
  private readPaused = false;
  /** client id from the first request (informative) */
  clientId = 0;

  constructor(
    id: number,
    socket: Socket,
    dispatcher: Dispatch,
    options: NormalizedRpcServerOptions,
    onClosed: (conn: ServerConnection) => void,
  ) {
    super(`connection #${id}`, TRANSITIONS, 'open');
    this.id = id;
    this.socket = socket;
    this.dispatcher = dispatcher;
    this.options = options;
    this.codec = options.codec;
    this.logger = options.logger;
    this.onClosed = onClosed;
    this.writer = new FrameWriter(socket, options.flushThreshold, () => this.onWriteBackpressure());
    this.decoder = new RequestDecoder(this, options.maxFrameSize);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err) => this.logger.warn(`connection ${this.describe()} error: ${err.message}`));
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
  get stats(): { inFlight: number; features: number; state: ServerConnectionState; writeBuffer: number } {
    return { inFlight: this.inFlight, features: this.features, state: this.state, writeBuffer: this.socket.writableLength };
  }

  /** True when the client negotiated this extension feature. */
  has(feature: number): boolean {
    return (this.features & feature) !== 0;
  }

  // ---- reading -------------------------------------------------------------

  private onData(chunk: Buffer): void {
    const err = this.decoder.push(chunk);
    if (err !== undefined) this.kill(`protocol violation: ${err.message}`, err);
  }

  /** RequestSink: one decoded request. */
  onRequest(format: number, action: number | string, seq: number, clientId: number, msg: Buffer, blob: Buffer): void {
    if (this.state === 'closed') return;
    this.clientId = clientId;
    if (typeof action === 'number') {
      if (action === ACTION_PING) return this.writer.response(FLAG_OK, 0, seq, EMPTY, undefined);
      if (action === ACTION_HELLO && this.options.extensions) return this.onHello(seq, msg);
      if (action === ACTION_CANCEL && this.features !== 0) return void this.cancellable.get(seq)?.cancel();
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
    let value: unknown;
    try {
      value = msg.length === 0 ? undefined : this.codec.decode(msg);
    } catch (err) {
      this.logger.warn(`connection ${this.describe()}: cannot decode request ${seq} (${String(action)}): ${(err as Error).message}`);
      if (!isEvent) this.writer.response(FLAG_ERROR_BYTES, 0, seq, EMPTY, Buffer.from(ErrorCode.Decode, 'latin1'));
      return;
    }
    const req = new ServerRequest(this, action, seq, clientId, value, blob, isEvent);
    if (header !== undefined && header !== null && typeof header === 'object') {
      if (header.m !== undefined && typeof header.m === 'object') req.meta = header.m;
      if (typeof header.d === 'number') req.deadline = this.options.clock.now() + header.d;
    }
    if (++this.inFlight >= this.options.maxInFlightPerConnection) this.updateReading();
    try {
      const result = this.dispatcher.dispatch(req);
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        (result as Promise<void>).then(undefined, (err: unknown) => this.handlerFailed(req, err));
      }
    } catch (err) {
      this.handlerFailed(req, err);
    }
  }

  private onHello(seq: number, msg: Buffer): void {
    this.features = acceptHello(msg);
    const answer = encodeHelloAnswer(this.features);
    this.writer.response(FLAG_OK, answer.length, seq, answer, undefined);
  }

  private handlerFailed(req: ServerRequest, err: unknown): void {
    const e = err as Error;
    this.logger.error(`handler for ${String(req.action)} failed: ${e?.message ?? String(err)}`, e?.stack);
    req.internal(ErrorCode.Internal);
  }

  // ---- writing (called by ServerRequest) ------------------------------------

  sendValue(flag: number, seq: number, value: unknown, blob: Uint8Array | undefined): void {
    if (this.state === 'closed') return;
    if (value === undefined) return this.writer.response(flag, 0, seq, EMPTY, blob);
    let bytes: Uint8Array;
    try {
      bytes = this.codec.encode(value);
    } catch (err) {
      this.logger.error(`cannot encode response ${seq}: ${(err as Error).message}`);
      return this.writer.response(FLAG_ERROR_BYTES, 0, seq, EMPTY, ENCODE_ERROR);
    }
    this.writer.response(flag, bytes.length, seq, bytes, blob);
  }

  /** Flag 1, or flag 6 with `message` (UTF-8) when the client negotiated it. */
  sendErrno(seq: number, code: number, message?: Uint8Array): void {
    if (this.state !== 'closed') this.writer.response(message === undefined ? FLAG_ERRNO : FLAG_ERRNO_MESSAGE, code, seq, EMPTY, message);
  }

  sendBytes(flag: number, seq: number, bytes: Uint8Array): void {
    if (this.state !== 'closed') this.writer.response(flag, 0, seq, EMPTY, bytes);
  }

  sendEncodedError(flag: number, seq: number, value: unknown): void {
    if (this.state === 'closed') return;
    let bytes: Uint8Array;
    try {
      bytes = this.codec.encode(value);
    } catch {
      bytes = ENCODE_ERROR;
      flag = FLAG_ERROR_BYTES;
    }
    this.writer.response(flag, 0, seq, EMPTY, bytes);
  }

  trackCancellable(req: ServerRequest): void {
    if (this.features !== 0) this.cancellable.set(req.seq, req);
  }

  /** A request settled (answered, or cancelled). */
  settled(req: ServerRequest): void {
    if (this.cancellable.size !== 0) this.cancellable.delete(req.seq);
    const wasAtCap = this.inFlight-- >= this.options.maxInFlightPerConnection;
    if (this.state === 'closing') this.maybeEnd();
    else if (wasAtCap) this.updateReading();
  }

  // ---- flow control --------------------------------------------------------

  private onWriteBackpressure(): void {
    const buffered = this.socket.writableLength;
    if (buffered > this.options.maxWriteBuffer) {
      this.kill(`peer is not reading (${buffered} bytes buffered)`);
    } else if (buffered >= this.options.highWaterMark && !this.writeBlocked) {
      this.writeBlocked = true;
      if (this.options.writeTimeout > 0) {
        this.writeStall = this.options.clock.setTimeout(
          () => this.kill(`write timeout: peer read nothing for ${this.options.writeTimeout} ms (${this.socket.writableLength} bytes waiting)`),
          this.options.writeTimeout,
        );
      }
      this.updateReading();
    }
  }

  private onDrain(): void {
    if (this.writeBlocked) {
      this.writeBlocked = false;
      this.options.clock.clear(this.writeStall);
      this.updateReading();
    }
    if (this.state === 'closing') this.maybeEnd();
  }

  /** Reads only while open, writes are not backed up and the in-flight cap has room. */
  private updateReading(): void {
    const shouldPause =
      this.state !== 'open' || this.writeBlocked || this.inFlight >= this.options.maxInFlightPerConnection;
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

  /**
   * Graceful: stop reading, tell the client (GOAWAY, if it speaks the
   * extension), answer what is in flight, then end.
   */
  drain(): void {
    void this.close();
  }

  protected beginClose(): undefined {
    this.updateReading();
    if (this.has(FEATURE_GOAWAY)) this.writer.response(FLAG_GOAWAY, 0, 0, EMPTY, undefined);
    this.maybeEnd();
    return undefined; // ends when the socket closes
  }

  private maybeEnd(): void {
    if (this.inFlight > 0 || this.socket.writableEnded) return;
    this.writer.flush();
    this.socket.end();
    // Read on (discarding) to the client's FIN. Node and Bun close a paused socket anyway; Deno sees the FIN only
    // while reading and does not keep the process alive for a paused socket, so close() never resolved there.
    this.socket.removeAllListeners('data').resume();
  }

  /** Closes this connection at once (logged); the server goes on. */
  kill(reason: string, cause?: OccamsError): void {
    if (this.state === 'closed') return;
    this.logger.warn(`closing connection ${this.describe()}: ${reason}${cause ? ` [${cause.code}]` : ''}`);
    this.destroy();
  }

  /** The socket is gone: requests still in dispatch settle into the void; cancel what can be. */
  protected abort(): void {
    this.socket.destroy();
    this.options.clock.clear(this.writeStall);
    for (const req of [...this.cancellable.values()]) req.cancel();
    this.cancellable.clear();
    this.onClosed(this);
  }

  describe(): string {
    return `#${this.id} ${this.socket.remoteAddress ?? 'unix'}${this.socket.remotePort ? `:${this.socket.remotePort}` : ''}`;
  }
}
