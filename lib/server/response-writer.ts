import type { Codec } from '../codec/codec.js';
import type { FrameWriter } from '../core/frame-writer.js';
import { ErrorCode } from '../errors.js';
import { EMPTY, FLAG_ERROR_BYTES } from '../protocol/constants.js';
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

  constructor(
    private readonly writer: FrameWriter,
    private readonly codec: Codec,
    private readonly logger: RpcLogger,
  ) {}

  /** A response carrying `value` (none for undefined); false when it could not be encoded (`rpc_encode` went instead). */
  sendValue(flag: number, seq: number, value: unknown, blob: Uint8Array | undefined): boolean {
    if (this.closed) return true;
    const bytes = this.encode(value, seq);
    if (bytes === undefined) {
      this.writeCode(seq, ErrorCode.Encode);
      return false;
    }
    this.writer.response(flag, bytes.length, seq, bytes, blob);
    return true;
  }

  /** Encodes a value (EMPTY for undefined); logs (naming the response `seq` when given) and returns undefined when it cannot. */
  encode(value: unknown, seq?: number): Uint8Array | undefined {
    if (value === undefined) return EMPTY;
    try {
      return this.codec.encode(value);
    } catch (err) {
      this.logger.error(`cannot encode response${seq === undefined ? '' : ` ${seq}`}: ${(err as Error).message}`);
      return undefined;
    }
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
