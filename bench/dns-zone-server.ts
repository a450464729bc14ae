/**
 * A small authoritative DNS server (UDP and TCP, dns-packet for the wire) run as
 * its own process by the discovery tests and `npm run deploy`: it answers
 * A, AAAA and SRV from a zone its parent replaces over IPC while traffic
 * runs, and can be told to answer SERVFAIL or NXDOMAIN for everything, or
 * nothing at all (a server that does not answer).
 *
 *   fork('dist/bench/dns-zone-server.js', [port?])
 *   ─► { type: 'ready', port }
 *   ◄─ { type: 'zone', zone: Zone, mode?: Mode }   ─► { type: 'zone-set' }
 *   ◄─ { type: 'queries' }                          ─► { type: 'queries', counts: { 'A name': n, ... } }
 *
 * Listens on 127.0.0.1 only; exits when its parent goes.
 */
import dgram from 'node:dgram';
import net from 'node:net';

import dnsPacket from 'dns-packet';

export interface SrvTarget {
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}
export interface ZoneName {
  A?: string[];
  AAAA?: string[];
  SRV?: SrvTarget[];
  /** s; default 5 (what CoreDNS's kubernetes plugin gives) */
  ttl?: number;
}
/** Lower-case fully qualified names, no trailing dot. */
export type Zone = Record<string, ZoneName>;
/** 'ok': answer from the zone; 'servfail' / 'nxdomain': that code for every query; 'silent': never answer */
export type Mode = 'ok' | 'servfail' | 'nxdomain' | 'silent';

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3 } as const;

let zone: Zone = {};
let mode: Mode = 'ok';
const counts: Record<string, number> = {};

function answer(query: Buffer): Buffer | undefined {
  let q: dnsPacket.Packet;
  try {
    q = dnsPacket.decode(query);
  } catch {
    return undefined;
  }
  if (mode === 'silent') return undefined;
  const question = q.questions?.[0];
  const reply = (rcode: number, answers: dnsPacket.Answer[] = []): Buffer =>
    dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (q.flags! & dnsPacket.RECURSION_DESIRED) | rcode,
      questions: q.questions,
      answers,
    });
  if (question === undefined) return reply(RCODE.SERVFAIL);
  const name = question.name.toLowerCase().replace(/\.$/, '');
  const key = `${question.type} ${name}`;
  counts[key] = (counts[key] ?? 0) + 1;
  if (mode === 'servfail') return reply(RCODE.SERVFAIL);
  if (mode === 'nxdomain') return reply(RCODE.NXDOMAIN);
  const entry = zone[name];
  if (entry === undefined) return reply(RCODE.NXDOMAIN);
  const ttl = entry.ttl ?? 5;
  const answers: dnsPacket.Answer[] = [];
  if (question.type === 'A') for (const ip of entry.A ?? []) answers.push({ type: 'A', name: question.name, ttl, data: ip });
  if (question.type === 'AAAA') for (const ip of entry.AAAA ?? []) answers.push({ type: 'AAAA', name: question.name, ttl, data: ip });
  if (question.type === 'SRV') {
    for (const s of entry.SRV ?? [])
      answers.push({ type: 'SRV', name: question.name, ttl, data: { target: s.target, port: s.port, priority: s.priority ?? 0, weight: s.weight ?? 10 } });
  }
  return reply(RCODE.NOERROR, answers);
}

function udpSocket(): dgram.Socket {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, from) => {
    const out = answer(msg);
    if (out !== undefined) socket.send(out, from.port, from.address);
  });
  return socket;
}

// TCP: two-byte length prefix per message (a resolver falls back to it after a truncated answer)
function tcpServer(): net.Server {
  return net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) return;
        const out = answer(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        if (out === undefined) continue;
        const head = Buffer.alloc(2);
        head.writeUInt16BE(out.length, 0);
        socket.write(Buffer.concat([head, out]));
      }
    });
    socket.on('error', () => {});
  });
}

process.on('message', (m: { type: string; zone?: Zone; mode?: Mode }) => {
  if (m.type === 'zone') {
    if (m.zone !== undefined) zone = m.zone;
    mode = m.mode ?? 'ok';
    process.send!({ type: 'zone-set' });
  } else if (m.type === 'queries') {
    process.send!({ type: 'queries', counts });
  }
});
process.on('disconnect', () => process.exit(0));

const wanted = Number(process.argv[2] ?? 0);
/**
 * UDP takes a free port, then TCP the same one. Another process may hold that port for TCP (a client's
 * ephemeral port, in a test suite running beside it): with no port asked for, take another (at most 20 tries).
 * Each try has sockets of its own: a net.Server's listen callback stays registered after a failed listen, and
 * would report the abandoned port when a later listen on the same server succeeds.
 */
function listenBoth(tries: number): void {
  const udp = udpSocket();
  udp.bind(wanted, '127.0.0.1', () => {
    const { port } = udp.address();
    const tcp = tcpServer();
    tcp.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE' || wanted !== 0 || tries <= 1) throw err;
      udp.close(() => listenBoth(tries - 1));
    });
    tcp.listen(port, '127.0.0.1', () => process.send!({ type: 'ready', port }));
  });
}
listenBoth(20);
