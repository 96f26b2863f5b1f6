// Hand-made inline SVG charts for the report: a line chart (axes, nice ticks, grid, legend, point markers with hover
// titles) and the reward–KL frontier scatter (one line per method, ±1 s.e. error bars, β / n labels). Pure functions
// from data to SVG markup; every text passes through escapeHtml. Not here: the token heatmap (heatmap.ts).
import { escapeHtml } from './escape.js';

export type Point = readonly [x: number, y: number];

export interface Series {
  name: string;
  points: readonly Point[];
  color: string;
  /** Eval series are dashed with markers at every point. */
  dashed?: boolean;
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel?: string;
  series: readonly Series[];
  /** Fix the x range (so the run's charts line up); default: the data's. */
  xDomain?: readonly [number, number];
  /** Fix the y range (e.g. [0, 1] for accuracies); default: the data's, rounded out to nice ticks. */
  yDomain?: readonly [number, number];
}

// Plot geometry in SVG user units; the SVG scales to its container's width.
const W = 560;
const H = 300;
const M = { left: 62, right: 18, top: 46, bottom: 44 };
const PLOT_W = W - M.left - M.right;
const LEGEND_ROW = 16;
/** Train series with at most this many points also get a marker per point. */
const MAX_MARKED_POINTS = 40;

/** Colours that stay apart for the colour-blind (Okabe–Ito order, blue first). */
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#7a5195', '#444444'];

export interface Ticks {
  ticks: number[];
  step: number;
  lo: number;
  hi: number;
}

/** About `target` round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi]; lo and hi are rounded out to ticks. */
export function niceTicks(lo: number, hi: number, target = 5): Ticks {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) throw new RangeError(`niceTicks: range must be finite, got [${lo}, ${hi}]`);
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, step, lo: ticks[0], hi: ticks[ticks.length - 1] };
}

const SUPERSCRIPT: Record<string, string> = { '-': '⁻', '0': '⁰', '1': '¹', '2': '²', '3': '³', '4': '⁴', '5': '⁵', '6': '⁶', '7': '⁷', '8': '⁸', '9': '⁹' };

/**
 * Tick labels with the decimals the step needs. Large ranges use a k/M/G suffix; tiny ones (step < 0.001) print
 * mantissas and return the common factor as `scale` (e.g. "×10⁻⁷") for the axis title.
 */
export function tickLabels(t: Ticks): { labels: string[]; scale: string } {
  const top = Math.max(Math.abs(t.lo), Math.abs(t.hi));
  let div = 1;
  let suffix = '';
  let scale = '';
  if (top >= 1e4) [div, suffix] = top >= 1e9 ? [1e9, 'G'] : top >= 1e6 ? [1e6, 'M'] : [1e3, 'k'];
  else if (t.step < 1e-3) {
    const exp = Math.floor(Math.log10(top));
    div = 10 ** exp;
    scale = `×10${String(exp).replace(/./g, (c) => SUPERSCRIPT[c])}`;
  }
  const decimals = Math.min(6, Math.max(0, -Math.floor(Math.log10(t.step / div) + 1e-9)));
  const labels = t.ticks.map((v) => (v === 0 ? '0' : `${(v / div).toFixed(decimals)}${suffix}`.replace('-', '−')));
  return { labels, scale };
}

/** A value for tables and hover titles: 4 significant digits. */
export function formatValue(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return Math.abs(v) >= 1e4 ? v.toLocaleString('en-US') : String(v);
  return String(Number(v.toPrecision(4)));
}

function extent(values: readonly number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

interface LegendItem { name: string; color: string; dashed?: boolean }

/** Legend entries (a short line, dashed for eval, and the name) in rows under the title, wrapping at the right edge. */
function legend(items: readonly LegendItem[]): { markup: string; rows: number } {
  let x = M.left;
  let y = 34;
  const markup = items.map((s) => {
    const width = 23 + s.name.length * 6; // the swatch, then ~6 units a character at 12px
    if (x > M.left && x + width > W - M.right) {
      x = M.left;
      y += LEGEND_ROW;
    }
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
    const item = `<g class="legend-item"><line x1="${x}" x2="${x + 18}" y1="${y}" y2="${y}" stroke="${s.color}" stroke-width="2.5"${dash}/>`
      + `<text class="legend" x="${x + 23}" y="${y}" dominant-baseline="middle">${escapeHtml(s.name)}</text></g>`;
    x += width + 14;
    return item;
  }).join('');
  return { markup, rows: 1 + (y - 34) / LEGEND_ROW };
}

/** Maps data to plot coordinates and draws the frame (grid, axes, tick labels, axis titles) and the legend above. */
function frame(title: string, xLabel: string, yLabel: string | undefined, xs: Ticks, ys: Ticks, items: readonly LegendItem[]) {
  const key = legend(items);
  const top = M.top + (key.rows - 1) * LEGEND_ROW;
  const plotH = H - top - M.bottom;
  const sx = (x: number) => M.left + ((x - xs.lo) / (xs.hi - xs.lo)) * PLOT_W;
  const sy = (y: number) => top + plotH - ((y - ys.lo) / (ys.hi - ys.lo)) * plotH;
  const parts: string[] = [`<text class="chart-title" x="${M.left}" y="18">${escapeHtml(title)}</text>`, key.markup];
  const yText = tickLabels(ys);
  const xText = tickLabels(xs);
  ys.ticks.forEach((t, i) => {
    const y = sy(t).toFixed(1);
    parts.push(`<line class="grid" x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}"/>`);
    parts.push(`<text class="tick" x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeHtml(yText.labels[i])}</text>`);
  });
  const bottom = top + plotH;
  xs.ticks.forEach((t, i) => {
    const x = sx(t).toFixed(1);
    parts.push(`<line class="axis" x1="${x}" x2="${x}" y1="${bottom}" y2="${bottom + 4}"/>`);
    parts.push(`<text class="tick" x="${x}" y="${bottom + 16}" text-anchor="middle">${escapeHtml(xText.labels[i])}</text>`);
  });
  parts.push(`<line class="axis" x1="${M.left}" x2="${W - M.right}" y1="${bottom}" y2="${bottom}"/>`);
  parts.push(`<line class="axis" x1="${M.left}" x2="${M.left}" y1="${top}" y2="${bottom}"/>`);
  parts.push(`<text class="axis-label" x="${M.left + PLOT_W / 2}" y="${H - 6}" text-anchor="middle">${escapeHtml(xText.scale ? `${xLabel} (${xText.scale})` : xLabel)}</text>`);
  if (yLabel || yText.scale) {
    const text = yLabel && yText.scale ? `${yLabel} (${yText.scale})` : yLabel || yText.scale;
    parts.push(`<text class="axis-label" transform="translate(14 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(text)}</text>`);
  }
  return { sx, sy, parts };
}

function svg(title: string, body: string[]): string {
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(title)}" xmlns="http://www.w3.org/2000/svg">${body.join('')}</svg>`;
}

/** A line chart of one or more series against a shared x axis; series without points are left out. */
export function lineChart(spec: LineChartSpec): string {
  const series = spec.series.filter((s) => s.points.length > 0);
  if (series.length === 0) throw new RangeError(`lineChart '${spec.title}': no series has points`);
  const all = series.flatMap((s) => s.points);
  const [x0, x1] = spec.xDomain ?? extent(all.map((p) => p[0]));
  const [y0, y1] = spec.yDomain ?? extent(all.map((p) => p[1]));
  const xs = niceTicks(x0, x1, 6);
  const ys = niceTicks(y0, y1, 5);
  const { sx, sy, parts } = frame(spec.title, spec.xLabel, spec.yLabel, xs, ys, series);
  parts.push(`<g class="plot">`);
  for (const s of series) {
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
    if (s.points.length > 1) {
      const pts = s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"${dash}/>`);
    }
    if (s.dashed || s.points.length <= MAX_MARKED_POINTS) {
      for (const [x, y] of s.points) {
        parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="${s.dashed ? 3.2 : 2.4}" fill="${s.dashed ? '#fff' : s.color}" stroke="${s.color}" stroke-width="1.5">`
          + `<title>${escapeHtml(`${s.name} at ${spec.xLabel} ${formatValue(x)}: ${formatValue(y)}`)}</title></circle>`);
      }
    }
  }
  parts.push(`</g>`);
  return svg(spec.title, parts);
}

export interface FrontierSpec {
  title: string;
  points: readonly { method: string; kl: number; reward: number; beta?: number; n?: number; reward_se?: number; win_rate?: number; labels?: number; pairs?: number }[];
}

/** Reward against KL(π‖π_ref): one colour and line per method (sorted by KL), error bars of ±1 s.e., β/n labels. */
export function frontierChart(spec: FrontierSpec): string {
  if (spec.points.length === 0) throw new RangeError(`frontierChart '${spec.title}': no points`);
  const methods = [...new Set(spec.points.map((p) => p.method))];
  const color = (m: string) => PALETTE[methods.indexOf(m) % PALETTE.length];
  const [k0, k1] = extent(spec.points.map((p) => p.kl));
  const [r0, r1] = extent(spec.points.flatMap((p) => [p.reward - (p.reward_se ?? 0), p.reward + (p.reward_se ?? 0)]));
  const xs = niceTicks(Math.min(0, k0), k1 + 0.08 * (k1 - Math.min(0, k0)), 6); // room for the last point's label
  const ys = niceTicks(r0, r1, 5);
  const { sx, sy, parts } = frame(spec.title, 'KL(π ‖ π_ref)  (nats)', 'reward', xs, ys, methods.map((m) => ({ name: m, color: color(m) })));
  parts.push(`<g class="plot">`);
  for (const m of methods) {
    const pts = spec.points.filter((p) => p.method === m).slice().sort((a, b) => a.kl - b.kl);
    if (pts.length > 1) {
      const line = pts.map((p) => `${sx(p.kl).toFixed(1)},${sy(p.reward).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${line}" fill="none" stroke="${color(m)}" stroke-width="2" stroke-opacity="0.7"/>`);
    }
    for (const p of pts) {
      const x = sx(p.kl).toFixed(1);
      if (p.reward_se !== undefined && p.reward_se > 0) {
        parts.push(`<line x1="${x}" x2="${x}" y1="${sy(p.reward - p.reward_se).toFixed(1)}" y2="${sy(p.reward + p.reward_se).toFixed(1)}" stroke="${color(m)}" stroke-width="1.5"/>`);
      }
      const tag = p.beta !== undefined ? `β=${formatValue(p.beta)}` : p.n !== undefined ? `n=${formatValue(p.n)}` : '';
      const label = pts.length === 1 ? [m, tag].filter((t) => t !== '').join(' ') : tag; // a lone point (base, sft) with its method too
      const tip = [`${m}${tag ? ' ' + tag : ''}`, `KL ${formatValue(p.kl)}`, `reward ${formatValue(p.reward)}${p.reward_se !== undefined ? ' ± ' + formatValue(p.reward_se) : ''}`,
        ...(p.win_rate !== undefined ? [`win rate ${formatValue(p.win_rate)}`] : []),
        ...(p.labels !== undefined ? [`${formatValue(p.labels)} labels`] : []), ...(p.pairs !== undefined ? [`${formatValue(p.pairs)} pairs`] : [])].join(', ');
      parts.push(`<circle cx="${x}" cy="${sy(p.reward).toFixed(1)}" r="4.5" fill="${color(m)}" stroke="#fff" stroke-width="1.2"><title>${escapeHtml(tip)}</title></circle>`);
      if (label) parts.push(`<text class="point-label" x="${(sx(p.kl) + 6).toFixed(1)}" y="${(sy(p.reward) - 6).toFixed(1)}">${escapeHtml(label)}</text>`);
    }
  }
  parts.push(`</g>`);
  return svg(spec.title, parts);
}
