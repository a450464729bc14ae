/**
 * node:diagnostics_channel: every channel's messages, against real servers
 * on 127.0.0.1, through the stream layer's three callers; and nothing is
 * built when nobody subscribes.
 */
import dc from 'node:diagnostics_channel';

import {
  CHANNELS,
  type ClientCallErrorMessage,
  type ClientCallSentMessage,
  ClientPool,
  ClientStream,
  type ConnectionCloseMessage,
  ErrnoReply,
  FailoverPool,
  type PoolStateMessage,
  type ServerRequestEndMessage,
} from '../lib/index.js';
import type { ServerConnection } from '../lib/server/index.js';
import { sleep, startServer, waitFor } from './support/servers.js';

type Seen = { channel: string; message: any }[];

/** Subscribes to every channel until the returned function is called. */
function record(): { seen: Seen; of(channel: string): any[]; stop(): void } {
  const seen: Seen = [];
  const subs = Object.values(CHANNELS).map((channel) => {
    const fn = (message: unknown) => seen.push({ channel, message });
    dc.subscribe(channel, fn);
    return () => dc.unsubscribe(channel, fn);
  });
  return { seen, of: (channel) => seen.filter((s) => s.channel === channel).map((s) => s.message), stop: () => subs.forEach((u) => u()) };
}

const methods = {
  'Calc.add': ([a, b]: [number, number]) => a + b,
  'Calc.fail': (v: number) => {
    throw new ErrnoReply(22, `bad ${v}`);
  },
  'Calc.count': async function* (n: number) {
    for (let i = 1; i <= n; i++) yield i;
  },
  'Calc.never': () => new Promise(() => {}),
};

describe('diagnostics channels', () => {
  it('nobody subscribed: no channel has subscribers and calls are not wrapped', async () => {
    const ctx = await startServer(methods);
    const client = await ClientStream.connect(ctx.url);
    try {
      for (const name of Object.values(CHANNELS)) expect(dc.hasSubscribers(name)).toBe(false);
      const handle = client.call('Calc.add', [1, 2], { onResult() {}, onError() {} });
      expect(handle.constructor.name).toBe('Call'); // the call itself: nothing observed, nothing allocated for it
      expect(await client.request('Calc.add', [2, 3])).toBe(5);
    } finally {
      client.destroy();
      await ctx.server.destroy();
    }
  });

  it('a call: start, sent, response on the client; start, end on the server, in that order, with the shapes documented', async () => {
    const ctx = await startServer(methods);
    const client = await ClientStream.connect(ctx.url);
    const r = record();
    try {
      expect(await client.request('Calc.add', [2, 3], { meta: { who: 'test' } })).toBe(5);
      await waitFor(() => r.of(CHANNELS.serverRequestEnd).length === 1);
      expect(r.seen.map((s) => s.channel)).toEqual([
        CHANNELS.clientCallStart,
        CHANNELS.clientCallSent,
        CHANNELS.serverRequestStart,
        CHANNELS.serverRequestEnd,
        CHANNELS.clientCallResponse,
      ]);
      const [start] = r.of(CHANNELS.clientCallStart);
      expect(start.call).toMatchObject({ action: 'Calc.add', value: [2, 3], meta: { who: 'test' }, event: false, items: 0 });
      const [sent] = r.of(CHANNELS.clientCallSent) as ClientCallSentMessage[];
      expect(sent.call).toBe(start.call);
      expect(sent.connection).toBe(client);
      expect(sent.seq).toBeGreaterThan(0);
      expect(sent.address).toBe(ctx.url);
      const [reqStart] = r.of(CHANNELS.serverRequestStart);
      expect(reqStart.request).toMatchObject({ action: 'Calc.add', msg: [2, 3], meta: { who: 'test' }, isEvent: false, seq: sent.seq });
      expect(reqStart.request.connection.remoteAddress).toBe('127.0.0.1');
      const [end] = r.of(CHANNELS.serverRequestEnd) as ServerRequestEndMessage[];
      expect(end.request).toBe(reqStart.request);
      expect(end.error).toBeUndefined();
      expect(r.of(CHANNELS.clientCallResponse)[0]).toEqual({ call: start.call, value: 5 });
    } finally {
      r.stop();
      client.destroy();
      await ctx.server.destroy();
    }
  });

  it('errors, streams and cancels, on both sides', async () => {
    const ctx = await startServer(methods);
    const client = await ClientStream.connect(ctx.url);
    const r = record();
    try {
      await expect(client.request('Calc.fail', 7)).rejects.toMatchObject({ code: 'user_errno', errno: 22 });
      const items: number[] = [];
      await new Promise((resolve, reject) => client.call('Calc.count', 3, { onItem: (v) => items.push(v as number), onResult: resolve, onError: reject }));
      expect(items).toEqual([1, 2, 3]);
      const never = client.call('Calc.never', null, { onResult() {}, onError() {} });
      await waitFor(() => r.of(CHANNELS.serverRequestStart).length === 3);
      never.cancel();
      await waitFor(() => r.of(CHANNELS.serverRequestEnd).length === 3);

      const clientErrors = r.of(CHANNELS.clientCallError) as ClientCallErrorMessage[];
      expect(clientErrors.map((m) => [m.call.action, m.error.code])).toEqual([
        ['Calc.fail', 'user_errno'],
        ['Calc.never', 'rpc_cancelled'],
      ]);
      const response = r.of(CHANNELS.clientCallResponse);
      expect(response).toHaveLength(1);
      expect(response[0].call).toMatchObject({ action: 'Calc.count', items: 3 });
      const serverErrors = r.of(CHANNELS.serverRequestError);
      expect(serverErrors.map((m) => [m.request.action, m.error.code, m.error.message])).toEqual([
        ['Calc.fail', 'user_errno', 'bad 7'],
        ['Calc.never', 'rpc_cancelled', 'cancelled by the client'],
      ]);
      const ends = r.of(CHANNELS.serverRequestEnd) as ServerRequestEndMessage[];
      expect(ends.map((m) => [m.request.action, m.error?.code])).toEqual([
        ['Calc.fail', 'user_errno'],
        ['Calc.count', undefined],
        ['Calc.never', 'rpc_cancelled'],
      ]);
    } finally {
      r.stop();
      client.destroy();
      await ctx.server.destroy();
    }
  });

  it('a pooled call is started once, on the caller it was made on; a retried one is sent twice', async () => {
    // the handler kills its own connection (handlers see a read-only view: the server's connection event hands over the object)
    const conns = new Map<number, ServerConnection>();
    const killer = await startServer({ 'Calc.add': (_v: unknown, req) => void conns.get(req.connection.id)?.destroy() });
    killer.server.on('connection', (c: ServerConnection) => conns.set(c.id, c));
    const good = await startServer(methods);
    const pool = new FailoverPool([killer.url, good.url], { strategy: 'first', idempotent: ['Calc.add'] });
    const r = record();
    try {
      await pool.connect();
      await waitFor(() => pool.members.every((p) => p.ready));
      expect(await pool.request('Calc.add', [1, 1])).toBe(2);
      expect(r.of(CHANNELS.clientCallStart)).toHaveLength(1);
      expect(r.of(CHANNELS.clientCallResponse)).toHaveLength(1);
      expect(r.of(CHANNELS.clientCallError)).toHaveLength(0); // the failed attempt was retried, not reported
      const sent = r.of(CHANNELS.clientCallSent) as ClientCallSentMessage[];
      expect(sent.map((s) => s.address)).toEqual([killer.url, good.url]);
      expect(sent[0]!.call).toBe(sent[1]!.call);
    } finally {
      r.stop();
      await pool.close();
      await killer.server.destroy();
      await good.server.destroy();
    }
  });

  it('connections open and close with their reason; pools report their states; GOAWAY on a graceful close', async () => {
    const ctx = await startServer(methods, { drainGrace: 20 });
    const r = record();
    const pool = new ClientPool(ctx.url, { backoff: { initial: 10_000 } });
    try {
      expect(await pool.request('Calc.add', [1, 2])).toBe(3);
      await waitFor(() => r.of(CHANNELS.connectionOpen).length === 2);
      const opens = r.of(CHANNELS.connectionOpen);
      expect(opens.map((m) => m.side).sort()).toEqual(['client', 'server']);
      const states = (r.of(CHANNELS.poolState) as PoolStateMessage[]).map((m) => [m.previous, m.state]);
      expect(states).toEqual([
        ['idle', 'connecting'],
        ['connecting', 'ready'],
      ]);
      expect(r.of(CHANNELS.poolState)[0]).toMatchObject({ pool, address: ctx.url });

      await ctx.server.close(); // graceful: GOAWAY, the client acks, both ends close cleanly
      await waitFor(() => r.of(CHANNELS.connectionClose).length === 2);
      expect(
        r
          .of(CHANNELS.goaway)
          .map((m) => m.side)
          .sort(),
      ).toEqual(['client', 'server']);
      const closes = r.of(CHANNELS.connectionClose) as ConnectionCloseMessage[];
      const server = closes.find((m) => m.side === 'server')!;
      expect(server.reason).toBeUndefined();
      await waitFor(() => (r.of(CHANNELS.poolState) as PoolStateMessage[]).some((m) => m.state === 'unhealthy'));
    } finally {
      r.stop();
      pool.destroy();
      await ctx.server.destroy();
    }
  });

  it('a connection the server kills reports why, on both sides', async () => {
    const ctx = await startServer(methods);
    const client = await ClientStream.connect(ctx.url);
    const r = record();
    try {
      await ctx.server.destroy();
      await waitFor(() => r.of(CHANNELS.connectionClose).length === 2);
      const closes = r.of(CHANNELS.connectionClose) as ConnectionCloseMessage[];
      expect(closes.find((m) => m.side === 'server')!.reason).toMatchObject({ code: 'rpc_closed', message: 'server destroyed' });
      expect(closes.find((m) => m.side === 'client')!.reason).toMatchObject({ code: 'rpc_io_err', message: 'connection closed by peer' });
    } finally {
      r.stop();
      client.destroy();
      await sleep(0);
    }
  });
});
