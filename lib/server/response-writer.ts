import type { Codec } from '../codec/codec.js';
import { type FrameWriter, InPlaceRoom } from '../core/frame-writer.js';
import { ErrorCode } from '../errors.js';
import { EMPTY, FLAG_ERROR_BYTES, RESPONSE_HEADER_SIZE } from '../protocol/constants.js';
import type { RpcLogger } from './logger.js';
import { codeBytes } from './server-request.js';

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

  constructor(
    private readonly writer: FrameWriter,
    private readonly codec: Codec,
    private readonly logger: RpcLogger,
  ) {}

  /** A response carrying `value` (none for undefined); false when it could not be encoded (`rpc_encode` went instead). */
  sendValue(flag: number, seq: number, value: unknown, blob: Uint8Array | undefined): boolean {
    if (this.closed) return true;
    const out = blob === undefined && value !== undefined ? this.encodeInPlace(value, seq) : this.encode(value, seq);
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
  encode(value: unknown, seq?: number): Uint8Array | undefined {
    if (value === undefined) return EMPTY;
    try {
      return this.codec.encode(value);
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
  private encodeInPlace(value: unknown, seq: number): number | Uint8Array | undefined {
    const codec = this.codec;
    if (codec.encodeInto === undefined || !this.room.worthIt) {
      const bytes = this.encode(value, seq);
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
