// Token heatmaps: each token of a completion is a <span> coloured by its reward on a diverging scale (red below 0,
// white at 0, blue above), with the value in its hover title, and a legend bar. The scale is symmetric and clipped at
// the 95th percentile of |reward| so one outlier token does not wash out the rest. Pure: sequences in, HTML out.
import { formatValue } from './charts.js';
import { escapeHtml } from './escape.js';
import type { TokenSequence } from './run-dir.js';

export interface HeatmapOptions {
  /** Sequences shown (default 24); the rest are counted in a note. */
  maxSequences?: number;
  /** Tokens shown per sequence (default 400). */
  maxTokens?: number;
}

const NEGATIVE: Rgb = [178, 24, 43]; // the ends of ColorBrewer RdBu
const POSITIVE: Rgb = [33, 102, 172];
const WHITE: Rgb = [255, 255, 255];
type Rgb = readonly [number, number, number];

/** The colour of `reward` on a scale clipped to ±limit: t = reward/limit in [−1, 1] blends white toward red or blue. */
export function rewardColor(reward: number, limit: number): { background: string; text: string } {
  const t = Math.max(-1, Math.min(1, reward / limit));
  const end = t < 0 ? NEGATIVE : POSITIVE;
  const a = Math.abs(t);
  const rgb = WHITE.map((w, i) => Math.round(w + (end[i] - w) * a));
  return { background: `rgb(${rgb.join(',')})`, text: a > 0.55 ? '#fff' : '#111' };
}

/** The colour scale's half-width: the 95th percentile of |reward| (never 0, so an all-zero run still renders). */
export function colorLimit(rewards: readonly number[]): number {
  if (rewards.length === 0) return 1;
  const sorted = rewards.map(Math.abs).sort((a, b) => a - b);
  const p95 = sorted[Math.min(sorted.length - 1, Math.floor(0.95 * sorted.length))];
  return p95 > 0 ? p95 : sorted[sorted.length - 1] > 0 ? sorted[sorted.length - 1] : 1;
}

/** How a token's text shows inside its span: newlines as ↵ plus a break, tabs as →, an empty token as ∅. */
function tokenText(token: string): string {
  if (token === '') return '∅';
  return escapeHtml(token.replace(/\t/g, '→')).replace(/\r?\n/g, '↵<br>');
}

/** The heatmap section body: legend, then one block per sequence (label, Σ reward, coloured token spans). */
export function tokenHeatmap(sequences: readonly TokenSequence[], opts: HeatmapOptions = {}): string {
  const maxSequences = opts.maxSequences ?? 24;
  const maxTokens = opts.maxTokens ?? 400;
  const shown = sequences.slice(0, maxSequences);
  const limit = colorLimit(shown.flatMap((s) => s.rewards.slice(0, maxTokens)));
  const neg = rewardColor(-limit, limit).background;
  const pos = rewardColor(limit, limit).background;
  const parts: string[] = [
    `<div class="heat-legend"><span>−${escapeHtml(formatValue(limit))} or less</span>`
      + `<div class="heat-scale" style="background:linear-gradient(to right,${neg},#fff,${pos})"></div>`
      + `<span>+${escapeHtml(formatValue(limit))} or more</span>`
      + `<span class="muted">per-token reward β·log π/π_ref; hover a token for its value</span></div>`,
  ];
  for (const s of shown) {
    const total = s.rewards.reduce((a, b) => a + b, 0);
    const spans = s.tokens.slice(0, maxTokens).map((tok, i) => {
      const r = s.rewards[i];
      const c = rewardColor(r, limit);
      const title = `${JSON.stringify(tok)}: ${formatValue(r)}`;
      return `<span class="tok" style="background:${c.background};color:${c.text}" title="${escapeHtml(title)}">${tokenText(tok)}</span>`;
    }).join('');
    const more = s.tokens.length > maxTokens ? `<span class="muted"> … ${s.tokens.length - maxTokens} more tokens</span>` : '';
    parts.push(`<div class="seq"><div class="seq-label">${escapeHtml(s.label)} <span class="muted">· ${s.tokens.length} tokens · Σ reward ${escapeHtml(formatValue(total))}</span></div>`
      + `<div class="tokens">${spans}${more}</div></div>`);
  }
  if (sequences.length > shown.length) parts.push(`<p class="muted">Showing ${shown.length} of ${sequences.length} sequences.</p>`);
  return parts.join('\n');
}
