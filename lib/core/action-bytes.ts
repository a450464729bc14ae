/** Most distinct action strings cached; patterns are few in practice. */
const MAX_CACHED = 4096;
const cache = new Map<string, Buffer>();

/** UTF-8 bytes of an action string, encoded once per distinct string. */
export function actionBytes(action: string): Buffer {
  let bytes = cache.get(action);
  if (bytes === undefined) {
    bytes = Buffer.from(action, 'utf8');
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(action, bytes);
  }
  return bytes;
}
