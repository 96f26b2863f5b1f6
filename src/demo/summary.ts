// What the demo prints at its end: the table of methods (β or N, KL, reward ± s.e., win rate against the base), the
// comparison of DPO with SFT at SFT's KL (DPO's frontier interpolated linearly in KL), and the token-credit line.
// Pure string formatting of evaluate.ts's and token-credit.ts's results.
import type { PolicyEvaluation } from './evaluate.js';
import type { LexiconCredit } from './token-credit.js';

const fixed = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

/** The evaluation table, one row per point; a KL marked * is best-of-N's analytic bound. */
export function formatTable(evals: readonly PolicyEvaluation[]): string {
  const header = ['method', 'β / N', 'KL(π‖π_ref)', 'reward ± s.e.', 'win rate'];
  const rows = evals.map((e) => [
    e.method,
    e.beta !== undefined ? String(e.beta) : e.n !== undefined ? `N=${e.n}` : '',
    `${fixed(e.kl, 2)}${e.kl_analytic ? '*' : ''}`,
    `${fixed(e.reward, 2)} ± ${fixed(e.reward_se, 2)}`,
    fixed(e.win_rate, 2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), '* best-of-N: the analytic bound log N − (N−1)/N'].join('\n');
}

export interface EqualKlComparison {
  sftKl: number;
  sftReward: number;
  /**
   * DPO's reward at SFT's KL, interpolated linearly between the two points of DPO's curve around it; the curve
   * starts at the base model (KL 0, the β → ∞ limit). null when SFT's KL is beyond every DPO run's.
   */
  dpoReward: number | null;
  /** The DPO point nearest to SFT in KL, when no interpolation is possible. */
  nearest: PolicyEvaluation | null;
}

/** Compares DPO's reward–KL curve with the SFT point at SFT's KL. */
export function compareAtEqualKl(evals: readonly PolicyEvaluation[]): EqualKlComparison | null {
  const sft = evals.find((e) => e.method === 'sft');
  const base = evals.find((e) => e.method === 'base');
  const dpo = evals.filter((e) => e.method === 'dpo').sort((a, b) => a.kl - b.kl);
  if (sft === undefined || dpo.length === 0) return null;
  const curve = base ? [base, ...dpo] : dpo;
  let dpoReward: number | null = null;
  for (let i = 0; i + 1 < curve.length && dpoReward === null; i++) {
    const [a, b] = [curve[i], curve[i + 1]];
    if (sft.kl >= a.kl && sft.kl <= b.kl) dpoReward = b.kl === a.kl ? Math.max(a.reward, b.reward) : a.reward + ((sft.kl - a.kl) / (b.kl - a.kl)) * (b.reward - a.reward);
  }
  const nearest = dpo.reduce((best, e) => (Math.abs(e.kl - sft.kl) < Math.abs(best.kl - sft.kl) ? e : best));
  return { sftKl: sft.kl, sftReward: sft.reward, dpoReward, nearest: dpoReward === null ? nearest : null };
}

export function formatComparison(c: EqualKlComparison | null): string {
  if (c === null) return '';
  if (c.dpoReward !== null) {
    const verdict = c.dpoReward > c.sftReward ? 'DPO is higher' : 'SFT is higher';
    return `at SFT's KL (${c.sftKl.toFixed(2)}): DPO reward ${c.dpoReward.toFixed(2)} (linear between the base and the DPO runs) vs SFT ${c.sftReward.toFixed(2)}: ${verdict}`;
  }
  const n = c.nearest!;
  return `SFT's KL (${c.sftKl.toFixed(2)}) is beyond the DPO runs'; the nearest DPO (β=${n.beta}) has KL ${n.kl.toFixed(2)} and reward ${n.reward.toFixed(2)} vs SFT ${c.sftReward.toFixed(2)}`;
}

export function formatCredit(credit: LexiconCredit, beta: number): string {
  const c = (name: string, x: LexiconCredit['positive']) => `${name} ${x.mean >= 0 ? '+' : ''}${x.mean.toFixed(3)} ± ${x.se.toFixed(3)} (${x.count})`;
  return `token rewards β·log π/π_ref (β=${beta}), mean per token: ${c('AFINN-positive words', credit.positive)}, ` +
    `${c('AFINN-negative words', credit.negative)}, ${c('other tokens', credit.other)}; correlation with the AFINN score ${credit.correlation.toFixed(2)}`;
}
