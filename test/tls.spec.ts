import { ClientStream } from '../lib/client/client-stream.js';
import type { OccamsError } from '../lib/errors.js';
import { RpcServer } from '../lib/server/rpc-server.js';
import type { TcpAddress } from '../lib/transport/address.js';
import { testPki } from './support/certs.js';
import { MemoryLogger } from './support/servers.js';

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => 'connected',
    (e: OccamsError) => e.code,
  );

describe('TLS', () => {
  it('verifies the server certificate by default and refuses a wrong server name', async () => {
    const pki = testPki();
    const server = new RpcServer({ dispatch: (req) => void req.ok('hello over tls') }, { tls: { key: pki.serverKey, cert: pki.serverCert }, logger: new MemoryLogger() });
    const { port } = (await server.listen()) as TcpAddress;
    const ok = await ClientStream.connect(`localhost:${port}`, { tls: { ca: pki.ca } });
    expect(await ok.request('x')).toBe('hello over tls');
    ok.destroy();
    // by IP, the certificate's IP SAN matches too
    const byIp = await ClientStream.connect(`127.0.0.1:${port}`, { tls: { ca: pki.ca } });
    byIp.destroy();
    // not trusting the issuing CA: refused
    expect(await refusal(ClientStream.connect(`localhost:${port}`, { tls: {}, connectTimeout: 3000 }))).toBe('rpc_unreachable');
    // a name the certificate does not carry: refused
    expect(await refusal(ClientStream.connect(`127.0.0.1:${port}`, { tls: { ca: pki.ca, servername: 'billing.internal' }, connectTimeout: 3000 }))).toBe('rpc_unreachable');
    await server.destroy();
  });

  it('mutual TLS: only clients with a certificate from the trusted CA get in, and the handler sees who they are', async () => {
    const pki = testPki();
    const logger = new MemoryLogger();
    const server = new RpcServer(
      { dispatch: (req) => void req.ok((req.connection.peerCertificate as { subject?: { CN?: string } })?.subject?.CN ?? null) },
      { tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, logger },
    );
    const { port } = (await server.listen()) as TcpAddress;
    const client = await ClientStream.connect(`localhost:${port}`, { tls: { ca: pki.ca, key: pki.clientKey, cert: pki.clientCert } });
    expect(await client.request('whoami')).toBe('client');
    client.destroy();

    expect(await refusal(ClientStream.connect(`localhost:${port}`, { tls: { ca: pki.ca }, connectTimeout: 3000 }))).toBe('rpc_unreachable');
    expect(await refusal(ClientStream.connect(`localhost:${port}`, { tls: { ca: pki.ca, key: pki.strangerKey, cert: pki.strangerCert }, connectTimeout: 3000 }))).toBe(
      'rpc_unreachable',
    );
    expect(logger.lines.some((l) => /TLS handshake refused/.test(l))).toBe(true);
    await server.destroy();
  });
});
