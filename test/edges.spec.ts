import net from 'node:net';

import { ClientPool } from '../lib/client/client-pool.js';
import { ClientStream } from '../lib/client/client-stream.js';
import { FailoverPool, type FailoverPoolOptions } from '../lib/client/failover-pool.js';
import { OccamsClient } from '../lib/nest/occams-client.js';
import { encodeRequest } from '../lib/protocol/request-frame.js';
import { RpcServer } from '../lib/server/rpc-server.js';
import type { ServerConnection } from '../lib/server/server-connection.js';
import type { RpcServerOptions } from '../lib/server/server-options.js';
import type { ServerRequest } from '../lib/server/server-request.js';
import type { TcpAddress } from '../lib/transport/address.js';
import { testPki } from './support/certs.js';
import { FakeClock } from './support/fake-clock.js';
import { MemoryLogger, sleep, waitFor } from './support/servers.js';

/** The message of an error and of every cause below it (AggregateError members too), one per line. */
function chain(err: unknown): string {
  const out: string[] = [];
  for (let e = err as Error | undefined, i = 0; e instanceof Error && i < 10; e = e.cause as Error | undefined, i++) {
    out.push(e.message);
    if (e instanceof AggregateError) for (const x of e.errors) out.push(chain(x));
  }
  return out.join('\n');
}

async function startTls(tls: RpcServerOptions['tls'], extra: RpcServerOptions = {}) {
  const logger = new MemoryLogger();
  const server = new RpcServer({ dispatch: (req) => void req.ok('hi') }, { tls, logger, ...extra });
  const { port } = (await server.listen('127.0.0.1:0')) as TcpAddress;
  return { server, port, logger };
}

/** A raw TCP connection that sends nothing; `closed` resolves with the ms it stayed open. */
function silent(port: number): Promise<{ socket: net.Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve({ socket, closed }));
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - t0)));
    socket.on('error', () => {});
    socket.once('error', reject);
  });
}

const pki = testPki();
const mtls = () => ({ key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: true });
const fast = { connectTimeout: 1000, handshakeTimeout: 1000, backoff: { initial: 50, max: 200 } };

describe('TLS handshakes within limits', () => {
  it('50 silent TCP connections to an mTLS server with maxConnections 10 are closed within the handshake timeout, and a good client gets in meanwhile', async () => {
    const s = await startTls(mtls(), { maxConnections: 10, tlsHandshakeTimeout: 500 });
    const silents = await Promise.all(Array.from({ length: 50 }, () => silent(s.port)));
    await waitFor(() => s.server.stats.handshakes === 10, 2000);
    // a good client: refused while the limit is full, gets in once the silent ones are cut
    const pool = new ClientPool(`127.0.0.1:${s.port}`, { ...fast, tls: { ca: pki.ca, key: pki.clientKey, cert: pki.clientCert } });
    const t0 = Date.now();
    let answer: unknown;
    while (answer === undefined && Date.now() - t0 < 3000) {
      answer = await pool.request('x', undefined, { timeout: 1000 }).catch(() => sleep(50).then(() => undefined));
    }
    expect(answer).toBe('hi');
    const lifetimes = await Promise.all(silents.map((x) => x.closed));
    expect(Math.max(...lifetimes)).toBeLessThan(500 + 1000);
    await waitFor(() => s.server.stats.handshakes === 0, 2000); // a reconnect the pool began meanwhile is cut or done
    const lines = s.logger.lines;
    expect(lines.some((l) => /\[max_connections\]/.test(l))).toBe(true);
    expect(lines.some((l) => /\[tls_handshake_timeout\]/.test(l))).toBe(true);
    // rate-limited: 40 refusals and 10 timeouts, a few lines
    expect(lines.filter((l) => /\[max_connections\]/.test(l)).length).toBeLessThanOrEqual(3);
    expect(lines.filter((l) => /\[tls_handshake_timeout\]/.test(l)).length).toBeLessThanOrEqual(3);
    await pool.destroy();
    await s.server.destroy();
  });

  it('bounds the handshakes under way (maxPendingHandshakes) and says how many refusals it did not log', async () => {
    // the server's time is a fake clock: handshake timeouts and the log interval pass when advanced
    const clock = new FakeClock();
    const s = await startTls(mtls(), { maxPendingHandshakes: 5, tlsHandshakeTimeout: 400, clock });
    const first = await Promise.all(Array.from({ length: 20 }, () => silent(s.port)));
    await waitFor(() => s.server.stats.handshakes === 5, 2000);
    const refusedAtOnce = (await Promise.all(first.map((x) => Promise.race([x.closed, sleep(200).then(() => -1)])))).filter((t) => t >= 0);
    expect(refusedAtOnce.length).toBe(15); // the 5 pending ones wait for their tlsHandshakeTimeout
    clock.advance(400);
    await Promise.all(first.map((x) => x.closed));
    clock.advance(1100); // past the log interval: the next refusal's line counts the ones left out
    const second = await Promise.all(Array.from({ length: 6 }, () => silent(s.port)));
    await waitFor(() => s.server.stats.handshakes === 5, 2000);
    clock.advance(400);
    await Promise.all(second.map((x) => x.closed));
    const lines = s.logger.lines.filter((l) => /\[max_pending_handshakes\]/.test(l));
    expect(lines.length).toBe(2);
    expect(lines[1]).toMatch(/\d+ more \[max_pending_handshakes\] not logged/);
    await s.server.destroy();
  });
});

describe('every refusal keeps its reason', () => {
  type Case = { name: string; server: 'mtls' | 'expired-server' | 'plain'; tls: FailoverPoolOptions['tls'] | undefined; client: RegExp; log?: RegExp };
  const clientCert = /refused our client certificate/;
  const cases: Case[] = [
    {
      name: 'an expired client certificate',
      server: 'mtls',
      tls: { ca: pki.ca, key: pki.expiredKey, cert: pki.expiredCert },
      client: clientCert,
      log: /certificate has expired \(CERT_HAS_EXPIRED\)/,
    },
    {
      name: 'a client certificate not yet valid',
      server: 'mtls',
      tls: { ca: pki.ca, key: pki.futureKey, cert: pki.futureCert },
      client: clientCert,
      log: /certificate is not yet valid/,
    },
    {
      name: 'a self-signed client certificate',
      server: 'mtls',
      tls: { ca: pki.ca, key: pki.selfSignedKey, cert: pki.selfSignedCert },
      client: clientCert,
      log: /self-signed certificate/,
    },
    {
      name: 'a client certificate from another CA',
      server: 'mtls',
      tls: { ca: pki.ca, key: pki.strangerKey, cert: pki.strangerCert },
      client: clientCert,
      log: /unable to verify the first certificate|unable to get local issuer certificate/,
    },
    { name: 'no client certificate', server: 'mtls', tls: { ca: pki.ca }, client: /requires a client certificate/, log: /peer did not return a certificate/ },
    {
      name: 'a server certificate from an unknown CA',
      server: 'mtls',
      tls: { key: pki.clientKey, cert: pki.clientCert },
      client: /self-signed certificate in certificate chain|unable to get local issuer certificate/,
    },
    { name: 'an expired server certificate', server: 'expired-server', tls: { ca: pki.ca }, client: /certificate has expired/ },
    { name: 'TLS to a plain server', server: 'plain', tls: { ca: pki.ca }, client: /during the TLS handshake \(is it a plain, non-TLS server\?\)/ },
    { name: 'plain to a TLS server', server: 'mtls', tls: undefined, client: /is it a TLS server \(set the tls option\)/, log: /does not speak TLS/ },
    { name: 'nothing listening', server: 'plain', tls: undefined, client: /connection refused/ },
  ];
  let servers: Record<Case['server'], Awaited<ReturnType<typeof startTls>>>;
  let closedPort = 0;

  beforeAll(async () => {
    servers = {
      mtls: await startTls(mtls()),
      'expired-server': await startTls({ key: pki.expiredServerKey, cert: pki.expiredServerCert }),
      plain: await startTls(undefined),
    };
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
  });
  afterAll(async () => {
    for (const s of Object.values(servers)) await s.server.destroy();
  });

  for (const c of cases) {
    for (const host of ['127.0.0.1', 'rpc.test']) {
      it(`${c.name}, by ${host === '127.0.0.1' ? 'IP' : 'host name'}: refused within a second, through FailoverPool and OccamsClient`, async () => {
        const port = c.name === 'nothing listening' ? closedPort : servers[c.server].port;
        const tls = c.tls && { servername: 'localhost', ...c.tls };
        const resolver = async (name: string) => (name === 'rpc.test' ? ['127.0.0.1'] : []);
        const callers = [
          ['FailoverPool', new FailoverPool([`${host}:${port}`], { ...fast, tls, resolver })],
          ['FailoverPool of two', new FailoverPool([`${host}:${port}`, `${host}:${closedPort}`], { ...fast, tls, resolver })],
          ['OccamsClient', new OccamsClient({ address: `${host}:${port}`, ...fast, tls, resolver })],
        ] as const;
        for (const [what, caller] of callers) {
          const t0 = Date.now();
          const err = await caller.request('x', undefined).then(
            () => new Error('connected'),
            (e: Error) => e,
          );
          const elapsed = Date.now() - t0;
          const reasons = chain(err);
          expect(reasons, what).toMatch(c.client);
          expect((err as { code?: string }).code, what).toBe('rpc_unreachable');
          expect(elapsed, what).toBeLessThan(1000);
          if (what !== 'OccamsClient') expect(err.message, `${what}: the message names the first cause`).toMatch(c.name === 'nothing listening' ? /connection refused/ : c.client);
          if (what === 'FailoverPool of two' && c.name !== 'nothing listening') {
            // the last error of each address it tried, in address order
            expect(err.cause).toBeInstanceOf(AggregateError);
            const each = (err.cause as AggregateError).errors.map((e: Error) => chain(e));
            expect(each).toHaveLength(2);
            expect(each[0]).toMatch(c.client);
            expect(each[1]).toMatch(/connection refused/);
          }
          await (caller instanceof OccamsClient ? caller.close() : caller.destroy());
        }
        if (c.log) expect(servers[c.server].logger.lines.join('\n')).toMatch(c.log);
      });
    }
  }
});

describe('client timeouts say which step timed out', () => {
  it('a server that accepts TCP but never answers the TLS handshake: "TLS handshake timed out"', async () => {
    const held: net.Socket[] = [];
    const mute = net.createServer((socket) => {
      held.push(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const port = (mute.address() as net.AddressInfo).port;
    const pool = new FailoverPool([`rpc.test:${port}`], { connectTimeout: 300, tls: { ca: pki.ca, servername: 'localhost' }, resolver: async () => ['127.0.0.1'] });
    const t0 = Date.now();
    const err = (await pool.request('x').catch((e: Error) => e)) as Error;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(err.message).toMatch(/TLS handshake timed out after 300 ms/);
    await pool.destroy();
    for (const s of held) s.destroy();
    await new Promise((r) => mute.close(r));
  });
});

/** No error in the chain has a cause that only repeats its message. */
function expectNoRepeatedCause(err: unknown): void {
  let depth = 0;
  for (let e = err as Error | undefined; e instanceof Error && depth < 10; e = e.cause as Error | undefined, depth++) {
    if (e.cause instanceof Error) expect(e.cause.message).not.toBe(e.message);
  }
  expect(depth).toBeGreaterThan(1); // the cause is kept
}

describe('UnreachableError.cause', () => {
  it('does not repeat its own message: dead port, first call and calls while unhealthy', async () => {
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as net.AddressInfo).port;
    await new Promise((r) => dead.close(r)); // nothing listens there now
    const client = new OccamsClient({ port, connectTimeout: 2000 });
    try {
      for (let i = 0; i < 2; i++) {
        const err = (await client.request('echo', 1).catch((e: Error) => e)) as Error;
        expect((err as { code?: string }).code).toBe('rpc_unreachable');
        expect(err.message).toMatch(/connection refused/);
        expectNoRepeatedCause(err);
      }
    } finally {
      await client.close();
    }
  });
});

describe('a peer that is not occams', () => {
  it('a client pointed at an HTTP server says it answered like HTTP, not just "bad magic"', async () => {
    const http = await import('node:http');
    const web = http.createServer((_req, res) => res.end('hello'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    const port = (web.address() as net.AddressInfo).port;
    const client = new OccamsClient({ port, connectTimeout: 2000, handshakeTimeout: 2000 });
    try {
      const err = (await client.request('echo', 1).catch((e: Error) => e)) as Error;
      expect(err.message).toMatch(/not an occams server, it answered like HTTP/);
      expectNoRepeatedCause(err);
    } finally {
      await client.close();
      web.closeAllConnections();
      await new Promise((r) => web.close(r));
    }
  });

  it('a server reached by an HTTP client or a TLS client logs what the peer speaks', async () => {
    const logger = new MemoryLogger();
    const server = new RpcServer({ dispatch: (req) => void req.ok('hi') }, { logger });
    const { port } = (await server.listen('127.0.0.1:0')) as TcpAddress;
    try {
      const send = async (bytes: Buffer) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        s.write(bytes);
        await new Promise((r) => s.once('close', r));
      };
      await send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n__________'));
      await send(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), Buffer.alloc(40)]));
      await waitFor(() => logger.lines.length >= 2, 2000);
      const log = logger.lines.join('\n');
      expect(log).toMatch(/not an occams client, it sent HTTP/);
      expect(log).toMatch(/the client speaks TLS/);
    } finally {
      await server.destroy();
    }
  });
});

describe('idle connections', () => {
  it('closes a connection with nothing in flight and nothing received for idleTimeout, while one that sent a frame since and a busy one stay (server clock)', async () => {
    const clock = new FakeClock();
    const logger = new MemoryLogger();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let slowRunning = false;
    const dispatch = (req: ServerRequest) => {
      if (req.action !== 'slow') return void req.ok('hi');
      slowRunning = true;
      void held.then(() => req.ok('done'));
    };
    const server = new RpcServer({ dispatch }, { idleTimeout: 300_000, logger, clock });
    const states: (() => string)[] = [];
    server.on('connection', (c: ServerConnection) => states.push(() => c.stats.state));
    const { port } = (await server.listen('127.0.0.1:0')) as TcpAddress;
    const url = `127.0.0.1:${port}`;
    const idle = await silent(port);
    let idleClosed = false;
    void idle.closed.then(() => (idleClosed = true));
    const talking = await ClientStream.connect(url, { pingInterval: 0 });
    const busy = await ClientStream.connect(url, { pingInterval: 0 });
    const probe = await ClientStream.connect(url, { pingInterval: 0 });
    const slow = busy.request('slow', undefined, { timeout: 1_000_000 }); // its deadline, sent along, outlasts the 300 s the server clock moves
    await waitFor(() => slowRunning, 2000);
    const idleLines = () => logger.lines.filter((l) => /closing idle connection .*\[idle_timeout\]/.test(l));

    clock.advance(200_000);
    expect(await talking.request('x')).toBe('hi'); // a frame received: its idle time starts again (a ping would do the same)
    clock.advance(99_000); // 299 s since the silent socket connected
    expect(await probe.request('x')).toBe('hi'); // a round trip: what the server did by now reached the sockets
    expect(idleClosed).toBe(false);
    expect(idleLines()).toEqual([]);

    clock.advance(2_000); // past 300 s: swept, drained (a v1 peer cannot acknowledge GOAWAY) ...
    expect(states.map((s) => s())).toEqual(['closing', 'open', 'open', 'open']); // silent, talking (idle 101 s), busy (owes an answer), probe
    clock.advance(2_000); // ... and let go after the drain's grace
    await waitFor(() => idleClosed, 2000);
    expect(idleLines()).toHaveLength(1);
    expect(talking.state).not.toBe('closed');
    expect(await talking.request('x')).toBe('hi');
    release();
    expect(await slow).toBe('done');
    expect(server.stats.connections).toBe(3);
    talking.destroy();
    busy.destroy();
    probe.destroy();
    await server.destroy();
  });

  it('idleTimeout 0 never closes a connection (a day passes on the server clock)', async () => {
    const clock = new FakeClock();
    const server = new RpcServer({ dispatch: (req) => void req.ok('hi') }, { idleTimeout: 0, logger: new MemoryLogger(), clock });
    const { port } = (await server.listen('127.0.0.1:0')) as TcpAddress;
    const idle = await silent(port);
    let closed = false;
    void idle.closed.then(() => (closed = true));
    clock.advance(24 * 3_600_000);
    // a round trip on another connection: anything the server did after the advance reached the sockets by then
    const other = await ClientStream.connect(`127.0.0.1:${port}`, { pingInterval: 0 });
    expect(await other.request('x')).toBe('hi');
    expect(closed).toBe(false);
    expect(server.stats.connections).toBe(2);
    other.destroy();
    idle.socket.destroy();
    await server.destroy();
  });
});

describe('stall reasons', () => {
  it('a client that never reads its responses is cut by writeTimeout with the write-stall reason, not readTimeout', async () => {
    const logger = new MemoryLogger();
    const big = Buffer.alloc(256 * 1024, 7);
    const server = new RpcServer(
      { dispatch: (req) => void req.ok(big) },
      { logger, readTimeout: 200, writeTimeout: 800, highWaterMark: 64 * 1024, maxQueuedPerConnection: 4, idleTimeout: 0 },
    );
    const { port } = (await server.listen('127.0.0.1:0')) as TcpAddress;
    const t0 = Date.now();
    const gone = new Promise<number>((r) => server.once('disconnect', () => r(Date.now() - t0)));
    const { socket } = await silent(port);
    socket.pause(); // never reads (a paused socket does not see the server's close either)
    socket.write(Buffer.concat(Array.from({ length: 400 }, (_, i) => encodeRequest({ action: 'big', seq: i + 1 }))));
    const lived = await Promise.race([gone, sleep(5000).then(() => -1)]);
    expect(lived).toBeGreaterThanOrEqual(800);
    expect(lived).toBeLessThan(800 + 2500);
    const cut = logger.lines.filter((l) => /closing connection/.test(l));
    expect(cut.join('\n')).toMatch(/write timeout \(write stall\)/);
    expect(cut.join('\n')).not.toMatch(/read timeout/);
    socket.destroy();
    await server.destroy();
  });

  it('a half-sent frame is cut by readTimeout', async () => {
    const logger = new MemoryLogger();
    const server = new RpcServer({ dispatch: (req) => void req.ok('hi') }, { logger, readTimeout: 200 });
    const { port } = (await server.listen('127.0.0.1:0')) as TcpAddress;
    const { socket, closed } = await silent(port);
    const frame = encodeRequest({ action: 'x', seq: 1 });
    socket.write(frame.subarray(0, frame.length - 2));
    const lived = await Promise.race([closed, sleep(3000).then(() => -1)]);
    expect(lived).toBeGreaterThanOrEqual(150);
    expect(logger.lines.join('\n')).toMatch(/read timeout: peer sent \d+ bytes of an unfinished frame/);
    await server.destroy();
  });
});
