import { u16, u32 } from './msgpack-check.js';

/**
 * A sampled count of the map keys new to one connection, in the plain
 * MessagePack maps of the messages it sends (a record session's shapes are
 * counted exactly, by ShapeTable). A new property name is cheap to send and
 * dear to keep (V8 interns it and builds hidden classes for it, garbage the
 * whole process collects in pauses every connection waits for), so a
 * server paces a connection by it (RpcServerOptions.newKeyRate), whether
 * the names come as record shapes or as plain maps.
 *
 * Walking every message's keys would cost every request; one small message
 * in SAMPLE_EVERY, chosen at random, is walked instead (large ones more
 * often, WALK_ALL_FROM), and stands for the others: a peer sending new names in every message is counted as surely
 * as if all were walked, on average, and one that cannot see which message
 * is walked cannot steer its names past the count. Keys are known by a
 * seeded 32-bit hash of their bytes, at most KNOWN_KEYS of them (past it
 * the set starts over): a schema's names stay known.
 */
const SAMPLE_EVERY = 16;
/**
 * Messages this long or longer are always walked, shorter ones more often
 * the longer they are: one large message of new names (a dictionary of
 * ids) is counted as it is, not as 16 times itself or nothing, and its
 * walk costs little beside its decode.
 */
const WALK_ALL_FROM = 64 * 1024;
const KNOWN_KEYS = 4096;
/** containers deeper than this are skipped whole (their keys go uncounted; checkMessage bounded the message) */
const MAX_DEPTH = 64;

/** values left in each open container, and whether it is a map (its values alternate key, value) */
const left = new Float64Array(MAX_DEPTH + 1);
const isMap = new Uint8Array(MAX_DEPTH + 1);

let seedCounter = 0x9e3779b9 ^ (Math.random() * 0xffffffff);

export class KeyCensus {
  private readonly known = new Set<number>();
  private readonly seed: number;
  private rnd: number;

  /**
   * `shapes`: a record session's slots (msgpackr's `structures`), to step
   * over its records' values; undefined for plain MessagePack.
   */
  constructor(private readonly shapes?: readonly unknown[]) {
    seedCounter = (Math.imul(seedCounter ^ (seedCounter >>> 15), 0x2c1b3c6d) + 0x632be5ab) | 0;
    this.seed = seedCounter | 1;
    this.rnd = (seedCounter ^ 0x5bd1e995) | 1;
  }

  /**
   * New keys in `msg` (one message that checkMessage accepted and that was
   * decoded), estimated: 0 for the messages not walked, the count over the
   * chance of being walked for those that are.
   */
  count(msg: Uint8Array): number {
    let x = this.rnd;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rnd = x;
    const length = msg.length;
    if (length >= WALK_ALL_FROM) return this.walk(msg);
    // walked with probability max(1/SAMPLE_EVERY, length / WALK_ALL_FROM), its count divided by it
    const every = Math.min(SAMPLE_EVERY, WALK_ALL_FROM / length);
    if ((x >>> 0) / 0x1_0000_0000 >= 1 / every || length < 3) return 0;
    return every * this.walk(msg);
  }

  /** The keys of `msg`'s maps not in the table (they are from now on). */
  private walk(src: Uint8Array): number {
    const end = src.length;
    const known = this.known;
    const shapes = this.shapes;
    let fresh = 0;
    let depth = 0;
    left[0] = 1;
    isMap[0] = 0;
    let pos = 0;
    while (pos < end) {
      while (left[depth] === 0) {
        if (depth === 0) return fresh;
        depth--;
      }
      const key = isMap[depth] === 1 && left[depth] % 2 === 0;
      left[depth]--;
      const t = src[pos++]!;
      let strLen = -1;
      let children = 0;
      let map = 0;
      if (t < 0x80) {
        // positive fixint; in a session, a record of that slot's shape: its values follow
        if (t >= 0x40 && shapes !== undefined) {
          const shape = shapes[t & 0x3f] as readonly unknown[] | undefined;
          if (shape !== undefined) children = shape.length;
        }
      } else if (t < 0x90) {
        children = 2 * (t & 0x0f);
        map = 1;
      } else if (t < 0xa0) {
        children = t & 0x0f;
      } else if (t < 0xc0) {
        strLen = t & 0x1f;
      } else if (t < 0xe0) {
        switch (t) {
          case 0xd9:
            strLen = src[pos++]!;
            break;
          case 0xda:
            strLen = u16(src, pos);
            pos += 2;
            break;
          case 0xdb:
            strLen = u32(src, pos);
            pos += 4;
            break;
          case 0xc4:
            pos += 1 + src[pos]!;
            break;
          case 0xc5:
            pos += 2 + u16(src, pos);
            break;
          case 0xc6:
            pos += 4 + u32(src, pos);
            break;
          case 0xc7:
            pos += 2 + src[pos]!;
            break;
          case 0xc8:
            pos += 3 + u16(src, pos);
            break;
          case 0xc9:
            pos += 5 + u32(src, pos);
            break;
          case 0xcc:
          case 0xd0:
            pos += 1;
            break;
          case 0xcd:
          case 0xd1:
            pos += 2;
            break;
          case 0xca:
          case 0xce:
          case 0xd2:
            pos += 4;
            break;
          case 0xcb:
          case 0xcf:
          case 0xd3:
            pos += 8;
            break;
          case 0xd4:
            if (src[pos] === 0x72 && shapes !== undefined) {
              // a record definition (d4 72 id [keys]): its keys are the session's to count; the record's values follow
              pos = skipKeys(src, pos + 2, end);
              children = definedKeys;
              break;
            }
            pos += 2;
            break;
          case 0xd5:
            pos += 3;
            break;
          case 0xd6:
            pos += 5;
            break;
          case 0xd7:
            pos += 9;
            break;
          case 0xd8:
            pos += 17;
            break;
          case 0xdc:
            children = u16(src, pos);
            pos += 2;
            break;
          case 0xdd:
            children = u32(src, pos);
            pos += 4;
            break;
          case 0xde:
            children = 2 * u16(src, pos);
            map = 1;
            pos += 2;
            break;
          case 0xdf:
            children = 2 * u32(src, pos);
            map = 1;
            pos += 4;
            break;
        }
      }
      if (strLen >= 0) {
        if (key && pos + strLen <= end) {
          // FNV-1a over the key's bytes, seeded
          let h = this.seed;
          for (let i = pos, e = pos + strLen; i < e; i++) h = Math.imul(h ^ src[i]!, 0x01000193);
          if (!known.has(h)) {
            if (known.size >= KNOWN_KEYS) known.clear();
            known.add(h);
            fresh++;
          }
        }
        pos += strLen;
      } else if (children > 0) {
        if (depth === MAX_DEPTH) return fresh; // deeper than we follow: the rest goes uncounted
        depth++;
        left[depth] = children;
        isMap[depth] = map;
      }
    }
    return fresh;
  }
}

/** The keys of the record definition skipKeys last stepped over. */
let definedKeys = 0;

/** Past a record definition's array of string keys (checkMessage has checked its form); sets definedKeys. */
function skipKeys(src: Uint8Array, pos: number, end: number): number {
  const t = src[pos]!;
  let keys: number;
  if (t >= 0x90 && t < 0xa0) {
    keys = t & 0x0f;
    pos += 1;
  } else if (t === 0xdc) {
    keys = u16(src, pos + 1);
    pos += 3;
  } else if (t === 0xdd) {
    keys = u32(src, pos + 1);
    pos += 5;
  } else {
    definedKeys = 0;
    return end;
  }
  definedKeys = keys;
  for (let i = 0; i < keys && pos < end; i++) {
    const k = src[pos++]!;
    if (k >= 0xa0 && k < 0xc0) pos += k & 0x1f;
    else if (k === 0xd9) pos += 1 + src[pos]!;
    else if (k === 0xda) pos += 2 + u16(src, pos);
    else if (k === 0xdb) pos += 4 + u32(src, pos);
    else return end;
  }
  return pos;
}
