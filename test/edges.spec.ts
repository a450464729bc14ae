import net from 'node:net';
import { FailoverPool, type FailoverPoolOptions } from '../lib/client/failover-pool.js';
import { OccamsClient } from '../lib/nest/occams-client.js';
import { RpcServer } from '../lib/server/rpc-server.js';
import type { RpcServerOptions } from '../lib/server/server-options.js';
import type { TcpAddress } from '../lib/transport/address.js';
import { testPki } from './support/certs.js';
import { MemoryLogger } from './support/servers.js';

/** The message of an error and of every cause below it, one per line. */
function chain(err: unknown): string {
  const out: string[] = [];
  for (let e = err as Error | undefined, i = 0; e instanceof Error && i < 10; e = e.cause as Error | undefined, i++) {
    out.push(e.message);
    if (e instanceof AggregateError) for (const x of e.errors) out.push(chain(x));
  }
  return out.join('\n');
}

async function tlsServer(tls: RpcServerOptions['tls'], extra: RpcServerOptions = {}) {
  const logger = new MemoryLogger();
  const server = new RpcServer({ dispatch: (req) => void req.ok('hi') }, { tls, logger, ...extra });
  const { port } = (await server.listen('127.0.0.1:0')) as TcpAddress;
  return { server, port, logger };
}

const pki = testPki();
const mtls = () => ({ key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: true });
const fast: FailoverPoolOptions = { connectTimeout: 1000, handshakeTimeout: 1000, backoff: { initial: 50, max: 200 } } as FailoverPoolOptions;

describe('probe', () => {
  it('prints', async () => {
    const s = await tlsServer(mtls());
    const plain = new RpcServer({ dispatch: (req) => void req.ok('hi') }, { logger: new MemoryLogger() });
    const plainPort = ((await plain.listen('127.0.0.1:0')) as TcpAddress).port;
    const expiredSrv = await tlsServer({ key: pki.expiredServerKey, cert: pki.expiredServerCert });
    const cases: [string, number, FailoverPoolOptions['tls']][] = [
      ['expired', s.port, { ca: pki.ca, key: pki.expiredKey, cert: pki.expiredCert }],
      ['future', s.port, { ca: pki.ca, key: pki.futureKey, cert: pki.futureCert }],
      ['selfsigned', s.port, { ca: pki.ca, key: pki.selfSignedKey, cert: pki.selfSignedCert }],
      ['stranger', s.port, { ca: pki.ca, key: pki.strangerKey, cert: pki.strangerCert }],
      ['nocert', s.port, { ca: pki.ca }],
      ['unknownca', s.port, { key: pki.clientKey, cert: pki.clientCert }],
      ['expiredserver', expiredSrv.port, { ca: pki.ca }],
      ['tls-to-plain', plainPort, { ca: pki.ca }],
      ['plain-to-tls', s.port, undefined],
      ['refused', 1, undefined],
    ];
    for (const [name, port, tls] of cases) {
      for (const host of ['127.0.0.1', 'edge.test']) {
        const pool = new FailoverPool([`${host}:${port}`], { ...fast, tls: tls && { servername: 'localhost', ...tls }, resolver: async () => ['127.0.0.1'] });
        const t0 = Date.now();
        const err = await pool.request('x').then(() => undefined, (e) => e);
        console.log(`== ${name} ${host} ${Date.now() - t0}ms\n${chain(err)}`);
        await pool.destroy();
      }
    }
    console.log(s.logger.lines.join('\n'));
    await s.server.destroy();
    await plain.destroy();
    await expiredSrv.server.destroy();
  }, 60_000);
});
