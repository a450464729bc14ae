import type { Codec } from '../codec/codec.js';
import { actionBytes } from '../core/action-bytes.js';
import type { FrameWriter } from '../core/frame-writer.js';
import { InPlaceRoom } from '../core/in-place-room.js';
import { EncodeError } from '../errors.js';
import { EMPTY, REQUEST_HEADER_SIZE } from '../protocol/constants.js';
import {
  ACTION_CANCEL,
  ACTION_CREDIT,
  ACTION_GOAWAY_ACK,
  deadlineExtSize,
  FEATURE_DEADLINE,
  FORMAT_EVENT,
  FORMAT_EXT_HEADER,
  FORMAT_RECORDS,
  writeDeadlineHeader,
} from '../protocol/extensions.js';
import { helloCodec } from '../protocol/hello.js';
import { type Call, CallKind, type CallOptions, CallState } from './call.js';
import { extHeader, msLeft } from './wire.js';

/**
 * What a client writes: requests (the value encoded with the codec, the
 * extension header: at least the time left of every call to a
 * FEATURE_DEADLINE server, the action's UTF-8 bytes cached for runs of
 * the same action) and the extensions' control
 * events (CANCEL, CREDIT, GOAWAY ack), all through one FrameWriter.
 */
export class RequestWriter {
  /** the last action string written and its UTF-8 bytes */
  private lastAction = '';
  private lastActionBytes: Buffer = EMPTY;
  private readonly room = new InPlaceRoom();
  /** where a `{d}` header is written for a frame that takes a copy of it */
  private readonly headerScratch = Buffer.allocUnsafe(8);
  /** the connection's record session once negotiated (FEATURE_RECORDS); requests' values go out in it, flagged FORMAT_RECORDS */
  private records: Codec | undefined;
  /** a value failed to encode in the session: its state is unknown, so it is never used again on this connection */
  private recordsSpent = false;

  constructor(
    private readonly writer: FrameWriter,
    private readonly codec: Codec,
    private readonly clientId: number,
  ) {}

  /** From now on, requests' values go out in `session` (the server granted FEATURE_RECORDS). */
  useRecords(session: Codec): void {
    if (!this.recordsSpent) this.records = session;
  }

  /**
   * Writes `call` as `seq` at clock time `now` (what its deadline header
   * counts from). Returns the write batch its frame went into (handed to
   * the socket once `FrameWriter.batch` passes it), or the EncodeError when
   * its value (or header) cannot be encoded; nothing is written then.
   */
  request(call: Call, seq: number, features: number, now: number): number | EncodeError {
    let msg: Uint8Array;
    let ext: Uint8Array | undefined;
    let format = call.kind === CallKind.Event ? FORMAT_EVENT : 0;
    // numeric actions stay plain: a server reads its own control actions (PING, HELLO...) without decoding them
    const records = call.kind === CallKind.Control || typeof call.action === 'number' ? undefined : this.records;
    const codec = records ?? this.codec;
    if (records !== undefined) format |= FORMAT_RECORDS;
    try {
      if (call.kind === CallKind.Control) {
        msg = call.value === undefined ? EMPTY : helloCodec.encode(call.value);
      } else if (plain(call.options)) {
        // the usual call: no blob, at most the header `{d}` (written by hand); the codec writes the msg into the frame
        const left = call.kind === CallKind.User && (features & FEATURE_DEADLINE) !== 0 ? msLeft(call.expiresAt, now) : -1;
        if (left >= 0) format |= FORMAT_EXT_HEADER;
        const action = call.action;
        const actionBytes = typeof action === 'string' ? this.bytesOf(action) : undefined;
        if (codec.encodeInto !== undefined) {
          const head = REQUEST_HEADER_SIZE + (actionBytes === undefined ? 0 : actionBytes.length) + (left >= 0 ? deadlineExtSize(left) : 0);
          const out = this.room.encode(this.writer, codec, call.value, head);
          if (typeof out === 'number') {
            return this.writer.endRequest(format, typeof action === 'string' ? 0 : action, actionBytes, seq, this.clientId, out, left);
          }
          msg = out;
        } else {
          msg = codec.encode(call.value);
          this.room.used(msg.length);
        }
        if (left >= 0) ext = this.deadlineHeader(left);
      } else {
        const header = extHeader(call.options!, features, now, call.kind === CallKind.User ? call.expiresAt : 0);
        if (header !== undefined) {
          ext = header.m === undefined && header.c === undefined ? this.deadlineHeader(header.d!) : Buffer.from(helloCodec.encode(header));
          format |= FORMAT_EXT_HEADER;
        }
        msg = codec.encode(call.value);
        this.room.used(msg.length);
      }
    } catch (err) {
      if (records !== undefined) {
        // nothing of it went out: later requests go plain, the server's decoder never sees a shape it missed
        this.records = undefined;
        this.recordsSpent = true;
      }
      return new EncodeError(`cannot encode request: ${(err as Error).message}`, { cause: err });
    }
    const action = call.action;
    if (typeof action === 'string') return this.writer.request(format, 0, this.bytesOf(action), seq, this.clientId, msg, call.options?.blob, ext);
    return this.writer.request(format, action, undefined, seq, this.clientId, msg, call.options?.blob, ext);
  }

  /** The msgpack `{d: left}`, in a scratch buffer reused by the next call (the frame takes a copy at once). */
  private deadlineHeader(left: number): Uint8Array {
    return this.headerScratch.subarray(0, writeDeadlineHeader(this.headerScratch, 0, left));
  }

  /** The UTF-8 bytes of an action (cached for runs of the same one). */
  private bytesOf(action: string): Buffer {
    if (action !== this.lastAction) {
      this.lastAction = action;
      this.lastActionBytes = actionBytes(action);
    }
    return this.lastActionBytes;
  }

  /** CANCEL: the server stops the handler of `seq` and frees its slot. */
  cancel(seq: number): void {
    this.control(ACTION_CANCEL, seq, EMPTY);
  }

  /** CANCELs every User call in `calls` that was sent; true when any was written. */
  cancelSent(calls: readonly Call[]): boolean {
    let any = false;
    for (const call of calls) {
      if (call.kind !== CallKind.User || call.state !== CallState.Sent) continue;
      this.cancel(call.seq);
      any = true;
    }
    return any;
  }

  /** CREDIT: the server may send `n` more items of the stream `seq`. */
  credit(seq: number, n: number): void {
    const msg = Buffer.allocUnsafe(4);
    msg.writeUInt32LE(Math.min(n, 0xffff_ffff), 0);
    this.control(ACTION_CREDIT, seq, msg);
  }

  /** GOAWAY ack: nothing new follows on this connection. */
  goawayAck(): void {
    this.control(ACTION_GOAWAY_ACK, 0, EMPTY);
  }

  private control(action: number, seq: number, msg: Uint8Array): void {
    this.writer.request(FORMAT_EVENT, action, undefined, seq, this.clientId, msg, undefined, undefined);
  }
}

/**
 * Options that put nothing in the frame beyond the time left (a timeout, a
 * pool's bookkeeping): the call is written as one without options, its
 * header `{d}` by hand.
 */
function plain(options: CallOptions | undefined): boolean {
  return options === undefined || (options.blob === undefined && options.meta === undefined && options.deadline === undefined && options.flow === undefined);
}
