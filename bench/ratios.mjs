// Ratios of req/s between two transports of a bench result, per run and point, as medians with min-max:
// for a pair the run did not put in its own ratio table (e.g. against the limit-msgpack-shared reference).
// usage: node bench/ratios.mjs bench/results/large-11.json <transport a> <transport b>
import fs from 'node:fs';

const [file, a, b] = process.argv.slice(2);
if (b === undefined) throw new Error('usage: ratios.mjs <result.json> <transport a> <transport b>');
const { points } = JSON.parse(fs.readFileSync(file, 'utf8'));
const rps = new Map(points.map((p) => [`${p.run}|${p.placement}|${p.payload}|${p.inflight}|${p.transport}`, p.rps]));
const where = [...new Set(points.map((p) => `${p.placement}|${p.payload}|${p.inflight}`))];
const runs = [...new Set(points.map((p) => p.run))];
const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log(`| point | ${a} / ${b} (median, min-max) |\n|---|---|`);
for (const w of where) {
  const r = runs.map((n) => rps.get(`${n}|${w}|${a}`) / rps.get(`${n}|${w}|${b}`)).filter((x) => Number.isFinite(x));
  if (r.length === 0) continue;
  const [placement, payload, inflight] = w.split('|');
  console.log(`| ${payload} x${inflight} ${placement} | ${median(r).toFixed(2)} (${Math.min(...r).toFixed(2)}-${Math.max(...r).toFixed(2)}) |`);
}
