import { FrameTooLargeError, ProtocolError } from '../errors.js';
import { DEFAULT_MAX_FRAME_SIZE, EMPTY, FLAG_ERRNO, RESPONSE_HEADER_SIZE } from './constants.js';
import { FLAG_ERRNO_MESSAGE } from './extensions.js';
import { checkMagicAndVersion, FrameDecoder } from './frame-decoder.js';
import { readI32, readU32, readU53 } from './u64.js';

/**
 * Receives decoded responses. For flags 1 and 6 `msgLen` is the errno and
 * `msg` is empty. Flags are not judged here: what a flag means is the client's call.
 */
export interface ResponseSink {
  onResponse(flag: number, seq: number, msgLen: number, msg: Buffer, blob: Buffer): void;
}

/** Decodes response frames (client side). */
export class ResponseDecoder extends FrameDecoder {
  private readonly sink: ResponseSink;
  private readonly maxFrameSize: number;

  constructor(sink: ResponseSink, maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    super(RESPONSE_HEADER_SIZE);
    this.sink = sink;
    this.maxFrameSize = maxFrameSize;
  }

  protected bodyLength(buf: Buffer, off: number): number {
    checkMagicAndVersion(buf, off, 'server');
    const blobLen = readI32(buf, off + 16);
    if (blobLen < 0) throw new ProtocolError(`negative blob_len ${blobLen}`);
    const bodyLen = (errnoInMsgLen(buf[off + 3]!) ? 0 : readU32(buf, off + 4)) + blobLen;
    if (bodyLen > this.maxFrameSize - RESPONSE_HEADER_SIZE) {
      throw new FrameTooLargeError(bodyLen + RESPONSE_HEADER_SIZE, this.maxFrameSize);
    }
    return bodyLen;
  }

  protected emit(hdr: Buffer, h: number, body: Buffer, b: number): void {
    const flag = hdr[h + 3]!;
    const msgLen = readU32(hdr, h + 4);
    const seq = readU53(hdr, h + 8);
    if (seq < 0) throw new ProtocolError('response seq exceeds 2^53');
    const blobLen = readI32(hdr, h + 16);
    const bodyMsgLen = errnoInMsgLen(flag) ? 0 : msgLen;
    this.sink.onResponse(
      flag,
      seq,
      msgLen,
      bodyMsgLen === 0 ? EMPTY : body.subarray(b, b + bodyMsgLen),
      blobLen === 0 ? EMPTY : body.subarray(b + bodyMsgLen, b + bodyMsgLen + blobLen),
    );
  }
}

/** Flags whose msg_len field carries an errno, not a length. */
function errnoInMsgLen(flag: number): boolean {
  return flag === FLAG_ERRNO || flag === FLAG_ERRNO_MESSAGE;
}
