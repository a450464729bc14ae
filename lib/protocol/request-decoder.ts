import { FrameTooLargeError, ProtocolError } from '../errors.js';
import { ActionNames } from './action-names.js';
import { ACTION_LEN_MASK, ACTION_STRING_BIT, DEFAULT_MAX_FRAME_SIZE, EMPTY, REQUEST_HEADER_SIZE } from './constants.js';
import { FORMAT_EXT_HEADER, readDeadlineHeader } from './extensions.js';
import { checkMagicAndVersion, FrameDecoder } from './frame-decoder.js';
import { readU32, readU53, readU64Lossy } from './u64.js';

/** Receives decoded requests; `msg`/`blob` are views valid until you drop them. */
export interface RequestSink {
  /**
   * `left`: with `RequestDecoder.deadlines` on, the ms left of a
   * FORMAT_EXT_HEADER request whose header is just `{d}` (every plain call's),
   * read here and taken off `msg`; -1 otherwise (`msg` is then as sent).
   */
  onRequest(format: number, action: number | string, seq: number, clientId: number, msg: Buffer, blob: Buffer, left: number): void;
  /**
   * A request frame of `size` bytes, past maxFrameSize: return true to
   * refuse it alone (its body is read past, never buffered; the sink
   * answers it), false (or no method) to fail the connection.
   */
  onOversized?(format: number, seq: number, size: number): boolean;
}

/** Decodes request frames (server side). */
export class RequestDecoder extends FrameDecoder {
  private readonly sink: RequestSink;
  private readonly maxFrameSize: number;
  private readonly names = new ActionNames();
  /**
   * The peer negotiated the extensions: a FORMAT_EXT_HEADER request's
   * header that is just `{d}` is read here, and its msg handed on past it
   * (one view of the body, not a view and then a view of that).
   */
  deadlines = false;

  constructor(sink: RequestSink, maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    super(REQUEST_HEADER_SIZE);
    this.sink = sink;
    this.maxFrameSize = maxFrameSize;
  }

  protected bodyLength(buf: Buffer, off: number): number {
    checkMagicAndVersion(buf, off, 'client');
    const action = readU32(buf, off + 4);
    const actionLen = action >= ACTION_STRING_BIT ? action & ACTION_LEN_MASK : 0;
    const bodyLen = actionLen + readU32(buf, off + 24) + readU32(buf, off + 28);
    if (bodyLen > this.maxFrameSize - REQUEST_HEADER_SIZE) {
      const seq = readU53(buf, off + 8);
      if (seq < 0 || this.sink.onOversized?.(buf[off + 3]!, seq, bodyLen + REQUEST_HEADER_SIZE) !== true) {
        throw new FrameTooLargeError(bodyLen + REQUEST_HEADER_SIZE, this.maxFrameSize);
      }
      this.skip();
    }
    return bodyLen;
  }

  protected emit(hdr: Buffer, h: number, body: Buffer, b: number): void {
    const rawAction = readU32(hdr, h + 4);
    const seq = readU53(hdr, h + 8);
    if (seq < 0) throw new ProtocolError('request seq exceeds 2^53');
    const format = hdr[h + 3]!;
    const msgLen = readU32(hdr, h + 24);
    const blobLen = readU32(hdr, h + 28);
    let action: number | string;
    if (rawAction >= ACTION_STRING_BIT) {
      const actionLen = rawAction & ACTION_LEN_MASK;
      action = this.names.decode(body, b, b + actionLen);
      b += actionLen;
    } else {
      action = rawAction;
    }
    const msgEnd = b + msgLen;
    let msgStart = b;
    let left = -1;
    if (this.deadlines && (format & FORMAT_EXT_HEADER) !== 0) {
      left = readDeadlineHeader(body, b, msgEnd);
      if (left >= 0) msgStart += 4 + body[b]!;
    }
    this.sink.onRequest(
      format,
      action,
      seq,
      readU64Lossy(hdr, h + 16),
      msgLen === 0 ? EMPTY : body.subarray(msgStart, msgEnd),
      blobLen === 0 ? EMPTY : body.subarray(msgEnd, msgEnd + blobLen),
      left,
    );
  }
}
