import { ownedIfRead } from '../codec/read-buffer.js';
import { InvalidVersionError, OccamsError, ProtocolError } from '../errors.js';
import { MAGIC, VERSION } from './constants.js';
import { readU16 } from './u64.js';

/**
 * Where the decoder is between chunks: reading a header (possibly part of
 * one, in `header`), reading a body (in `body`), reading past a refused
 * body (`skip`), or dead after a protocol error. A frame that arrives whole
 * passes through `header` without ever being buffered.
 */
export type ReadState = 'header' | 'body' | 'skip' | 'dead';

/**
 * Incremental frame decoder: bytes in, whole frames out.
 *
 *   chunk ──► [header: fixed size] ──► [body: length from header] ──► emit
 *              partial? copy into       whole in chunk? emit a view
 *              `header` (<=32 B)        split? copy into one buffer
 *                                       of exactly the body's size
 *
 * Invariants:
 * - a frame that arrives whole in one chunk is emitted as views of that
 *   chunk, never copied (a view of the read buffer is good only until
 *   `push` returns: read-buffer.ts);
 * - bytes kept across chunks are its own, never views of the read buffer;
 * - a body is buffered only after its header passed every check (magic,
 *   version, size limit), so a hostile length never allocates;
 * - after the first protocol error the decoder is dead and keeps returning
 *   that error: the connection must close;
 * - a subclass may refuse one frame alone (`skip()` from `bodyLength`): its
 *   body is read past, never buffered, and the frames after it decode;
 * - `pause()` stops emitting at the next frame boundary, even mid-chunk; the
 *   rest of the chunk waits in `stash` until `resume()`.
 * Subclasses read the fixed-offset header fields.
 */
export abstract class FrameDecoder {
  private readonly headerSize: number;
  private readonly header: Buffer;
  private state: ReadState = 'header';
  /** bytes of `header` filled; 0 when between frames or inside a body */
  private headerFill = 0;
  /** the body being assembled from several chunks */
  private body: Buffer | undefined;
  private bodyFill = 0;
  /** `bodyLength` asked for the frame it measured to be read past (`skip`) */
  private skipNext = false;
  /** bytes of a skipped body still to come */
  private skipLeft = 0;
  private failure: OccamsError | undefined;
  private paused = false;
  /** bytes received while paused, not looked at yet */
  private stash: Buffer | undefined;

  protected constructor(headerSize: number) {
    this.headerSize = headerSize;
    this.header = Buffer.allocUnsafe(headerSize);
  }

  get readState(): ReadState {
    return this.state;
  }

  /** Bytes held for an unfinished frame (for tests and stats). */
  get buffered(): number {
    if (this.state === 'skip') return this.headerSize + (this.stash?.length ?? 0); // mid-frame, holding nothing of it
    const held = this.state === 'body' ? this.headerSize + this.bodyFill : this.headerFill;
    return held + (this.stash?.length ?? 0);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Stops emitting frames at the next frame boundary. */
  pause(): void {
    this.paused = true;
  }

  /** Emits what was held back, then carries on. */
  resume(): OccamsError | undefined {
    if (!this.paused) return this.failure;
    this.paused = false;
    const stash = this.stash;
    this.stash = undefined;
    return stash === undefined ? this.failure : this.push(stash);
  }

  get failed(): OccamsError | undefined {
    return this.failure;
  }

  /**
   * Feeds bytes. Returns undefined, or the protocol error that killed the
   * decoder. Errors thrown by the frame consumer propagate unchanged.
   */
  push(chunk: Buffer): OccamsError | undefined {
    if (this.failure !== undefined) return this.failure;
    if (this.paused) {
      this.stash = this.stash === undefined ? ownedIfRead(chunk) : Buffer.concat([this.stash, chunk]);
      return undefined;
    }
    try {
      this.consume(chunk);
    } catch (err) {
      if (!(err instanceof OccamsError)) throw err;
      this.failure = err;
      this.state = 'dead';
      this.body = undefined;
    }
    return this.failure;
  }

  private consume(chunk: Buffer): void {
    const headerSize = this.headerSize;
    const len = chunk.length;
    let off = 0;
    while (off < len) {
      if (this.paused) {
        this.stash = ownedIfRead(chunk.subarray(off)); // (the read buffer's bytes last only this call)
        return;
      }
      if (this.state === 'skip') {
        const n = Math.min(this.skipLeft, len - off);
        this.skipLeft -= n;
        off += n;
        if (this.skipLeft === 0) this.state = 'header';
        continue;
      }
      if (this.state === 'body') {
        const body = this.body!;
        const n = Math.min(body.length - this.bodyFill, len - off);
        chunk.copy(body, this.bodyFill, off, off + n);
        this.bodyFill += n;
        off += n;
        if (this.bodyFill === body.length) {
          this.body = undefined;
          this.state = 'header';
          this.emit(this.header, 0, body, 0);
        }
        continue;
      }
      if (this.headerFill === 0 && len - off >= headerSize) {
        // Fast path: the header is whole in this chunk.
        const bodyLen = this.bodyLength(chunk, off);
        const start = off + headerSize;
        if (this.skipNext) {
          off = this.startSkip(bodyLen, start, len);
          continue;
        }
        if (len - start >= bodyLen) {
          off = start + bodyLen;
          this.emit(chunk, off - bodyLen - headerSize, chunk, start);
          continue;
        }
        chunk.copy(this.header, 0, off, start);
        off = start;
        this.startBody(bodyLen);
        continue;
      }
      const n = Math.min(headerSize - this.headerFill, len - off);
      chunk.copy(this.header, this.headerFill, off, off + n);
      this.headerFill += n;
      off += n;
      if (this.headerFill === headerSize) {
        this.headerFill = 0;
        const bodyLen = this.bodyLength(this.header, 0);
        if (this.skipNext) off = this.startSkip(bodyLen, off, len);
        else if (bodyLen === 0) this.emit(this.header, 0, this.header, headerSize);
        else this.startBody(bodyLen);
      }
    }
  }

  /** From `bodyLength`: the frame being measured is read past, not emitted (the subclass answered it). */
  protected skip(): void {
    this.skipNext = true;
  }

  /** Reads past a skipped body that starts at `start` of a chunk of `len` bytes; returns where reading goes on. */
  private startSkip(bodyLen: number, start: number, len: number): number {
    this.skipNext = false;
    const here = Math.min(bodyLen, len - start);
    if (here < bodyLen) {
      this.skipLeft = bodyLen - here;
      this.state = 'skip';
    }
    return start + here;
  }

  private startBody(bodyLen: number): void {
    this.body = Buffer.allocUnsafe(bodyLen);
    this.bodyFill = 0;
    this.state = 'body';
  }

  /** Validates the header at `off` and returns the body length; throws an OccamsError. */
  protected abstract bodyLength(buf: Buffer, off: number): number;

  /** Emits one frame: header at `hdr[hdrOff]`, body at `body[bodyOff]`. */
  protected abstract emit(hdr: Buffer, hdrOff: number, body: Buffer, bodyOff: number): void;
}

/**
 * The first check of every frame header, request or response; `peer` is
 * who sent it (a server's responses, a client's requests), for the message.
 */
export function checkMagicAndVersion(buf: Buffer, off: number, peer: 'server' | 'client'): void {
  const magic = readU16(buf, off);
  if (magic !== MAGIC) throw new ProtocolError(badMagic(buf, off, magic, peer));
  const ver = buf[off + 2]!;
  if (ver !== VERSION) throw new InvalidVersionError(`unsupported protocol version ${ver}`);
}

/** HTTP/1.x methods' and responses' first two bytes */
const HTTP_STARTS = new Set(['HT', 'GE', 'PO', 'PU', 'DE', 'HE', 'OP', 'PA', 'CO', 'TR', 'PR']);

/** What a frame that does not start with the occams magic most likely is, and what to do. */
function badMagic(buf: Buffer, off: number, magic: number, peer: 'server' | 'client'): string {
  const head = `bad magic 0x${magic.toString(16)}`;
  const b0 = buf[off]!;
  const b1 = buf[off + 1]!;
  const text = String.fromCharCode(b0, b1);
  if (HTTP_STARTS.has(text)) {
    return peer === 'server'
      ? `${head} ("${text}"): not an occams server, it answered like HTTP (is this port an HTTP server's?)`
      : `${head} ("${text}"): not an occams client, it sent HTTP (an HTTP client or a browser on the occams port?)`;
  }
  if ((b0 === 0x16 || b0 === 0x15) && b1 === 0x03) {
    return peer === 'server'
      ? `${head}: the server speaks TLS (set the client's \`tls\` option)`
      : `${head}: the client speaks TLS (set the server's \`tls\` option, or drop the client's)`;
  }
  return `${head}: not an occams ${peer} (the peer does not speak the occams protocol)`;
}
