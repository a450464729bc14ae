/**
 * Bounds on the object shapes a record session keeps (FEATURE_RECORDS,
 * docs/PROTOCOL.md). A decoder keeps every shape its peer describes until
 * the peer reuses its slot; without bounds, a peer could have it keep
 * gigabytes (msgpackr accepts definitions at thousands of ids, of any size).
 * So a session keeps at most SHAPE_SLOTS shapes (msgpackr's one-byte ids),
 * each of at most MAX_SHAPE_KEYS keys and MAX_SHAPE_KEY_CHARS characters of
 * keys: about 1 MiB per connection at worst. An encoder sends any larger
 * object as a plain map; a decoder that meets a larger shape, or a shape in
 * any other slot, fails (the connection closes).
 */
export const SHAPE_SLOTS = 64;
export const MAX_SHAPE_KEYS = 256;
export const MAX_SHAPE_KEY_CHARS = 4096;
/**
 * Keys a session remembers having seen (to count the new ones): as many
 * as its slots can hold. Past it, it forgets them all and starts over.
 */
const KNOWN_KEYS = SHAPE_SLOTS * MAX_SHAPE_KEYS;
/**
 * New property names a second a server lets one connection's record shapes
 * make it learn by default (RpcServerOptions.newKeyRate): one whole table's
 * worth at once, and as much again each second.
 */
export const NEW_KEY_RATE = KNOWN_KEYS;

/**
 * The property names a session has met, to count the new ones: a new name
 * costs the receiver far more than its bytes (V8 interns it and builds
 * hidden classes for it, garbage the whole process collects later, in
 * pauses every connection waits for).
 */
class KeyNovelty {
  private readonly known = new Set<unknown>();

  /** How many of `keys` were new; they are known from now on. */
  learn(keys: readonly unknown[]): number {
    const known = this.known;
    let fresh = 0;
    for (const key of keys) {
      if (known.has(key)) continue;
      fresh++;
      if (known.size >= KNOWN_KEYS) known.clear();
      known.add(key);
    }
    return fresh;
  }
}

/** Encoder side (msgpackr's `useRecords`): true when `object` may go out as a record, false for a plain map. */
export function withinShapeBounds(object: object): boolean {
  let keys = 0;
  let chars = 0;
  for (const key in object) {
    if (++keys > MAX_SHAPE_KEYS || (chars += key.length) > MAX_SHAPE_KEY_CHARS) return false;
  }
  return true;
}

/**
 * Decoder side: the array msgpackr keeps a session's shapes in (its
 * `structures`), with SHAPE_SLOTS slots and no room for more (a definition
 * anywhere else throws), and the check of the shapes each message defined.
 *
 * It also counts the keys its peer described that it had never seen
 * (`newKeys`, KeyNovelty), which a server paces a peer by
 * (RpcServerOptions.newKeyRate). A shape described again with known keys,
 * as a session cycling through more shapes than it has slots does, costs
 * little and counts nothing.
 */
export class ShapeTable {
  readonly slots: unknown[];
  /** keys of the shapes described so far that were new to this session */
  newKeys = 0;
  /** the shape in each slot when last checked */
  private readonly checked: unknown[] = new Array<unknown>(SHAPE_SLOTS).fill(undefined);
  private readonly novelty = new KeyNovelty();

  /** `onShape`: called with each shape `check` finds new in its slot (record-readers.ts). */
  constructor(private readonly onShape?: (slot: number, keys: readonly unknown[]) => void) {
    const slots = new Array<unknown>(SHAPE_SLOTS).fill(undefined) as unknown[] & { restoreStructures?: unknown; sharedLength?: number };
    // msgpackr's own properties of the array: set by its Unpackr and while it reads
    slots.restoreStructures = null;
    slots.sharedLength = 0;
    this.slots = Object.preventExtensions(slots);
  }

  /** After a message that described shapes was decoded: throws when one is beyond the bounds; counts the new keys. */
  check(): void {
    const slots = this.slots;
    const checked = this.checked;
    for (let i = 0; i < SHAPE_SLOTS; i++) {
      const shape = slots[i];
      if (shape === checked[i]) continue;
      checked[i] = shape;
      if (shape === undefined) continue;
      const keys = shape as readonly unknown[];
      if (keys.length > MAX_SHAPE_KEYS) throw new RangeError(`a record shape of ${keys.length} keys (at most ${MAX_SHAPE_KEYS})`);
      let chars = 0;
      for (const key of keys) chars += String(key).length;
      if (chars > MAX_SHAPE_KEY_CHARS) throw new RangeError(`a record shape of ${chars} characters of keys (at most ${MAX_SHAPE_KEY_CHARS})`);
      this.newKeys += this.novelty.learn(keys);
      this.onShape?.(i, keys);
    }
  }
}
