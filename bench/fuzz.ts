/**
 * A long fuzz run against a live server: hostile connections (random bytes,
 * truncated headers, wrong magic/version, lengths just over the limit,
 * absurd action lengths, valid headers with random msgpack bodies) opened
 * continuously while a well-behaved client keeps calling on its own
 * connection. Usage: node dist/bench/fuzz.js [--seconds 60]
 */
import net from 'node:net';

import { ClientStream, MethodDispatch, type RpcLogger, RpcServer, type TcpAddress } from '../lib/index.js';
import { encodeRequest } from '../lib/protocol/request-frame.js';

const i = process.argv.indexOf('--seconds');
const seconds = i > 0 ? Number(process.argv[i + 1]) : 60;
const maxFrameSize = 64 * 1024;
const closedBy = new Map<string, number>();
const logger: RpcLogger = {
  log() {},
  error() {},
  warn(m) {
    const code = m.match(/\[(rpc_[a-z_]+)\]/)?.[1] ?? (/read timeout/.test(m) ? 'read timeout' : /cannot decode/.test(m) ? 'rpc_decode (answered)' : 'other');
    closedBy.set(code, (closedBy.get(code) ?? 0) + 1);
  },
};
const server = new RpcServer(new MethodDispatch({ echo: (v: unknown) => v }, logger), { maxFrameSize, readTimeout: 200, logger });
const { port } = (await server.listen('127.0.0.1:0')) as TcpAddress;
const good = await ClientStream.connect({ host: '127.0.0.1', port });

const rnd = (n: number) => Math.floor(Math.random() * n);
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => rnd(256)));
const header = () => Buffer.from(encodeRequest({ action: 'echo', seq: 1 }).subarray(0, 32));
const kinds: Record<string, () => Buffer> = {
  random: () => bytes(1 + rnd(1024)),
  truncated: () => encodeRequest({ action: 'echo', seq: 1 }).subarray(0, 1 + rnd(31)),
  magic: () => ((h) => (h.writeUInt16LE((19749 + 1 + rnd(65000)) % 65536, 0), h))(header()),
  version: () => ((h) => ((h[2] = 2 + rnd(250)), h))(header()),
  overLimit: () => ((h) => (h.writeUInt32LE(maxFrameSize - 32 + 1 + rnd(1000), 24), h))(header()),
  absurdAction: () => ((h) => (h.writeUInt32LE(0xffffffff, 4), h))(header()),
  randomMsgpack: () => encodeRequest({ action: 'echo', seq: 1, msg: bytes(1 + rnd(64)) }),
};
const tried = new Map<string, number>();
let goodOk = 0;
let goodFailed = 0;
let stop = false;
const heap0 = process.memoryUsage().heapUsed;
let heapPeak = heap0;

const traffic = (async () => {
  while (!stop) {
    try {
      await good.request('echo', goodOk);
      goodOk++;
    } catch {
      goodFailed++;
    }
  }
})();

const until = Date.now() + seconds * 1000;
while (Date.now() < until) {
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      const names = Object.keys(kinds);
      const kind = names[rnd(names.length)]!;
      tried.set(kind, (tried.get(kind) ?? 0) + 1);
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('data', () => {});
      await new Promise((r) => s.once('connect', r));
      s.write(kinds[kind]!());
      await Promise.race([new Promise((r) => s.once('close', r)), new Promise((r) => setTimeout(r, 300))]);
      s.destroy();
    }),
  );
  heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
}
stop = true;
await traffic;
const report = {
  seconds,
  inputsTried: Object.fromEntries(tried),
  hostileConnections: [...tried.values()].reduce((a, b) => a + b, 0),
  closedOrAnsweredBy: Object.fromEntries(closedBy),
  validRequestsAnswered: goodOk,
  validRequestsFailed: goodFailed,
  serverConnectionsLeft: server.stats.connections,
  heapGrowthMiB: Number(((heapPeak - heap0) / 2 ** 20).toFixed(1)),
};
console.log(JSON.stringify(report, null, 2));
good.destroy();
await server.destroy();
process.exit(goodFailed === 0 ? 0 : 1);
