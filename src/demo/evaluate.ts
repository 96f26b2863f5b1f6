// The demo's measurements, as pure functions of sampled rewards and log-probs: mean ground-truth reward ± standard
// error, the Monte-Carlo KL(π‖π_ref) = E_{y~π}[log π(y) − log π_ref(y)] (summed over generated tokens), the win
// rate against the base model's samples (ties count half), and the best-of-N baseline, whose KL is the analytic
// bound log N − (N − 1)/N (Stiennon et al. 2020; Beirami et al. 2024). Not here: sampling (sampling.ts).

/** Mean and standard error (sample standard deviation / √n) of a list. */
export function meanAndSe(values: readonly number[]): { mean: number; se: number } {
  const n = values.length;
  if (n === 0) return { mean: NaN, se: NaN };
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n === 1) return { mean, se: 0 };
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  return { mean, se: Math.sqrt(variance / n) };
}

/** 1 when a > b, ½ on a tie, 0 otherwise. */
export const winScore = (a: number, b: number): number => (a > b ? 1 : a === b ? 0.5 : 0);

/**
 * Win rate of `policy` against `base`: both grouped by prompt; sample k of each prompt is compared with base sample
 * k mod |base[p]|, so every policy sample takes part.
 */
export function winRate(policy: readonly (readonly number[])[], base: readonly (readonly number[])[]): number {
  let total = 0;
  let count = 0;
  policy.forEach((rewards, p) => rewards.forEach((r, k) => {
    total += winScore(r, base[p][k % base[p].length]);
    count++;
  }));
  return count === 0 ? NaN : total / count;
}

/** Analytic KL(π_bon‖π_ref) bound of best-of-N sampling: log N − (N − 1)/N. */
export const bestOfNKl = (n: number): number => Math.log(n) - (n - 1) / n;

/**
 * Best-of-N from `pool` (per prompt at least N base samples): each prompt's pool is cut into ⌊|pool|/N⌋ disjoint
 * groups of N, and each group contributes the largest reward in it. Returns those maxima, grouped by prompt.
 */
export function bestOfN(pool: readonly (readonly number[])[], n: number): number[][] {
  return pool.map((rewards, p) => {
    const groups = Math.floor(rewards.length / n);
    if (groups === 0) throw new RangeError(`bestOfN: prompt ${p} has ${rewards.length} samples, fewer than N = ${n}`);
    return Array.from({ length: groups }, (_, g) => Math.max(...rewards.slice(g * n, (g + 1) * n)));
  });
}

/** What the frontier and the summary say about one policy or baseline. */
export interface PolicyEvaluation {
  method: string;
  beta?: number;
  n?: number;
  kl: number;
  kl_se?: number;
  reward: number;
  reward_se: number;
  win_rate: number;
  samples: number;
  /** True when kl is an analytic bound rather than an estimate. */
  kl_analytic?: boolean;
  /** Trained policies: the judge labels their training data spent (one per pairwise judgement, ties included). */
  labels?: number;
  /** Trained policies: the preference pairs they trained on (the labels that were not ties). */
  pairs?: number;
}

/** Which trained policy an evaluation is of: method, β, and the labels and pairs its training data cost. */
export interface PolicyInfo {
  method: string;
  beta?: number;
  labels?: number;
  pairs?: number;
}

/**
 * A trained policy's evaluation from its samples on the held-out prompts: rewards and log-probs under the policy and
 * the reference (same order), and the base model's rewards on the same prompts for the win rate.
 */
export function evaluatePolicy(
  label: PolicyInfo,
  rewards: readonly (readonly number[])[],
  policyLogps: readonly number[],
  refLogps: readonly number[],
  baseRewards: readonly (readonly number[])[],
): PolicyEvaluation {
  if (policyLogps.length !== refLogps.length) throw new RangeError(`evaluatePolicy: ${policyLogps.length} policy log-probs but ${refLogps.length} reference ones`);
  const kl = meanAndSe(policyLogps.map((lp, i) => lp - refLogps[i]));
  const reward = meanAndSe(rewards.flat());
  return { ...label, kl: kl.mean, kl_se: kl.se, reward: reward.mean, reward_se: reward.se, win_rate: winRate(rewards, baseRewards), samples: policyLogps.length };
}

/**
 * The base model and best-of-N points. `reference` is the base's samples used for win rates (as for the policies);
 * `pool` is a separate set of base samples, at least max(ns) per prompt, for best-of-N.
 */
export function evaluateBaselines(reference: readonly (readonly number[])[], pool: readonly (readonly number[])[], ns: readonly number[]): PolicyEvaluation[] {
  const all = meanAndSe([...reference.flat(), ...pool.flat()]);
  const base: PolicyEvaluation = { method: 'base', kl: 0, reward: all.mean, reward_se: all.se, win_rate: winRate(pool, reference), samples: reference.flat().length + pool.flat().length };
  const bon = ns.map((n): PolicyEvaluation => {
    const best = bestOfN(pool, n);
    const r = meanAndSe(best.flat());
    return { method: 'best_of_n', n, kl: bestOfNKl(n), kl_analytic: true, reward: r.mean, reward_se: r.se, win_rate: winRate(best, reference), samples: best.flat().length };
  });
  return [base, ...bon];
}

/** frontier.json's points (report/index.ts's format). */
export function frontierPoints(evals: readonly PolicyEvaluation[]): Record<string, unknown>[] {
  return evals.map((e) => ({
    method: e.method, kl: e.kl, reward: e.reward, reward_se: e.reward_se, win_rate: e.win_rate,
    ...(e.beta !== undefined ? { beta: e.beta } : {}), ...(e.n !== undefined ? { n: e.n } : {}),
    ...(e.labels !== undefined ? { labels: e.labels } : {}), ...(e.pairs !== undefined ? { pairs: e.pairs } : {}),
  }));
}
