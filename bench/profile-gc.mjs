// GC share of busy time in .cpuprofile files (issue 29): (garbage collector) / (all samples - idle),
// and the top self-time functions. Profiles from `node dist/bench/run.js --profile both` (bench/results/profiles).
// Usage: node bench/profile-gc.mjs file.cpuprofile... [--top 12]
import fs from 'node:fs';
const args = process.argv.slice(2);
const t = args.indexOf('--top');
const top = t >= 0 ? Number(args.splice(t, 2)[1]) : 12;
for (const f of args) {
  const prof = JSON.parse(fs.readFileSync(f, 'utf8'));
  const byId = new Map(prof.nodes.map((x) => [x.id, x]));
  const self = new Map();
  let total = 0;
  let idle = 0;
  let gc = 0;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    const cf = byId.get(id).callFrame;
    const k = `${cf.functionName || '(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber}`;
    self.set(k, (self.get(k) ?? 0) + dt);
    total += dt;
    if (cf.functionName === '(idle)') idle += dt;
    if (cf.functionName === '(garbage collector)') gc += dt;
  });
  const busy = total - idle;
  console.log(`${f}: busy ${(busy / 1e3).toFixed(0)} ms of ${(total / 1e3).toFixed(0)}, GC ${((100 * gc) / busy).toFixed(1)} % of busy`);
  for (const [k, dt] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) if (!k.startsWith('(idle)')) console.log(`   ${((100 * dt) / busy).toFixed(1).padStart(5)}%  ${k}`);
}
