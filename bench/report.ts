/**
 * Turns the raw points of an interleaved benchmark into medians with their
 * spread, ratios taken within each run (side by side) then summarised, the
 * targets of issue 14 checked, and the markdown the README shows.
 */
export interface Point {
  run: number;
  placement: string;
  transport: string;
  payload: string;
  inflight: number;
  ok: boolean;
  note?: string;
  rps?: number;
  p50us?: number;
  p99us?: number;
  clientCpuUsPerReq?: number;
  serverCpuUsPerReq?: number;
  clientRssMiB?: number;
  serverRssMiB?: number;
  errors?: number;
  /** 1-minute load average when the point started */
  load: number;
  /** CPUs the server and the client were allowed to run on */
  serverCpus: string;
  clientCpus: string;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export interface Summary {
  placement: string;
  transport: string;
  payload: string;
  inflight: number;
  ok: boolean;
  rps?: Spread;
  p50us?: Spread;
  p99us?: Spread;
  clientCpuUsPerReq?: Spread;
  serverCpuUsPerReq?: Spread;
  clientRssMiB?: number;
  serverRssMiB?: number;
  load?: Spread;
  failed: number;
}

export interface Target {
  name: string;
  ratio: string;
  atLeast?: number;
  atMost?: number;
  value?: number;
  met?: boolean;
  /**
   * For an occams / X target: the same ratio for bare sockets + msgpack
   * (limit-msgpack / X) on the same points, what occams would reach if it
   * cost nothing beyond its codec.
   */
  reference?: string;
}

export interface Report {
  date: string;
  machine: string;
  method: { runs: number; seconds: number; warmup: number; placements: string[]; observe?: string; order: string };
  points: Point[];
  summary: Summary[];
  ratios: Record<string, Spread>;
  targets: Target[];
}

export function spread(values: number[]): Spread | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

const key = (p: { placement: string; transport: string; payload: string; inflight: number }) => `${p.placement}|${p.transport}|${p.payload}|${p.inflight}`;

export function summarise(points: Point[]): Summary[] {
  const groups = new Map<string, Point[]>();
  for (const p of points) {
    const k = key(p);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(p);
  }
  const out: Summary[] = [];
  for (const ps of groups.values()) {
    const ok = ps.filter((p) => p.ok);
    const pick = (f: (p: Point) => number | undefined) => spread(ok.map(f).filter((x): x is number => x !== undefined));
    out.push({
      placement: ps[0]!.placement,
      transport: ps[0]!.transport,
      payload: ps[0]!.payload,
      inflight: ps[0]!.inflight,
      ok: ok.length > 0,
      rps: pick((p) => p.rps),
      p50us: pick((p) => p.p50us),
      p99us: pick((p) => p.p99us),
      clientCpuUsPerReq: pick((p) => p.clientCpuUsPerReq),
      serverCpuUsPerReq: pick((p) => p.serverCpuUsPerReq),
      clientRssMiB: Math.max(0, ...ok.map((p) => p.clientRssMiB ?? 0)),
      serverRssMiB: Math.max(0, ...ok.map((p) => p.serverRssMiB ?? 0)),
      load: spread(ps.map((p) => p.load)),
      failed: ps.length - ok.length,
    });
  }
  return out;
}

/** `a/b` of a figure (req/s unless told) within each run (the two points ran minutes apart at most), summarised over runs. */
export function ratioOf(
  points: Point[],
  placement: string,
  a: string,
  b: string,
  payload: string,
  inflight: number,
  figure: (p: Point) => number | undefined = (p) => p.rps,
): Spread | undefined {
  const runs = [...new Set(points.map((p) => p.run))];
  const values: number[] = [];
  for (const run of runs) {
    const find = (t: string) => points.find((p) => p.run === run && p.placement === placement && p.transport === t && p.payload === payload && p.inflight === inflight && p.ok);
    const fa = find(a);
    const fb = find(b);
    const va = fa === undefined ? undefined : figure(fa);
    const vb = fb === undefined ? undefined : figure(fb);
    if (va && vb) values.push(va / vb);
  }
  return spread(values);
}

const PAIRS: [string, string][] = [
  ['occams', 'nest-tcp'],
  // the bare reference against Nest TCP: the ceiling of occams / Nest TCP on the same points
  ['limit-msgpack', 'nest-tcp'],
  ['occams-request', 'nest-tcp'],
  ['occams', 'grpc'],
  ['occams', 'limit-msgpack'],
  ['stream', 'limit-msgpack'],
  // A/B runs against another build (bench/transports/before.ts) and the fast path's worth
  ['occams', 'occams-before'],
  ['stream', 'stream-before'],
  ['occams', 'occams-pipeline'],
  // the Promise form (client.request()) against send() + firstValueFrom, on the same server
  ['occams-request', 'occams'],
];

export function ratios(points: Point[]): Record<string, Spread> {
  const out: Record<string, Spread> = {};
  const combos = new Set(points.map((p) => `${p.placement}|${p.payload}|${p.inflight}`));
  for (const c of combos) {
    const [placement, payload, inflight] = c.split('|') as [string, string, string];
    for (const [a, b] of PAIRS) {
      const r = ratioOf(points, placement, a, b, payload, Number(inflight));
      if (r) out[`${a}/${b} ${payload} x${inflight} ${placement}`] = r;
    }
    if (payload === 'small' && inflight === '1') {
      // latency at 1 in flight, taken within each run like every other ratio
      const r = ratioOf(points, placement, 'occams', 'limit-msgpack', payload, 1, (p) => p.p50us);
      if (r) out[`p50 occams/limit-msgpack small x1 ${placement}`] = r;
    }
  }
  return out;
}

/** The targets of issue 14, checked against the medians. */
export function targets(r: Record<string, Spread>): Target[] {
  const t: Target[] = [];
  const ratio = (name: string, k: string, atLeast: number) => {
    const v = r[k]?.median;
    const reference = k.startsWith('occams/nest-tcp') ? k.replace('occams/', 'limit-msgpack/') : undefined;
    t.push({ name, ratio: k, atLeast, value: v, met: v === undefined ? undefined : v >= atLeast, ...(reference === undefined ? {} : { reference }) });
  };
  for (const placement of ['auto', 'apart']) {
    ratio(`occams / Nest TCP, small x1024, ${placement}`, `occams/nest-tcp small x1024 ${placement}`, 5);
    ratio(`occams / Nest TCP, small x64, ${placement}`, `occams/nest-tcp small x64 ${placement}`, 3);
  }
  ratio('occams / bare+msgpack, small x64', 'occams/limit-msgpack small x64 auto', 0.85);
  ratio('occams / bare+msgpack, small x1024', 'occams/limit-msgpack small x1024 auto', 0.85);
  ratio('occams / bare+msgpack, 16 KiB x1024', 'occams/limit-msgpack 16k x1024 auto', 0.8);
  // issue 29: large values at the bare-socket ceiling (checked when the run measured them)
  for (const [payload, label, inflights] of [
    ['16k', '16 KiB', [1, 64, 1024]],
    ['1m', '1 MiB', [1, 16]],
    ['bin1m', '1 MiB Buffer', [1, 16]],
  ] as const) {
    for (const placement of ['auto', 'apart']) {
      for (const n of inflights) {
        for (const [who, bound] of [
          ['occams', 0.9],
          ['stream', 0.95],
        ] as const) {
          const k = `${who}/limit-msgpack ${payload} x${n} ${placement}`;
          if (r[k] !== undefined) ratio(`${who} / bare+msgpack, ${label} x${n}, ${placement} (issue 29)`, k, bound);
        }
      }
    }
  }
  for (const n of [64, 1024]) ratio(`stream / bare+msgpack, small x${n}`, `stream/limit-msgpack small x${n} auto`, 0.95);
  for (const placement of ['auto', 'apart']) {
    const k = `p50 occams/limit-msgpack small x1 ${placement}`;
    const v = r[k]?.median;
    t.push({ name: `p50 at 1 in flight, occams / bare+msgpack, ${placement}`, ratio: k, atMost: 1.15, value: v, met: v === undefined ? undefined : v <= 1.15 });
  }
  return t;
}

const f = (n: number | undefined, d = 0) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d));
const sp = (s: Spread | undefined, d = 0) => (s === undefined ? '—' : s.n > 1 ? `${f(s.median, d)} (${f(s.min, d)}–${f(s.max, d)})` : f(s.median, d));

export function markdown(r: Report): string {
  const m = r.method;
  const lines = [
    `Run ${r.date} on ${r.machine}. ${m.runs} runs, ${m.order}; ${m.seconds} s per point after ${m.warmup} s warm-up. Medians, with min–max over the runs in parentheses. Placements: ${m.placements.join(', ')} (auto: no pinning; apart: server on CPU 0, client on CPU 1, with taskset).${m.observe && m.observe !== 'off' ? ` Observing: ${m.observe}.` : ''}`,
    '',
    '| target | ratio (median, min–max) | met | bare sockets + msgpack, same ratio |',
    '|---|---|---|---|',
  ];
  for (const t of r.targets) {
    const s = Object.entries(r.ratios).find(([k]) => k === t.ratio)?.[1];
    const bound = t.atLeast !== undefined ? `>= ${t.atLeast}` : `<= ${t.atMost}`;
    const val = s ? sp(s, 2) : f(t.value, 2);
    const ref = t.reference === undefined ? '' : sp(r.ratios[t.reference], 2);
    lines.push(`| ${t.name} (${bound}) | ${val} | ${t.met === undefined ? '—' : t.met ? 'yes' : 'no'} | ${ref} |`);
  }
  lines.push(
    '',
    '| placement | payload | in flight | transport | req/s | p50 µs | p99 µs | client CPU µs/req | server CPU µs/req | client peak RSS MiB | server peak RSS MiB (whole run) | load |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const s of r.summary) {
    const fail = s.failed ? ` (${s.failed} failed)` : '';
    lines.push(
      s.ok
        ? `| ${s.placement} | ${s.payload} | ${s.inflight} | ${s.transport} | ${sp(s.rps)}${fail} | ${sp(s.p50us)} | ${sp(s.p99us)} | ${f(s.clientCpuUsPerReq?.median, 1)} | ${f(s.serverCpuUsPerReq?.median, 1)} | ${f(s.clientRssMiB)} | ${f(s.serverRssMiB)} | ${f(s.load?.median, 1)} |`
        : `| ${s.placement} | ${s.payload} | ${s.inflight} | ${s.transport} | no request completed (stalled) | | | | | | | |`,
    );
  }
  lines.push('', '| ratio (req/s; p50: latency at 1 in flight; within each run) | median | min | max |', '|---|---|---|---|');
  for (const [k, v] of Object.entries(r.ratios)) lines.push(`| ${k} | ${f(v.median, 2)}x | ${f(v.min, 2)}x | ${f(v.max, 2)}x |`);
  return lines.join('\n') + '\n';
}
