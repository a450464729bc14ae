import type { Socket } from 'node:net';

import type { Codec, NewKeyCount } from '../codec/codec.js';
import { decodeReceived } from '../codec/decode-received.js';
import { MessageTooHeavyError } from '../codec/msgpack-check.js';
import { ownedIfRead } from '../codec/read-buffer.js';
import type { FrameWriter } from '../core/frame-writer.js';
import { DecodeError, ErrorCode, type OccamsError } from '../errors.js';
import { ACTION_PING, EMPTY, FLAG_OK } from '../protocol/constants.js';
import {
  ACTION_CANCEL,
  ACTION_CREDIT,
  ACTION_DESCRIBE,
  ACTION_GOAWAY_ACK,
  ACTION_HELLO,
  ALL_FEATURES,
  FEATURE_CREDIT,
  FEATURE_RECORDS,
  FORMAT_EVENT,
  FORMAT_EXT_HEADER,
  FORMAT_RECORDS,
  MAX_STREAM_CREDIT,
  type RequestExtHeader,
} from '../protocol/extensions.js';
import { acceptHello, encodeHelloAnswer } from '../protocol/hello.js';
import { RequestDecoder, type RequestSink } from '../protocol/request-decoder.js';
import type { ConnectionDrain } from './connection-drain.js';
import type { ConnectionFlow } from './connection-flow.js';
import type { DrainPolicy } from './drain-policy.js';
import { applyDeadline, applyExtHeader, splitExtHeader } from './ext-header.js';
import type { RpcLogger } from './logger.js';
import { HELD_OVERHEAD, type RequestIntake } from './request-intake.js';
import type { RequestTable } from './request-table.js';
import type { ResponseWriter } from './response-writer.js';
import type { ServerCounters } from './server-counters.js';
import type { NormalizedRpcServerOptions } from './server-options.js';
import { type RequestPort, ServerRequest } from './server-request.js';

/**
 * Bytes of frames after which the read slice is checked (besides every 32
 * frames): a few KiB of MessagePack can take a millisecond to decode (new
 * keys, record shapes), so larger frames check it each.
 */
const SLICE_CHECK_BYTES = 16 * 1024;

/** Requests that cannot be decoded logged per connection (each is answered rpc_decode all the same). */
const LOGGED_DECODE_FAILURES = 3;

/** What the reader needs of its connection, besides the parts it is handed (all off the request path). */
export interface ReaderHost {
  /** the connection's name in log lines */
  describe(): string;
  /** the server's DESCRIBE answer (reflection on), or undefined (off) */
  describeServer(): unknown;
  /** the peer broke the protocol: the connection stops reading and closes */
  violated(reason: string, cause?: OccamsError): void;
  /** the connection closes at once */
  kill(reason: string): void;
}

/**
 * The read side of a ServerConnection: the RequestDecoder's sink.
 *
 *   chunk ─► decoder ─► onRequest ─► control frame? (PING, CANCEL, CREDIT, GOAWAY_ACK, HELLO, DESCRIBE) ─► answered here
 *                            │ a request
 *                            ▼
 *             ext header, record session, room? ─► decoded ─► ServerRequest ─► RequestIntake (run or hold)
 *
 * It holds what the client negotiated (HELLO: `features`, the record
 * session) and the per-connection read counters. Invariant: once `stop()`
 * was called (the peer broke the protocol, or the connection closed),
 * nothing more that was read is acted on, the rest of a chunk included.
 */
export class RequestReader implements RequestSink {
  readonly decoder: RequestDecoder;
  /** extension features the client negotiated (0: a plain v1 peer) */
  features = 0;
  /** client id from the latest request (informative) */
  clientId = 0;
  /** clock time of the chunk being decoded (one clock read per chunk, not per request); accept time before the first */
  readAt: number;
  /** clock time of the last request read (not a control frame) */
  lastRequestAt = 0;
  /** set once, right after the reader is built: ConnectionFlow is built around the decoder the reader makes, RequestIntake around the flow */
  flow!: ConnectionFlow;
  intake!: RequestIntake;
  private readonly policy: DrainPolicy;
  private readonly codec: Codec;
  /**
   * The codec's session for this connection once the client was granted
   * FEATURE_RECORDS: decodes every FORMAT_RECORDS request, in order, whether
   * it runs, waits or is refused (it may describe a shape later ones use).
   */
  private records: Codec | undefined;
  /** a HELLO was answered (the first one decides the record sessions) */
  private helloAnswered = false;
  /** nothing read is acted on any more (see the class's invariant) */
  private stopped = false;
  private oversizedLogged = false;
  private keysPacedLogged = false;
  /** new property names the peer made the server learn (record shapes, plain maps: Codec.newKeys, Codec.keyCensus), and of them the shapes' */
  private keysLearned = 0;
  private shapeKeys = 0;
  /** counts of the new keys in plain maps (Codec.keyCensus), while newKeyRate is on: plain messages', the record session's */
  private readonly plainCensus: NewKeyCount | undefined;
  private recordsCensus: NewKeyCount | undefined = undefined;
  private decodeFailures = 0;
  /** frames read so far (wraps); every 32nd checks the read slice */
  private framesRead = 0;
  /** bytes of frames read since the read slice was last checked */
  private bytesRead = 0;

  constructor(
    private readonly socket: Socket,
    /** what each request read here talks to: the connection */
    private readonly port: RequestPort,
    private readonly writer: FrameWriter,
    private readonly out: ResponseWriter,
    private readonly requests: RequestTable,
    private readonly drainer: ConnectionDrain,
    private readonly options: NormalizedRpcServerOptions,
    private readonly counters: ServerCounters,
    private readonly logger: RpcLogger,
    private readonly host: ReaderHost,
  ) {
    this.decoder = new RequestDecoder(this, options.maxFrameSize);
    this.policy = drainer.policy;
    this.codec = options.codec;
    this.readAt = options.clock.now();
    this.plainCensus = options.newKeyRate === Infinity ? undefined : options.codec.keyCensus?.();
  }

  /** Nothing read from here on is acted on (see the class's invariant). */
  stop(): void {
    this.stopped = true;
  }

  /**
   * One chunk from the socket. Returns false when the socket should stop
   * reading: the decoder is paused holding bytes. So the peer's FIN is read
   * only after the frames before it (readSocket; with 'data', the readable
   * buffer holds them and 'end' waits for it).
   */
  onData(chunk: Buffer): boolean {
    if (this.stopped) return false; // reads nothing more (bytes the socket had already taken)
    this.readAt = this.options.clock.now();
    this.flow.reading(this.readAt);
    const policy = this.policy;
    if (policy.active) policy.read(this.readAt);
    const decoder = this.decoder;
    const err = decoder.push(chunk);
    this.flow.worked(this.readAt, this.options.clock.now());
    if (err !== undefined) this.host.violated(`protocol violation: ${err.message}`, err);
    return !decoder.isPaused || decoder.buffered === 0;
  }

  /** RequestSink: one decoded frame. */
  onRequest(format: number, action: number | string, seq: number, clientId: number, msg: Buffer, blob: Buffer, left: number): void {
    if (this.stopped) return;
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
      return this.host.kill(`protocol violation: request ${seq} (${String(action)}) after the server ended the connection`);
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
    if (this.requests.owns(seq)) return this.host.violated(`protocol violation: request ${seq} (${String(action)}) repeats the seq of a request still in flight`);
    this.lastRequestAt = this.readAt;
    const isEvent = (format & FORMAT_EVENT) !== 0 && this.features !== 0;
    let header: RequestExtHeader | undefined;
    // `left` >= 0: the decoder read a header that is just `{d}` (every plain call's) and took it off msg (RequestDecoder.deadlines)
    if (left < 0 && (format & FORMAT_EXT_HEADER) !== 0 && this.features !== 0) {
      const split = splitExtHeader(msg, this.options.maxRequestWeight);
      if (split === undefined) return this.host.violated(`protocol violation: malformed extension header in request ${seq}`);
      // metadata's keys are names the server learns too
      if (this.plainCensus !== undefined && split.header !== undefined) this.census(this.plainCensus, msg.subarray(4, msg.length - split.msg.length));
      header = split.header;
      msg = split.msg;
    }
    let value: unknown;
    // (a v1 peer's format byte is ignored, as the reference says; a peer that said HELLO is held to what it negotiated)
    const inRecords = (format & FORMAT_RECORDS) !== 0 && this.features !== 0;
    if (inRecords) {
      const records = this.records;
      if (records === undefined) return this.host.violated(`protocol violation: request ${seq} is in a record session the connection did not negotiate`);
      try {
        value = msg.length === 0 ? undefined : decodeReceived(records, msg, this.options.maxRequestWeight);
      } catch (err) {
        // refused unread, the session intact (the codec took the shapes it defines): that request alone fails
        if (err instanceof MessageTooHeavyError) return this.undecodable(seq, action, isEvent, err);
        // the session's state is unknown from here: nothing later on it can be read
        return this.host.violated(
          `cannot decode request ${seq} (${String(action)}) in the record session: ${(err as Error).message}`,
          new DecodeError((err as Error).message, { cause: err }),
        );
      } finally {
        // the shapes it described, decoded or refused for its weight, are the session's: paid for (newKeyRate)
        const learned = records.newKeys;
        if (learned !== undefined && learned !== this.shapeKeys) {
          this.paceKeys(learned - this.shapeKeys);
          this.shapeKeys = learned;
        }
      }
      if (this.recordsCensus !== undefined) this.census(this.recordsCensus, msg);
    }
    const intake = this.intake;
    const runNow = intake.room;
    let size = 0;
    const refusing = this.policy.refusing;
    if (!runNow || refusing) {
      size = msg.length + blob.length + HELD_OVERHEAD;
      if (!intake.mayHold(seq, isEvent, refusing)) return;
      if (blob.length !== 0) blob = Buffer.from(blob); // a view would pin the whole read buffer
    } else if (blob.length !== 0) {
      blob = ownedIfRead(blob); // the handler may keep it: a view of the process's read buffer lasts only this call
    }
    if (!inRecords) {
      try {
        value = msg.length === 0 ? undefined : decodeReceived(this.codec, msg, this.options.maxRequestWeight);
      } catch (err) {
        return this.undecodable(seq, action, isEvent, err as Error);
      }
      if (this.plainCensus !== undefined) this.census(this.plainCensus, msg);
    }
    const req = new ServerRequest(this.port, action, seq, clientId, value, blob, isEvent);
    req.timeLimit = this.options.handlerTimeout;
    req.readAt = this.readAt;
    const credit = (this.features & FEATURE_CREDIT) !== 0;
    if (header !== undefined || credit) applyExtHeader(req, header, this.readAt, credit);
    if (left >= 0) applyDeadline(req, left, this.readAt);
    this.requests.own(req);
    if (runNow) intake.run(req, this.readAt);
    else intake.hold(req, size);
  }

  /** The new keys of a decoded request's plain maps (sampled): paid for like its shapes'. */
  private census(census: NewKeyCount, msg: Uint8Array): void {
    const n = census.count(msg);
    if (n !== 0) this.paceKeys(n);
  }

  /** The peer made the server learn `n` more new keys: past newKeyRate, reading waits (counted; logged once a connection). */
  private paceKeys(n: number): void {
    this.keysLearned += n;
    const wait = this.flow.keysLearned(n);
    if (wait === 0) return;
    this.counters.keyPaced++;
    if (this.keysPacedLogged) return;
    this.keysPacedLogged = true;
    this.logger.warn(
      `connection ${this.host.describe()}: pacing its reads: it made the server learn about ${Math.round(this.keysLearned)} new property names, past newKeyRate ${this.options.newKeyRate}/s (further ones are not logged)`,
    );
  }

  /** A request that cannot be decoded fails alone (rpc_decode); the first few of a connection are logged, so a flood of them is not a flood of lines. */
  private undecodable(seq: number, action: number | string, isEvent: boolean, err: Error): void {
    const n = ++this.decodeFailures;
    if (n <= LOGGED_DECODE_FAILURES) {
      const more = n === LOGGED_DECODE_FAILURES ? ' (further ones on this connection are not logged)' : '';
      this.logger.warn(`connection ${this.host.describe()}: cannot decode request ${seq} (${String(action)}): ${err.message}${more}`);
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
    if (this.stopped || this.socket.writableEnded || this.requests.owns(seq)) return false;
    this.counters.refused++;
    if (!this.oversizedLogged) {
      this.oversizedLogged = true;
      this.logger.warn(
        `connection ${this.host.describe()}: refusing request ${seq} of ${size} bytes, past maxFrameSize ${this.options.maxFrameSize} (rpc_frame_too_large, not read; further ones are not logged)`,
      );
    }
    if ((format & FORMAT_EVENT) === 0 || this.features === 0) this.out.writeCode(seq, this.features === 0 ? ErrorCode.Decode : ErrorCode.FrameTooLarge);
    return true;
  }

  // ---- control frames --------------------------------------------------------

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
        if (this.records !== undefined && this.options.newKeyRate !== Infinity) this.recordsCensus = this.records.keyCensus?.();
        else this.features &= ~FEATURE_RECORDS;
      }
    }
    this.decoder.deadlines = this.features !== 0; // the ext headers it sends are read from now on (the plain `{d}` by the decoder)
    const answer = encodeHelloAnswer(this.features, this.options.maxInFlightPerConnection);
    this.writer.response(FLAG_OK, answer.length, seq, answer, undefined);
  }

  /** Reflection (reflection.ts): the server's description, or rpc_method_notfound when it is off; never a user handler. */
  private onDescribe(seq: number, format: number): void {
    if ((format & FORMAT_EVENT) !== 0 && this.features !== 0) return;
    const description = this.options.reflection ? this.host.describeServer() : undefined;
    if (description === undefined) return this.out.writeCode(seq, ErrorCode.MethodNotFound);
    this.out.sendValue(FLAG_OK, seq, description, undefined);
  }

  private onCredit(seq: number, msg: Buffer): void {
    const req = this.requests.lookup(seq);
    if (req === undefined || msg.length < 4 || (this.features & FEATURE_CREDIT) === 0) return;
    req.credit = Math.min(req.credit + msg.readUInt32LE(0), 4 * MAX_STREAM_CREDIT);
    req.out?.credited();
  }

  private onGoawayAck(): void {
    // an ack answers our GOAWAY: outside a drain it would have us end a connection the peer goes on using
    if (!this.policy.active) return this.host.violated('protocol violation: GOAWAY_ACK without a GOAWAY');
    this.policy.acknowledged();
    this.drainer.maybeEnd();
  }
}
