// What the demo prints at its end: the table of methods (β or N, KL, reward ± s.e., win rate against the base, and
// the judge labels and pairs each trained policy's data cost), the comparisons at equal KL with the offline DPO
// frontier (interpolated linearly in KL) of SFT, online DPO and DPO on RSO's pairs, and the token-credit line.
// Pure string formatting of evaluate.ts's and token-credit.ts's results.
import type { PolicyEvaluation } from './evaluate.js';
import type { LexiconCredit } from './token-credit.js';

const fixed = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

/**
 * The evaluation table, one row per point; a KL marked * is best-of-N's analytic bound. `labels` and `pairs` are the
 * judge labels a trained policy's data spent and the pairs it kept (ties dropped); the baselines train on none.
 */
export function formatTable(evals: readonly PolicyEvaluation[]): string {
  const header = ['method', 'β / N', 'KL(π‖π_ref)', 'reward ± s.e.', 'win rate', 'labels', 'pairs'];
  const rows = evals.map((e) => [
    e.method,
    e.beta !== undefined ? String(e.beta) : e.n !== undefined ? `N=${e.n}` : '',
    `${fixed(e.kl, 2)}${e.kl_analytic ? '*' : ''}`,
    `${fixed(e.reward, 2)} ± ${fixed(e.reward_se, 2)}`,
    fixed(e.win_rate, 2),
    e.labels !== undefined ? String(e.labels) : '',
    e.pairs !== undefined ? String(e.pairs) : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), '* best-of-N: the analytic bound log N − (N−1)/N'].join('\n');
}

/**
 * The offline DPO frontier's reward at `kl`: linear between the two points around it of the curve that starts at the
 * base model (KL 0, the β → ∞ limit) and runs through the offline DPO runs in KL order. null beyond the last run.
 */
export function offlineRewardAtKl(evals: readonly PolicyEvaluation[], kl: number): number | null {
  const base = evals.find((e) => e.method === 'base');
  const dpo = evals.filter((e) => e.method === 'dpo').sort((a, b) => a.kl - b.kl);
  const curve = base ? [base, ...dpo] : dpo;
  for (let i = 0; i + 1 < curve.length; i++) {
    const [a, b] = [curve[i], curve[i + 1]];
    if (kl >= a.kl && kl <= b.kl) return b.kl === a.kl ? Math.max(a.reward, b.reward) : a.reward + ((kl - a.kl) / (b.kl - a.kl)) * (b.reward - a.reward);
  }
  return null;
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
  const dpo = evals.filter((e) => e.method === 'dpo');
  if (sft === undefined || dpo.length === 0) return null;
  const dpoReward = offlineRewardAtKl(evals, sft.kl);
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

/** The on-policy methods the demo trains beside offline DPO (method names of their evaluations). */
export const ON_POLICY_METHODS = ['online_dpo', 'rso_dpo'] as const;

/**
 * One line per on-policy point: its KL, reward and labels, the offline DPO run at the same β, and the offline
 * frontier's reward at its KL. The figures only; nothing here decides a winner beyond the sign of the difference.
 */
export function formatOnPolicy(evals: readonly PolicyEvaluation[]): string {
  const point = (e: PolicyEvaluation) => `KL ${fixed(e.kl, 2)}, reward ${fixed(e.reward, 2)} ± ${fixed(e.reward_se, 2)} from ${e.labels ?? '?'} labels (${e.pairs ?? '?'} pairs)`;
  return ON_POLICY_METHODS.flatMap((method) => evals.filter((e) => e.method === method)).map((e) => {
    const offline = evals.find((d) => d.method === 'dpo' && d.beta === e.beta);
    const atKl = offlineRewardAtKl(evals, e.kl);
    const frontier = atKl === null
      ? `its KL is outside the offline DPO frontier (KL 0 to the last run)`
      : `the offline DPO frontier at KL ${fixed(e.kl, 2)}: ${atKl.toFixed(2)} (${e.reward >= atKl ? '+' : ''}${(e.reward - atKl).toFixed(2)})`;
    return `${e.method} β=${e.beta}: ${point(e)}; offline dpo β=${e.beta}: ${offline ? point(offline) : 'not run'}; ${frontier}`;
  }).join('\n');
}

export function formatCredit(credit: LexiconCredit, beta: number): string {
  const c = (name: string, x: LexiconCredit['positive']) => `${name} ${x.mean >= 0 ? '+' : ''}${x.mean.toFixed(3)} ± ${x.se.toFixed(3)} (${x.count})`;
  return `token rewards β·log π/π_ref (β=${beta}), mean per token: ${c('AFINN-positive words', credit.positive)}, ` +
    `${c('AFINN-negative words', credit.negative)}, ${c('other tokens', credit.other)}; correlation with the AFINN score ${credit.correlation.toFixed(2)}`;
}
