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
 * A message shorter than this cannot describe a shape beyond the bounds:
 * each key takes at least a byte, and no value read as a key gives 16
 * characters a byte (the most is an array of empty maps, each
 * "[object Object]" and a comma), so 255 bytes give under 4080 characters.
 * Only longer messages are checked.
 */
const CHECK_FROM = MAX_SHAPE_KEYS;

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
 */
export class ShapeTable {
  readonly slots: unknown[];
  /** the shape in each slot when last checked */
  private readonly checked: unknown[] = new Array<unknown>(SHAPE_SLOTS).fill(undefined);

  constructor() {
    const slots = new Array<unknown>(SHAPE_SLOTS).fill(undefined) as unknown[] & { restoreStructures?: unknown; sharedLength?: number };
    // msgpackr's own properties of the array: set by its Unpackr and while it reads
    slots.restoreStructures = null;
    slots.sharedLength = 0;
    this.slots = Object.preventExtensions(slots);
  }

  /** After a message of `length` bytes was decoded: throws when a shape it described is beyond the bounds. */
  check(length: number): void {
    if (length < CHECK_FROM) return;
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
    }
  }
}
