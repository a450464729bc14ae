/**
 * (In the codec, the lowest layer that has to ask whether bytes are the
 * read buffer's: a decoder must not hand out views of them.)
 *
 * The one buffer this process's plain TCP and Unix socket connections read
 * into (transport's `readSocket`, on Node): a read lands here instead of in
 * a fresh 64 KiB allocation, which Node makes for every read and then
 * shrinks to what arrived. Those allocations, freed in bulk at each
 * scavenge, are what glibc hands back to the kernel and faults in again
 * (about 6.6 µs a page on the benchmark VM); one buffer read over and over
 * also stays in the CPU's cache.
 *
 * Its bytes are good only until the callback that was given them returns:
 * they are zeroed then (so no connection's bytes stay while another's are
 * decoded), and the next read, on any connection, writes over them. So
 * whatever outlives that call is copied out first, and every place that
 * keeps bytes asks `isReadBuffer`:
 * - FrameDecoder: the rest of a chunk held while paused, a partial header,
 *   a body split across reads (copied as before);
 * - decoders of values (MsgpackCodec: bin values are copied out; any other
 *   codec is handed a copy);
 * - a request's or response's blob, handed to the application.
 */
/**
 * 256 KiB, not Node's 64: at 16 KiB x64 a 64 KiB read split most reads'
 * last frame (each copied into a body of its own) and took 4x the reads;
 * 256 KiB was 1.3-1.4x the calls there, and the same elsewhere
 * (bench/results/read-buffer.md). It stays in a core's L2 cache.
 */
export const READ_BUFFER_SIZE = 256 * 1024;

let shared: Buffer | undefined;

/** The process's read buffer (made on first use). */
export function readBuffer(): Buffer {
  return (shared ??= Buffer.alloc(READ_BUFFER_SIZE)); // (zeroed, and kept so: bytes are zeroed once read)
}

/** True when `bytes` lie in the read buffer: good only until the read callback returns. */
export function isReadBuffer(bytes: Uint8Array): boolean {
  return shared !== undefined && bytes.buffer === shared.buffer;
}

/**
 * `bytes` themselves, or, when they lie in the read buffer, a copy in
 * memory of its own (not Node's shared pool: whoever is handed it can
 * reach its whole `.buffer`).
 */
export function ownedIfRead(bytes: Buffer): Buffer;
export function ownedIfRead(bytes: Uint8Array): Uint8Array;
export function ownedIfRead(bytes: Uint8Array): Uint8Array {
  if (shared === undefined || bytes.buffer !== shared.buffer) return bytes;
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  copy.set(bytes);
  return copy;
}
