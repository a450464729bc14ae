import { DEFAULT_STREAM_CREDIT, MAX_STREAM_CREDIT, type RequestExtHeader } from '../protocol/extensions.js';
import { helloCodec } from '../protocol/hello.js';
import type { ServerRequest } from './server-request.js';

/** A request's msg split into its extension header (FORMAT_EXT_HEADER) and the msg proper. */
export interface SplitMsg {
  /** undefined when the header bytes do not decode to a map (ignored, as an unknown field would be) */
  header: RequestExtHeader | undefined;
  msg: Buffer;
}

/** Splits `msg` as `u32 LE length | header | msg`; undefined when the length overruns it (malformed). `maxWeight` bounds the header's decode. */
export function splitExtHeader(msg: Buffer, maxWeight: number): SplitMsg | undefined {
  const extLen = msg.length >= 4 ? msg.readUInt32LE(0) : -1;
  if (extLen < 0 || extLen > msg.length - 4) return undefined;
  let header: RequestExtHeader | undefined;
  try {
    const decoded = helloCodec.decode(msg.subarray(4, 4 + extLen), maxWeight) as unknown;
    header = decoded !== null && typeof decoded === 'object' ? (decoded as RequestExtHeader) : undefined;
  } catch {
    header = undefined;
  }
  return { header, msg: msg.subarray(4 + extLen) };
}

/**
 * Applies a request's header: its metadata, its deadline (ms left when it
 * was read at `readAt`, which also bounds the handler) and, with
 * FEATURE_CREDIT, the stream credit the client asked for (bounded).
 */
export function applyExtHeader(req: ServerRequest, header: RequestExtHeader | undefined, readAt: number, credit: boolean): void {
  if (credit) {
    const c = header?.c;
    req.credit = typeof c === 'number' && c >= 1 ? Math.min(Math.floor(c), MAX_STREAM_CREDIT) : DEFAULT_STREAM_CREDIT;
  }
  if (header === undefined) return;
  if (header.m !== undefined && typeof header.m === 'object') req.meta = header.m;
  if (typeof header.d === 'number' && header.d >= 0) applyDeadline(req, header.d, readAt);
}

/** The caller gives up `left` ms after the request was read at `readAt`: its deadline, which also bounds the handler. */
export function applyDeadline(req: ServerRequest, left: number, readAt: number): void {
  req.deadline = readAt + left;
  req.timeLimit = Math.max(1, left);
}
