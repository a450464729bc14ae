/**
 * `node fault-proxy-process.js <upstream-port>...`: one FaultProxy per
 * upstream in this process. IPC: 'ready' { ports } once listening;
 * { type: 'fault', index, fault } sets one proxy's fault.
 */
import { type Fault, FaultProxy } from './fault-proxy.js';

const proxies = process.argv.slice(2).map((p) => new FaultProxy(Number(p)));
const ports = await Promise.all(proxies.map((p) => p.listen()));
process.on('message', (m: { type: string; index: number; fault: Fault }) => {
  if (m.type === 'fault') proxies[m.index]!.set(m.fault);
});
process.send?.({ type: 'ready', ports });
process.once('disconnect', () => process.exit(0));
