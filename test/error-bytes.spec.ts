/**
 * Errors own what they keep: no error object holds a view into a shared
 * buffer (the socket's read buffer, Node's 8 KiB Buffer pool), so logging
 * one never shows another request's bytes. And errno errors carry the
 * handler's message to clients that speak the extension.
 */
import { inspect } from 'node:util';

import { errorFromWireBytes, ownedBytes } from '../lib/errors.js';
import { ClientStream, ErrnoReply, ErrorReply, RemoteErrnoError, RemoteError } from '../lib/stream/index.js';
import { startServer } from './support/servers.js';

const SECRET = 'SECRET-of-another-request';

/** True when `buf` is the whole of its own memory. */
const ownsItsMemory = (buf: Uint8Array) => buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength;

describe('errors keep bytes of their own', () => {
  it('RemoteError.data and a decoded error value hold no view into shared memory, under mixed traffic', async () => {
    const { server, address } = await startServer({
      echo: (v) => v,
      failText: () => {
        throw new ErrorReply('quota exceeded');
      },
      failValue: () => {
        throw new ErrorReply({ reason: 'quota', raw: Buffer.from('abc') });
      },
    });
    const client = await ClientStream.connect(address);
    const errors: RemoteError[] = [];
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      calls.push(client.request('echo', `${SECRET}-${i}`.repeat(3)));
      const failing = i % 2 === 0 ? 'failText' : 'failValue';
      calls.push(client.request(failing, i).catch((e: RemoteError) => void errors.push(e)));
    }
    await Promise.all(calls);
    expect(errors.length).toBe(200);
    for (const err of errors) {
      expect(err).toBeInstanceOf(RemoteError);
      expect(ownsItsMemory(err.data)).toBe(true);
      expect(Buffer.from(err.data.buffer).includes(SECRET)).toBe(false);
      expect(inspect(err, { depth: 5, showHidden: true })).not.toContain(SECRET);
      if (typeof err.error === 'object') {
        const raw = (err.error as { raw: Uint8Array }).raw;
        expect(Buffer.from(raw).toString()).toBe('abc');
        // its own copy (small values are decoded from the codec's reused buffer, bins copied out), or a view into the error's
        expect(raw.buffer === err.data.buffer || ownsItsMemory(raw)).toBe(true);
        expect(Buffer.from(raw.buffer).includes(SECRET)).toBe(false);
      } else {
        expect(err.message).toBe('quota exceeded');
      }
    }
    await client.close();
    await server.close();
  });

  it('errorFromWireBytes and ownedBytes copy views, and keep what is already whole', () => {
    const shared = Buffer.from(`${SECRET}|boom|${SECRET}`);
    const view = shared.subarray(SECRET.length + 1, SECRET.length + 5);
    const err = errorFromWireBytes(view) as RemoteError;
    expect(err.message).toBe('boom');
    expect(ownsItsMemory(err.data)).toBe(true);
    expect(errorFromWireBytes(Buffer.from('rpc_timeout', 'latin1').subarray(0)).code).toBe('rpc_timeout');
    const whole = Buffer.allocUnsafeSlow(4);
    expect(ownedBytes(whole)).toBe(whole);
    expect(ownedBytes(view)).not.toBe(view);
  });
});

describe('errno with a message on the stream layer', () => {
  it('ErrnoReply(errno, reason): extension clients get both, v1 clients the errno', async () => {
    const { server, address } = await startServer({
      fail: () => {
        throw new ErrnoReply(13, 'permission denied: reports');
      },
    });
    const ext = await ClientStream.connect(address);
    const err = (await ext.request('fail', 1).catch((e: unknown) => e)) as RemoteErrnoError;
    expect(err).toBeInstanceOf(RemoteErrnoError);
    expect([err.errno, err.message]).toEqual([13, 'permission denied: reports']);
    const v1 = await ClientStream.connect(address, { extensions: false });
    const plain = (await v1.request('fail', 1).catch((e: unknown) => e)) as RemoteErrnoError;
    expect([plain.errno, plain.message]).toEqual([13, 'remote error errno 13']);
    await ext.close();
    await v1.close();
    await server.close();
  });
});
