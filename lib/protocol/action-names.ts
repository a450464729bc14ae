/**
 * Decodes action strings without allocating for the ones seen before: a
 * small direct-mapped cache keyed by a cheap hash of the bytes, verified by
 * comparing them. Servers see few distinct actions; a miss just decodes.
 */
const SLOTS = 64;

export class ActionNames {
  private readonly bytes: (Buffer | undefined)[] = new Array(SLOTS);
  private readonly names: string[] = new Array(SLOTS);

  decode(buf: Buffer, start: number, end: number): string {
    const len = end - start;
    if (len === 0) return '';
    const slot = (len * 31 + buf[start]! * 7 + buf[end - 1]! * 13 + buf[start + (len >> 1)]!) & (SLOTS - 1);
    const known = this.bytes[slot];
    if (known !== undefined && known.length === len && sameBytes(known, buf, start, len)) return this.names[slot]!;
    const name = buf.toString('utf8', start, end);
    if (len <= 256) {
      this.bytes[slot] = Buffer.from(buf.subarray(start, end));
      this.names[slot] = name;
    }
    return name;
  }
}

function sameBytes(a: Buffer, b: Buffer, start: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[i] !== b[start + i]) return false;
  return true;
}
