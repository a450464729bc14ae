/**
 * A server process whose event loop can be made busy (what a CPU-heavy
 * handler or a long synchronous section does): `node busy-server.js <port>
 * <name> [no-limit]` (port 0: any; no-limit: no concurrency limit). Actions: `who` (its name), `work` (answers its
 * argument; numbers are remembered as executed ids), `block` (ms: a
 * synchronous busy loop of that long, then answers its name). IPC: 'ready'
 * { port } once listening; { type: 'block', ms } blocks the loop;
 * { type: 'ids' } is answered with { type: 'ids', ids } (every executed id);
 * { type: 'cpu' } with { type: 'cpu', us } (its CPU time so far, µs).
 * SIGTERM: exit.
 */
import { MethodDispatch, RpcServer, silentLogger, type TcpAddress } from '../lib/index.js';

const [portArg = '0', name = 'busy', limit] = process.argv.slice(2);

function block(ms: number): string {
  const until = Date.now() + ms;
  let spins = 0;
  while (Date.now() < until && spins < 1e10) spins++;
  return name;
}

const ids: number[] = [];
function work(v: unknown): unknown {
  if (typeof v === 'number') ids.push(v);
  return v;
}

const server = new RpcServer(new MethodDispatch({ who: () => name, work, block }), {
  logger: silentLogger,
  address: `127.0.0.1:${portArg}`,
  // a third argument 'no-limit': without the concurrency limit (tests about picking, on a loaded machine)
  ...(limit === 'no-limit' ? { concurrencyLimit: false as const } : {}),
});
const address = (await server.listen()) as TcpAddress;
process.send?.({ type: 'ready', port: address.port });
process.on('message', (m: { type: string; ms?: number }) => {
  if (m.type === 'block') block(m.ms ?? 0);
  else if (m.type === 'ids') process.send?.({ type: 'ids', ids });
  else if (m.type === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send?.({ type: 'cpu', us: user + system });
  }
});
process.once('SIGTERM', () => process.exit(0));
// The orchestrator died (a test timed out): do not outlive it.
process.once('disconnect', () => process.exit(1));
