import { EMPTY, FLAG_ERRNO, MAGIC, RESPONSE_HEADER_SIZE, VERSION } from './constants.js';
import { FLAG_ERRNO_MESSAGE } from './extensions.js';
import { writeU32, writeU53 } from './u64.js';

/** A decoded response. `msg` and `blob` are views into the received bytes. */
export interface ResponseFrame {
  flag: number;
  seq: number;
  /** flags 1 and 6: the errno; otherwise the msg length */
  msgLen: number;
  msg: Buffer;
  blob: Buffer;
}

/** Writes a response header at `off` (note: msg_len before seq). */
export function writeResponseHeader(buf: Buffer, off: number, flag: number, msgLenOrErrno: number, seq: number, blobLen: number): void {
  buf[off] = MAGIC & 0xff;
  buf[off + 1] = MAGIC >>> 8;
  buf[off + 2] = VERSION;
  buf[off + 3] = flag;
  writeU32(buf, off + 4, msgLenOrErrno);
  writeU53(buf, off + 8, seq);
  writeU32(buf, off + 16, blobLen);
}

export interface EncodeResponseInput {
  flag?: number;
  seq: number;
  msg?: Uint8Array;
  blob?: Uint8Array;
  /** flags 1 and 6 only */
  errno?: number;
}

/** Encodes one whole response frame into a new buffer (not the hot path). */
export function encodeResponse(input: EncodeResponseInput): Buffer {
  const flag = input.flag ?? 0;
  const errnoForm = flag === FLAG_ERRNO || flag === FLAG_ERRNO_MESSAGE;
  const msg = errnoForm ? EMPTY : (input.msg ?? EMPTY);
  const blob = input.blob ?? EMPTY;
  const buf = Buffer.allocUnsafe(RESPONSE_HEADER_SIZE + msg.length + blob.length);
  writeResponseHeader(buf, 0, flag, errnoForm ? (input.errno ?? 0) : msg.length, input.seq, blob.length);
  buf.set(msg, RESPONSE_HEADER_SIZE);
  buf.set(blob, RESPONSE_HEADER_SIZE + msg.length);
  return buf;
}
