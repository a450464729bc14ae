import type { Codec } from './codec.js';
import { MsgpackCodec } from './msgpack-codec.js';
import { ownedIfRead } from './read-buffer.js';

/**
 * Decodes bytes received. Bytes in the process's read buffer (read-buffer.ts)
 * are written over once the read callback returns: MsgpackCodec copies out
 * what it keeps of them, while a codec of the application's may keep views
 * of its input (the Codec contract lets it), so it is handed a copy in
 * memory of its own (`ownedIfRead`: not Node's pool, whose other bytes a
 * view's `.buffer` would reach).
 */
export function decodeReceived(codec: Codec, bytes: Uint8Array, maxWeight?: number): unknown {
  return codec.decode(codec instanceof MsgpackCodec ? bytes : ownedIfRead(bytes), maxWeight);
}
