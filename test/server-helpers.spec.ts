/** The server's small helpers, driven without sockets: fake clocks and plain times. */
import type { CallOptions, CreditOwner, ResponseHandler } from '../lib/client/call.js';
import { StreamIterator } from '../lib/client/stream-iterator.js';
import { DrainPolicy } from '../lib/server/drain-policy.js';
import { WriteStallWatch } from '../lib/server/write-stall.js';
import { FakeClock } from './support/fake-clock.js';

describe('DrainPolicy', () => {
  it('an acknowledging peer is done only when it acknowledges', () => {
    const p = new DrainPolicy(250, 1000);
    p.begin(0, true);
    expect(p.tick(10_000, false)).toBe(true); // streams are due, whatever the peer
    expect(p).toMatchObject({ peerDone: false, refusing: false });
    p.acknowledged();
    expect(p.peerDone).toBe(true);
  });

  it('a plain v1 peer is done once quiet (nothing read, nothing owed) for the grace', () => {
    const p = new DrainPolicy(250, 1000);
    p.begin(0, false);
    p.read(100);
    expect(p.tick(300, false)).toBe(false);
    expect(p.peerDone).toBe(false); // read 200 ms ago
    p.tick(360, true); // something owed: not quiet
    p.tick(500, false);
    expect(p.peerDone).toBe(false);
    p.tick(610, false);
    expect(p.peerDone).toBe(true);
  });

  it('a peer that never goes quiet is refused past 4 x grace and let go at 8 x grace', () => {
    const p = new DrainPolicy(250, 1000);
    p.begin(0, false);
    for (let t = 0; t < 1000; t += 50) {
      p.read(t);
      p.tick(t, false);
    }
    expect(p).toMatchObject({ peerDone: false, refusing: false });
    p.read(1000);
    p.tick(1000, false);
    expect(p).toMatchObject({ peerDone: false, refusing: true });
    for (let t = 1050; t < 2000; t += 50) {
      p.read(t);
      p.tick(t, false);
    }
    expect(p.peerDone).toBe(false);
    p.read(2000);
    p.tick(2000, false);
    expect(p.peerDone).toBe(true);
  });
});

describe('WriteStallWatch', () => {
  it('fires only after timeout ms with no progress; any progress restarts it', () => {
    const clock = new FakeClock(0);
    let taken = 0;
    let stalls = 0;
    const w = new WriteStallWatch(
      clock,
      400,
      () => taken,
      () => stalls++,
    );
    w.start();
    for (let i = 0; i < 20; i++) {
      clock.advance(300);
      taken += 1; // a slow reader: one byte per 300 ms
    }
    expect(stalls).toBe(0);
    clock.advance(500);
    expect(stalls).toBe(1);
    expect(w.running).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('stop() clears its timer; timeout 0 never starts', () => {
    const clock = new FakeClock(0);
    const w = new WriteStallWatch(
      clock,
      400,
      () => 0,
      () => {
        throw new Error('must not fire');
      },
    );
    w.start();
    w.stop();
    clock.advance(10_000);
    const off = new WriteStallWatch(
      clock,
      0,
      () => 0,
      () => {
        throw new Error('must not fire');
      },
    );
    off.start();
    expect(off.running).toBe(false);
  });
});

describe('StreamIterator (against a fake caller)', () => {
  function fakeCaller() {
    const grants: number[] = [];
    let handler: ResponseHandler | undefined;
    let cancelled = 0;
    const owner: CreditOwner = { grant: (_seq, n) => void grants.push(n) };
    const caller = {
      call(_a: string | number, _v: unknown, h: ResponseHandler, o?: CallOptions) {
        handler = h;
        o!.flow!.bind(owner, 7);
        return { cancel: () => void cancelled++, sent: true };
      },
    };
    return { caller, grants, push: (v: unknown) => handler!.onItem!(v), end: () => handler!.onResult(undefined, Buffer.alloc(0)), cancelled: () => cancelled };
  }

  it('grants half its window each time half of it was taken, and never before', async () => {
    const f = fakeCaller();
    const it = new StreamIterator<number>(f.caller, 'x', null, { window: 8 });
    const first = it.next(); // starts the call
    for (let i = 0; i < 8; i++) f.push(i);
    expect((await first).value).toBe(0);
    expect(it.buffered).toBe(7);
    expect(f.grants).toEqual([]);
    for (let i = 1; i < 4; i++) await it.next();
    expect(f.grants).toEqual([4]);
    for (let i = 4; i < 8; i++) await it.next();
    expect(f.grants).toEqual([4, 4]);
    f.end();
    expect((await it.next()).done).toBe(true);
  });

  it('return() cancels the call and drops what is buffered', async () => {
    const f = fakeCaller();
    const it = new StreamIterator<number>(f.caller, 'x', null, { window: 8 });
    const first = it.next();
    f.push(1);
    f.push(2);
    await first;
    await it.return();
    expect(f.cancelled()).toBe(1);
    expect((await it.next()).done).toBe(true);
  });
});
