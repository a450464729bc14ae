import { ACTION_LEN_MASK, ACTION_STRING_BIT, EMPTY, MAGIC, REQUEST_HEADER_SIZE, VERSION } from './constants.js';
import { writeU32, writeU53 } from './u64.js';

/** A decoded request. `msg` and `blob` are views into the received bytes. */
export interface RequestFrame {
  format: number;
  /** numeric action, or the action string */
  action: number | string;
  seq: number;
  clientId: number;
  msg: Buffer;
  blob: Buffer;
}

/**
 * Writes a request header at `off`. `actionBytes` is the UTF-8 action string
 * (then `action` is ignored) or undefined for a numeric action.
 */
export function writeRequestHeader(
  buf: Buffer,
  off: number,
  format: number,
  action: number,
  actionBytes: Uint8Array | undefined,
  seq: number,
  clientId: number,
  msgLen: number,
  blobLen: number,
): void {
  buf[off] = MAGIC & 0xff;
  buf[off + 1] = MAGIC >>> 8;
  buf[off + 2] = VERSION;
  buf[off + 3] = format;
  writeU32(buf, off + 4, actionBytes !== undefined ? ACTION_STRING_BIT | actionBytes.length : action);
  writeU53(buf, off + 8, seq);
  writeU53(buf, off + 16, clientId);
  writeU32(buf, off + 24, msgLen);
  writeU32(buf, off + 28, blobLen);
}

/** Size of a whole request frame. */
export function requestFrameSize(actionLen: number, msgLen: number, blobLen: number): number {
  return REQUEST_HEADER_SIZE + actionLen + msgLen + blobLen;
}

export interface EncodeRequestInput {
  format?: number;
  action: number | string;
  seq: number;
  clientId?: number;
  msg?: Uint8Array;
  blob?: Uint8Array;
}

/** Encodes one whole request frame into a new buffer (not the hot path). */
export function encodeRequest(input: EncodeRequestInput): Buffer {
  const actionBytes = typeof input.action === 'string' ? Buffer.from(input.action, 'utf8') : undefined;
  if (actionBytes !== undefined && actionBytes.length > ACTION_LEN_MASK) throw new RangeError('action too long');
  if (typeof input.action === 'number' && (input.action < 0 || input.action > ACTION_LEN_MASK || !Number.isInteger(input.action))) {
    throw new RangeError(`numeric action out of range: ${input.action}`);
  }
  const msg = input.msg ?? EMPTY;
  const blob = input.blob ?? EMPTY;
  const size = requestFrameSize(actionBytes?.length ?? 0, msg.length, blob.length);
  const buf = Buffer.allocUnsafe(size);
  writeRequestHeader(buf, 0, input.format ?? 0, typeof input.action === 'number' ? input.action : 0, actionBytes, input.seq, input.clientId ?? 0, msg.length, blob.length);
  let off = REQUEST_HEADER_SIZE;
  if (actionBytes) off += actionBytes.copy(buf, off);
  buf.set(msg, off);
  buf.set(blob, off + msg.length);
  return buf;
}
