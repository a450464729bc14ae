import fs from 'node:fs';
import path from 'node:path';

/** How many times each id ran, from the ids files soak-server.js writes (one little-endian double per executed request) in `dir`. */
export function countIds(dir: string): Map<number, number> {
  const ids = new Map<number, number>();
  for (const f of fs.readdirSync(dir)) {
    const buf = fs.readFileSync(path.join(dir, f));
    for (let o = 0; o + 8 <= buf.length; o += 8) {
      const id = buf.readDoubleLE(o);
      ids.set(id, (ids.get(id) ?? 0) + 1);
    }
  }
  return ids;
}
