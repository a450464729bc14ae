/**
 * nestjs-occams extensions to occams v1 (specified in docs/PROTOCOL.md).
 *
 * Negotiation: a client that speaks them sends HELLO (a numeric action) as
 * its first request. A server that speaks them answers ok with its feature
 * bits and from then on may send extension frames on that connection; any
 * other answer (a v1 server's error) means "plain v1". A server never sends
 * an extension frame to a connection that did not say HELLO, and a client
 * never sets extension bits before the server's answer.
 */

/** Numeric control actions, chosen far from user numeric actions. */
export const ACTION_HELLO = 0x4f43_0001;
export const ACTION_CANCEL = 0x4f43_0002;
/** Client grants a stream more items: seq = the stream's seq, msg = u32 LE count (FEATURE_CREDIT). */
export const ACTION_CREDIT = 0x4f43_0003;
/** Client acknowledges GOAWAY: it sends no new request on this connection (FEATURE_GOAWAY_ACK). */
export const ACTION_GOAWAY_ACK = 0x4f43_0004;
/**
 * Server reflection: an ordinary request (answered ok with a description
 * of what the server serves, or `rpc_method_notfound` when reflection is
 * off); numeric, so no user pattern can meet it; needs no HELLO.
 */
export const ACTION_DESCRIBE = 0x4f43_0005;

/** Request `format` byte bits (v1 peers send 0 and ignore the byte). */
export const FORMAT_EVENT = 0x01; // no response is owed
export const FORMAT_EXT_HEADER = 0x02; // msg starts with u32 len + msgpack ext header
export const FORMAT_RECORDS = 0x04; // the payload is in the connection's record session (FEATURE_RECORDS)

/**
 * Extension response flags (only to connections that said HELLO and, for
 * each flag, negotiated its feature bit).
 */
export const FLAG_STREAM_ITEM = 3; // one value of a streamed result; more follow
export const FLAG_ERROR_VALUE = 4; // error value encoded with the codec, in the blob
export const FLAG_GOAWAY = 5; // seq 0: server is draining, send new requests elsewhere
export const FLAG_ERRNO_MESSAGE = 6; // msg_len is the errno (no msg); the blob is the UTF-8 message
export const FLAG_OK_RECORDS = 7; // flag 0 whose value is in the connection's record session (FEATURE_RECORDS)

/** Feature bits carried in HELLO and its answer. */
export const FEATURE_EVENTS = 1 << 0;
export const FEATURE_META = 1 << 1;
export const FEATURE_STREAMING = 1 << 2;
export const FEATURE_CANCEL = 1 << 3;
export const FEATURE_DEADLINE = 1 << 4;
export const FEATURE_ERROR_VALUE = 1 << 5;
export const FEATURE_GOAWAY = 1 << 6;
export const FEATURE_ERRNO_MESSAGE = 1 << 7;
/** per-stream credit: the server sends a stream's items only as the client grants them */
export const FEATURE_CREDIT = 1 << 8;
/** the client answers GOAWAY with GOAWAY_ACK once it will send nothing new */
export const FEATURE_GOAWAY_ACK = 1 << 9;
/**
 * values in msgpackr's record extension, one session per connection and
 * direction (Codec.session): requests with FORMAT_RECORDS, results with
 * FLAG_OK_RECORDS. Offered by a client whose codec has sessions; granted by
 * a server whose codec has them and has the client's codec name.
 */
export const FEATURE_RECORDS = 1 << 10;
/**
 * the server may refuse a request unrun with `rpc_overloaded` (its
 * concurrency limit and queue are full, or the request could not start
 * before its deadline); peers without it get `rpc_unreachable` instead
 */
export const FEATURE_OVERLOADED = 1 << 11;
export const ALL_FEATURES =
  FEATURE_EVENTS |
  FEATURE_META |
  FEATURE_STREAMING |
  FEATURE_CANCEL |
  FEATURE_DEADLINE |
  FEATURE_ERROR_VALUE |
  FEATURE_GOAWAY |
  FEATURE_ERRNO_MESSAGE |
  FEATURE_CREDIT |
  FEATURE_GOAWAY_ACK |
  FEATURE_RECORDS |
  FEATURE_OVERLOADED;

/**
 * Items a server may send on a stream before the client grants more
 * (FEATURE_CREDIT), unless the request's ext header says otherwise (`c`).
 */
export const DEFAULT_STREAM_CREDIT = 64;
/** Largest initial credit a request may ask for. */
export const MAX_STREAM_CREDIT = 1 << 20;

/** Extension protocol revision carried in HELLO. */
export const EXTENSIONS_VERSION = 1;

/**
 * What travels in the ext header: request metadata (Nest's
 * `ReadPacket.metadata`) and the time left before the caller gives up,
 * relative so that clocks need not agree.
 */
export interface RequestExtHeader {
  /** metadata key/values */
  m?: Record<string, unknown>;
  /** milliseconds left until the caller's deadline, at send time */
  d?: number;
  /** initial credit of a streamed result, in items (FEATURE_CREDIT); default DEFAULT_STREAM_CREDIT */
  c?: number;
}

/**
 * The ext header of a plain call, `{d: n}`, is written and read by hand:
 * every call to a FEATURE_DEADLINE peer carries it, so it costs neither an
 * object nor a msgpack encode or decode. The bytes are standard msgpack
 * (fixmap 1, fixstr "d", the smallest uint for n), what any encoder makes
 * of that map; a reader falls back to its decoder for any other header.
 *
 *   u32 LE len | 81 | a1 64 | n: 00-7f | cc u8 | cd u16 BE | ce u32 BE
 */
/** Largest `d` the hand-written header carries (u32): the time left is clamped to it (49 days). */
export const MAX_DEADLINE_LEFT = 0xffff_ffff;

/** Bytes of the msgpack `{d: left}` (without the u32 length), for an integer `left` in [0, MAX_DEADLINE_LEFT]. */
export function deadlineHeaderSize(left: number): number {
  return left < 0x80 ? 4 : left < 0x100 ? 5 : left < 0x1_0000 ? 6 : 8;
}

/** Bytes the ext of `{d: left}` takes in a msg: its u32 length, then the header. */
export function deadlineExtSize(left: number): number {
  return 4 + deadlineHeaderSize(left);
}

/** Writes the msgpack `{d: left}` at `off` (`left` an integer in [0, MAX_DEADLINE_LEFT]); returns its size. */
export function writeDeadlineHeader(buf: Uint8Array, off: number, left: number): number {
  buf[off] = 0x81;
  buf[off + 1] = 0xa1;
  buf[off + 2] = 0x64;
  if (left < 0x80) {
    buf[off + 3] = left;
    return 4;
  }
  if (left < 0x100) {
    buf[off + 3] = 0xcc;
    buf[off + 4] = left;
    return 5;
  }
  if (left < 0x1_0000) {
    buf[off + 3] = 0xcd;
    buf[off + 4] = left >>> 8;
    buf[off + 5] = left & 0xff;
    return 6;
  }
  buf[off + 3] = 0xce;
  buf[off + 4] = left >>> 24;
  buf[off + 5] = (left >>> 16) & 0xff;
  buf[off + 6] = (left >>> 8) & 0xff;
  buf[off + 7] = left & 0xff;
  return 8;
}

/**
 * The `d` of a request msg (`msg[start..end)`, all of `msg` by default)
 * whose ext header (after its u32 LE length) is exactly `{d: n}`, a map of
 * one entry (fixmap, or map16 as msgpackr writes maps) with n a msgpack
 * uint of at most 32 bits; -1 for any other header (read with the decoder
 * then) or a length that overruns the msg. The msg after the header starts
 * at `start + 4 + msg[start]`.
 */
export function readDeadlineHeader(msg: Uint8Array, start = 0, end = msg.length): number {
  if (end - start < 8 || msg[start + 1] !== 0 || msg[start + 2] !== 0 || msg[start + 3] !== 0) return -1;
  const len = msg[start]!;
  if (len > end - start - 4) return -1;
  let at = start + 5; // the key, after the map's head
  if (msg[at - 1] !== 0x81) {
    if (msg[at - 1] !== 0xde || msg[at] !== 0 || msg[at + 1] !== 1) return -1;
    at += 2;
  }
  if (msg[at] !== 0xa1 || msg[at + 1] !== 0x64) return -1;
  const t = msg[at + 2]!;
  end = start + 4 + len; // the uint must end the header
  at += 3;
  if (t < 0x80) return end === at ? t : -1;
  switch (t) {
    case 0xcc:
      return end === at + 1 ? msg[at]! : -1;
    case 0xcd:
      return end === at + 2 ? (msg[at]! << 8) | msg[at + 1]! : -1;
    case 0xce:
      return end === at + 4 ? msg[at]! * 0x100_0000 + ((msg[at + 1]! << 16) | (msg[at + 2]! << 8) | msg[at + 3]!) : -1;
  }
  return -1;
}
