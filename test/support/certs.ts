import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestPki {
  ca: Buffer;
  serverKey: Buffer;
  serverCert: Buffer;
  clientKey: Buffer;
  clientCert: Buffer;
  /** a client certificate signed by a different CA */
  strangerKey: Buffer;
  strangerCert: Buffer;
  /** client certificates from the trusted CA, valid only in 2020 / only from 2099 */
  expiredKey: Buffer;
  expiredCert: Buffer;
  futureKey: Buffer;
  futureCert: Buffer;
  /** a self-signed client certificate */
  selfSignedKey: Buffer;
  selfSignedCert: Buffer;
  /** a server certificate for the service name api.occams.test only (no IP), as replicas behind a DNS name have */
  serviceKey: Buffer;
  serviceCert: Buffer;
  /** a server certificate (localhost, 127.0.0.1) from the trusted CA that expired in 2020 */
  expiredServerKey: Buffer;
  expiredServerCert: Buffer;
}

let cached: TestPki | undefined;

/** Generates a throwaway CA, a server cert for localhost/127.0.0.1 and client certs (openssl). */
export function testPki(): TestPki {
  if (cached) return cached;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'occams-pki-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ca = (name: string) => {
    run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`);
  };
  const leaf = (name: string, caName: string, ext: string) => {
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  };
  /** a leaf with a chosen validity period (`openssl ca` sets both dates) */
  const dated = (name: string, caName: string, ext: string, start: string, end: string) => {
    fs.writeFileSync(
      path.join(dir, `${name}.cnf`),
      `[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\nnew_certs_dir = .\ndefault_md = sha256\npolicy = p\nserial = serial\n[p]\ncommonName = supplied\n[ext]\n${ext}`,
    );
    if (!fs.existsSync(path.join(dir, 'index.txt'))) {
      fs.writeFileSync(path.join(dir, 'index.txt'), '');
      fs.writeFileSync(path.join(dir, 'serial'), '1000\n');
    }
    run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    run(
      'ca',
      '-batch',
      '-config',
      `${name}.cnf`,
      '-extensions',
      'ext',
      '-startdate',
      start,
      '-enddate',
      end,
      '-cert',
      `${caName}.crt`,
      '-keyfile',
      `${caName}.key`,
      '-in',
      `${name}.csr`,
      '-out',
      `${name}.crt`,
      '-notext',
    );
  };
  ca('test-ca');
  ca('other-ca');
  leaf('server', 'test-ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  leaf('service', 'test-ca', 'subjectAltName=DNS:api.occams.test\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'test-ca', 'extendedKeyUsage=clientAuth\n');
  leaf('stranger', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  dated('expired', 'test-ca', 'extendedKeyUsage=clientAuth\n', '20200101000000Z', '20200102000000Z');
  dated('future', 'test-ca', 'extendedKeyUsage=clientAuth\n', '20990101000000Z', '20990102000000Z');
  dated('expired-server', 'test-ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n', '20200101000000Z', '20200102000000Z');
  ca('self-signed');
  const read = (f: string) => fs.readFileSync(path.join(dir, f));
  cached = {
    ca: read('test-ca.crt'),
    serverKey: read('server.key'),
    serverCert: read('server.crt'),
    serviceKey: read('service.key'),
    serviceCert: read('service.crt'),
    clientKey: read('client.key'),
    clientCert: read('client.crt'),
    strangerKey: read('stranger.key'),
    strangerCert: read('stranger.crt'),
    expiredKey: read('expired.key'),
    expiredCert: read('expired.crt'),
    futureKey: read('future.key'),
    futureCert: read('future.crt'),
    selfSignedKey: read('self-signed.key'),
    selfSignedCert: read('self-signed.crt'),
    expiredServerKey: read('expired-server.key'),
    expiredServerCert: read('expired-server.crt'),
  };
  fs.rmSync(dir, { recursive: true, force: true });
  return cached;
}
