import { OccamsError } from '../errors.js';

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
 *   chunk, never copied;
 * - a body is buffered only after its header passed every check (magic,
 *   version, size limit), so a hostile length never allocates;
 * - after the first protocol error the decoder is dead and keeps returning
 *   that error: the connection must close.
 * Subclasses read the fixed-offset header fields.
 */
export abstract class FrameDecoder {
  private readonly headerSize: number;
  private readonly header: Buffer;
  /** bytes of `header` filled; 0 when between frames or inside a body */
  private headerFill = 0;
  /** the body being assembled from several chunks */
  private body: Buffer | undefined;
  private bodyFill = 0;
  private failure: OccamsError | undefined;

  protected constructor(headerSize: number) {
    this.headerSize = headerSize;
    this.header = Buffer.allocUnsafe(headerSize);
  }

  /** Bytes held for an unfinished frame (for tests and stats). */
  get buffered(): number {
    return this.body !== undefined ? this.headerSize + this.bodyFill : this.headerFill;
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
    try {
      this.consume(chunk);
    } catch (err) {
      if (!(err instanceof OccamsError)) throw err;
      this.failure = err;
      this.body = undefined;
    }
    return this.failure;
  }

  private consume(chunk: Buffer): void {
    const headerSize = this.headerSize;
    const len = chunk.length;
    let off = 0;
    while (off < len) {
      const body = this.body;
      if (body !== undefined) {
        const n = Math.min(body.length - this.bodyFill, len - off);
        chunk.copy(body, this.bodyFill, off, off + n);
        this.bodyFill += n;
        off += n;
        if (this.bodyFill === body.length) {
          this.body = undefined;
          this.emit(this.header, 0, body, 0);
        }
        continue;
      }
      if (this.headerFill === 0 && len - off >= headerSize) {
        // Fast path: the header is whole in this chunk.
        const bodyLen = this.bodyLength(chunk, off);
        const start = off + headerSize;
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
        if (bodyLen === 0) this.emit(this.header, 0, this.header, headerSize);
        else this.startBody(bodyLen);
      }
    }
  }

  private startBody(bodyLen: number): void {
    this.body = Buffer.allocUnsafe(bodyLen);
    this.bodyFill = 0;
  }

  /** Validates the header at `off` and returns the body length; throws an OccamsError. */
  protected abstract bodyLength(buf: Buffer, off: number): number;

  /** Emits one frame: header at `hdr[hdrOff]`, body at `body[bodyOff]`. */
  protected abstract emit(hdr: Buffer, hdrOff: number, body: Buffer, bodyOff: number): void;
}
