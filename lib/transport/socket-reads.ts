import type { Socket } from 'node:net';
import { Readable } from 'node:stream';

import { readBuffer } from '../codec/read-buffer.js';

/**
 * Hands each chunk a socket reads to `onChunk`. On Node, a plain TCP or
 * Unix socket reads into the process's one read buffer (the codec's
 * read-buffer.ts): Node's `onread` mode, which net.connect takes as an
 * option and which is switched on here for any socket, accepted ones too.
 * The chunk is then a view of that buffer, good only until `onChunk`
 * returns (callers copy what they keep: `isReadBuffer`). Elsewhere (TLS,
 * Bun, Deno, a Node whose internals differ, bytes already buffered) it is
 * the 'data' event and a chunk of its own.
 *
 * Pausing keeps the meaning it has with 'data': after `socket.pause()`
 * the socket goes on reading until what is held is enough (there, the
 * readable buffer's highWaterMark; here, the moment `onChunk` returns
 * false; `socket.resume()` reads on), so a peer that hangs up is still
 * seen while paused. ('end' waits for bytes held in the readable buffer;
 * here none are, so a reader that holds bytes returns false: the FIN is
 * then read after them.)
 *
 * Returns true when reads go to the shared buffer.
 */
export function readSocket(socket: Socket, onChunk: (chunk: Buffer) => boolean | void): boolean {
  if (!intoReadBuffer(socket, onChunk)) {
    socket.on('data', onChunk);
    return false;
  }
  // Node's pause in onread mode stops reading at once, so a peer's FIN or reset goes unseen until resume:
  // paused, it holds back events only, as with 'data'; reading stops when onChunk says so
  socket.pause = function pause(this: Socket) {
    return Readable.prototype.pause.call(this) as Socket;
  };
  socket.resume(); // (reads start, or go on, in onread mode too)
  return true;
}

/** `socket`'s onread slots, found by their names ('kBuffer', 'kBufferCb', 'kBufferGen' in Node's net.Socket). */
interface OnreadSlots {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

let slotsChecked = false;
let slots: OnreadSlots | undefined;

function onreadSlots(socket: Socket): OnreadSlots | undefined {
  if (slotsChecked) return slots;
  slotsChecked = true;
  // Node alone: Bun and Deno model sockets their own way
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun !== undefined || versions.deno !== undefined) return undefined;
  const named = (name: string) => Object.getOwnPropertySymbols(socket).find((s) => s.description === name);
  const buffer = named('kBuffer');
  const callback = named('kBufferCb');
  const generator = named('kBufferGen');
  if (buffer === undefined || callback === undefined || generator === undefined) return undefined;
  return (slots = { buffer, callback, generator });
}

type Slotted = Socket & Record<symbol, unknown> & { _handle?: { useUserBuffer?: (buf: Uint8Array) => void } | null; encrypted?: boolean };

function intoReadBuffer(socket: Socket, onChunk: (chunk: Buffer) => boolean | void): boolean {
  const s = socket as Slotted;
  if (s.encrypted === true || process.env.OCCAMS_READ_BUFFER === '0') return false;
  const handle = s._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return false;
  if (socket.readableLength > 0 || socket.listenerCount('data') > 0) return false; // bytes already read, or someone else reads
  const found = onreadSlots(socket);
  if (found === undefined || s[found.buffer] !== null || s[found.callback] !== null) return false;
  const buffer = readBuffer();
  const zero = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length); // (Uint8Array's fill: no argument checks)
  s[found.buffer] = buffer;
  // buf is the read buffer: a view of what arrived; false stops reading until socket.resume(). The bytes are
  // zeroed after: the buffer never holds one connection's bytes while another's are decoded (as the codec's
  // scratch buffer), whatever a decoder might read past its message
  s[found.callback] = (nread: number, buf: Buffer) => {
    try {
      return onChunk(buf.subarray(0, nread));
    } finally {
      zero.fill(0, 0, nread);
    }
  };
  handle.useUserBuffer(buffer);
  return true;
}

/**
 * A paused socket whose reader holds nothing any more (it returned false
 * to stop reading, and has since used what it held) reads on, still
 * paused: so a peer that hangs up meanwhile is seen, as a paused 'data'
 * socket sees it. (With 'data' this changes nothing.)
 */
export function readOn(socket: Socket): void {
  if (!socket.isPaused()) return;
  socket.resume();
  socket.pause();
}
