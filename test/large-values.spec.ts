import { describe, expect, it } from 'vitest';

import { ClientStream } from '../lib/client/client-stream.js';
import { ARENA_SIZE } from '../lib/core/frame-writer.js';
import { startServer } from './support/servers.js';

// Large values (issue 29) over a real socket: each call's bytes are its own
// (a pattern from its index), so a write buffer reused while the socket
// still reads it, or a frame cut at the wrong place, shows as a wrong echo.
const pattern = (n: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
};
const text = (n: number, seed: number): string => String.fromCharCode(97 + (seed % 26)).repeat(n - 1) + String(seed % 10);

/** sizes around the arena (a frame past it gets an arena of its own) and past the large spares' sizes */
const SIZES = [ARENA_SIZE - 40, ARENA_SIZE - 36, ARENA_SIZE + 1, 300 * 1024, 1024 * 1024, 1024 * 1024 + 7, 1200 * 1024, 5 * 1024 * 1024];

describe('large values across frames and write arenas', () => {
  it('Buffers and mixed objects of every size echo exactly, many in flight, interleaved with small ones', async () => {
    const s = await startServer({ echo: (m: unknown) => m }, { concurrencyLimit: false, maxFrameSize: 16 * 1024 * 1024 });
    const client = await ClientStream.connect({ host: '127.0.0.1', port: s.address.port }, { maxInFlight: 256, timeout: 30_000, maxFrameSize: 16 * 1024 * 1024 });
    try {
      for (let round = 0; round < 3; round++) {
        const calls: Promise<void>[] = [];
        let wrong = 0;
        SIZES.forEach((size, k) => {
          const seed = round * 100 + k;
          const bin = pattern(size, seed);
          calls.push(
            client.request('echo', bin).then((got) => {
              if (!Buffer.isBuffer(got) && !(got instanceof Uint8Array)) wrong++;
              else if (Buffer.compare(Buffer.from(got), bin) !== 0) wrong++;
            }),
          );
          const obj = { id: seed, name: 'large', tags: ['a', 'b', 'c', 'd'], ok: true, score: 0.75, text: text(size, seed) };
          calls.push(
            client.request('echo', obj).then((got) => {
              const g = got as typeof obj;
              if (g.id !== obj.id || g.score !== 0.75 || g.text !== obj.text) wrong++;
            }),
          );
          calls.push(
            client.request('echo', { small: seed }).then((got) => {
              if ((got as { small: number }).small !== seed) wrong++;
            }),
          );
        });
        await Promise.all(calls);
        expect(wrong).toBe(0);
      }
      // one at a time as well: each large frame may take the arena the previous one was written from
      for (const [k, size] of SIZES.entries()) {
        const bin = pattern(size, 1000 + k);
        expect(Buffer.compare(Buffer.from((await client.request('echo', bin)) as Uint8Array), bin)).toBe(0);
      }
    } finally {
      client.destroy();
      await s.server.destroy();
    }
  }, 60_000);
});
