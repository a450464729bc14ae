import type { Codec } from '../codec/codec.js';
import type { FrameWriter } from '../core/frame-writer.js';
import { InPlaceRoom } from '../core/in-place-room.js';
import { ErrorCode } from '../errors.js';
import { EMPTY, FLAG_ERROR_BYTES, FLAG_OK, RESPONSE_HEADER_SIZE } from '../protocol/constants.js';
import { FLAG_OK_RECORDS } from '../protocol/extensions.js';
import type { RpcLogger } from './logger.js';
import { codeBytes } from './request-end.js';

/**
 * What a server connection writes: responses (values encoded with the
 * codec), raw frames, and coded refusals. Nothing is written once the
 * connection is closed; a value the codec cannot encode becomes an
 * `rpc_encode` error for the client, and a log line.
 */
export class ResponseWriter {
  /** set when the connection closed: writes are dropped */
  closed = false;
  private readonly room = new InPlaceRoom();
  /** the connection's record session once negotiated (FEATURE_RECORDS): flag-0 values go out in it, as FLAG_OK_RECORDS */
  private records: Codec | undefined;

  constructor(
    private readonly writer: FrameWriter,
    private readonly codec: Codec,
    private readonly logger: RpcLogger,
  ) {}

  /** The connection is idle: drops the scratch buffer large results were encoded in. */
  release(): void {
    this.room.release();
  }

  /** Bytes of that scratch buffer (stats, tests). */
  get heldBytes(): number {
    return this.room.heldBytes;
  }

  /** From now on, results (flag 0 with a value) go out in `session`. */
  useRecords(session: Codec): void {
    this.records = session;
  }

  /**
   * A response carrying `value` (none for undefined); false when it could
   * not be encoded (`rpc_encode` went instead). With a record session, a
   * result (flag 0 with a value) goes out in it as FLAG_OK_RECORDS; one that
   * cannot be encoded leaves the session's state unknown (nothing of it went
   * out), so later results go plain and the client's decoder never meets a
   * shape it missed.
   */
  sendValue(flag: number, seq: number, value: unknown, blob: Uint8Array | undefined): boolean {
    if (this.closed) return true;
    const records = flag === FLAG_OK && value !== undefined ? this.records : undefined;
    const codec = records ?? this.codec;
    const out = blob === undefined && value !== undefined ? this.encodeInPlace(codec, value, seq) : this.encode(value, seq, codec);
    if (records !== undefined) {
      if (out === undefined) this.records = undefined;
      else flag = FLAG_OK_RECORDS;
    }
    if (typeof out === 'number') {
      this.writer.endResponse(flag, seq, out);
      return true;
    }
    if (out === undefined) {
      this.writeCode(seq, ErrorCode.Encode);
      return false;
    }
    this.writer.response(flag, out.length, seq, out, blob);
    return true;
  }

  /** Encodes a value (EMPTY for undefined); logs (naming the response `seq` when given) and returns undefined when it cannot. */
  encode(value: unknown, seq?: number, codec: Codec = this.codec): Uint8Array | undefined {
    if (value === undefined) return EMPTY;
    try {
      return codec.encode(value);
    } catch (err) {
      this.encodeFailed(err, seq);
      return undefined;
    }
  }

  /**
   * The usual response, no blob: the codec writes the msg straight into the
   * next frame when it can (returns its length; `endResponse` commits it),
   * else as `encode`.
   */
  private encodeInPlace(codec: Codec, value: unknown, seq: number): number | Uint8Array | undefined {
    if (codec.encodeInto === undefined) {
      const bytes = this.encode(value, seq, codec);
      if (bytes !== undefined) this.room.used(bytes.length);
      return bytes;
    }
    try {
      return this.room.encode(this.writer, codec, value, RESPONSE_HEADER_SIZE);
    } catch (err) {
      this.encodeFailed(err, seq);
      return undefined;
    }
  }

  private encodeFailed(err: unknown, seq: number | undefined): void {
    this.logger.error(`cannot encode response${seq === undefined ? '' : ` ${seq}`}: ${(err as Error).message}`);
  }

  /** Writes one response frame (flag 1: pass the errno as `msgLenOrErrno`). */
  writeFrame(flag: number, msgLenOrErrno: number, seq: number, msg: Uint8Array, blob: Uint8Array | undefined): void {
    if (!this.closed) this.writer.response(flag, msgLenOrErrno, seq, msg, blob);
  }

  /** A framework error with its stable code (flag 2, the code as the error bytes). */
  writeCode(seq: number, code: string): void {
    if (!this.closed) this.writer.response(FLAG_ERROR_BYTES, 0, seq, EMPTY, codeBytes(code));
  }
}
