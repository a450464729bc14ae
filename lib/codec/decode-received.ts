import type { Codec } from './codec.js';
import { MsgpackCodec } from './msgpack-codec.js';
import { isReadBuffer } from './read-buffer.js';

/**
 * Decodes bytes received. Bytes in the process's read buffer (read-buffer.ts)
 * are written over once the read callback returns: MsgpackCodec copies out
 * what it keeps of them, while a codec of the application's may keep views
 * of its input (the Codec contract lets it), so it is handed a copy.
 */
export function decodeReceived(codec: Codec, bytes: Uint8Array, maxWeight?: number): unknown {
  if (isReadBuffer(bytes) && !(codec instanceof MsgpackCodec)) return codec.decode(Buffer.from(bytes), maxWeight);
  return codec.decode(bytes, maxWeight);
}
