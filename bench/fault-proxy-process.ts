/**
 * `node fault-proxy-process.js <upstream-port>...`: one FaultProxy per
 * upstream in this process. IPC: 'ready' { ports } once listening;
 * { type: 'fault', index, fault } sets one proxy's fault; { type: 'pace', ms } spaces slices ms apart; { type: 'cpu' } is
 * answered with { type: 'cpu', us } (this process's CPU time so far, µs).
 */
import { type Fault, FaultProxy } from './fault-proxy.js';

const proxies = process.argv.slice(2).map((p) => new FaultProxy(Number(p)));
const ports = await Promise.all(proxies.map((p) => p.listen()));
process.on('message', (m: { type: string; index: number; fault: Fault; ms: number }) => {
  if (m.type === 'fault') proxies[m.index]!.set(m.fault);
  else if (m.type === 'pace') for (const p of proxies) p.slicePaceMs = m.ms;
  else if (m.type === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send?.({ type: 'cpu', us: user + system });
  }
});
process.send?.({ type: 'ready', ports });
process.once('disconnect', () => process.exit(0));
