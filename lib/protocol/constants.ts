/**
 * occams v1 wire constants (see docs/PROTOCOL.md). All integers little-endian.
 *
 * Request header (32 bytes)              Response header (20 bytes)
 *  0 u16 magic   2 u8 ver  3 u8 format    0 u16 magic   2 u8 ver  3 u8 flag
 *  4 u32 action (high bit: string len)    4 u32 msg_len (flag 1: the errno)
 *  8 u64 seq                              8 u64 seq
 * 16 u64 client_id                       16 i32 blob_len
 * 24 u32 msg_len   28 u32 blob_len
 */
export const MAGIC = 19749; // bytes 25 4D
export const VERSION = 1;

export const REQUEST_HEADER_SIZE = 32;
export const RESPONSE_HEADER_SIZE = 20;

/** High bit of the action field: the low 31 bits are a string length. */
export const ACTION_STRING_BIT = 0x8000_0000;
export const ACTION_LEN_MASK = 0x7fff_ffff;

/** Numeric action 0 with no body: liveness probe, answered with empty ok. */
export const ACTION_PING = 0;

/** Response flags understood by every v1 peer. */
export const FLAG_OK = 0;
export const FLAG_ERRNO = 1;
export const FLAG_ERROR_BYTES = 2;

export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024;

/** Largest seq/client id we carry as a double (2^53 - 1). */
export const MAX_U53 = Number.MAX_SAFE_INTEGER;

/** Shared zero-length view for absent msg/blob sections (never written to). */
export const EMPTY: Buffer = Buffer.alloc(0);
