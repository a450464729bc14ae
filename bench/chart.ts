/** Renders requests/s per transport per (payload, concurrency) as a grouped bar chart (SVG). */
interface ChartPoint {
  transport: string;
  payload: string;
  inflight: number;
  ok: boolean;
  rps?: number;
}

const COLORS = ['#2b6cb0', '#dd6b20', '#38a169', '#805ad5', '#718096', '#d53f8c', '#319795'];

export function renderChart(points: ChartPoint[]): string {
  const transports = [...new Set(points.map((p) => p.transport))];
  const groups = [...new Set(points.map((p) => `${p.payload} x${p.inflight}`))];
  const max = Math.max(1, ...points.map((p) => (p.ok ? (p.rps ?? 0) : 0)));
  const barW = 14;
  const groupW = transports.length * barW + 24;
  const left = 70;
  const top = 30;
  const height = 260;
  const width = left + groups.length * groupW + 20;
  const svg: string[] = [];
  svg.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top + height + 90}" font-family="sans-serif" font-size="11">`);
  svg.push(`<rect width="100%" height="100%" fill="white"/>`);
  svg.push(`<text x="${left}" y="18" font-size="13" font-weight="bold">requests/s (higher is better)</text>`);
  for (let i = 0; i <= 4; i++) {
    const y = top + height - (height * i) / 4;
    svg.push(`<line x1="${left}" x2="${width - 10}" y1="${y}" y2="${y}" stroke="#e2e8f0"/>`);
    svg.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${Math.round((max * i) / 4 / 1000)}k</text>`);
  }
  groups.forEach((g, gi) => {
    const x0 = left + gi * groupW + 12;
    transports.forEach((t, ti) => {
      const p = points.find((q) => q.transport === t && `${q.payload} x${q.inflight}` === g);
      const v = p?.ok ? (p.rps ?? 0) : 0;
      const h = (height * v) / max;
      const x = x0 + ti * barW;
      if (p && !p.ok) svg.push(`<text x="${x + barW / 2}" y="${top + height - 4}" text-anchor="middle" fill="#c53030" font-size="10">✗</text>`);
      svg.push(
        `<rect x="${x}" y="${top + height - h}" width="${barW - 2}" height="${h}" fill="${COLORS[ti % COLORS.length]}"><title>${t} ${g}: ${Math.round(v)} req/s</title></rect>`,
      );
    });
    svg.push(`<text x="${x0 + (transports.length * barW) / 2}" y="${top + height + 16}" text-anchor="middle">${g}</text>`);
  });
  transports.forEach((t, ti) => {
    const x = left + (ti % 4) * 150;
    const y = top + height + 40 + Math.floor(ti / 4) * 18;
    svg.push(`<rect x="${x}" y="${y - 9}" width="10" height="10" fill="${COLORS[ti % COLORS.length]}"/><text x="${x + 14}" y="${y}">${t}</text>`);
  });
  svg.push('</svg>');
  return svg.join('\n') + '\n';
}
