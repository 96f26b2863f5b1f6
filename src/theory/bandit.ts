// The contextual bandit: prompts x with K responses each, a reference policy π_ref(y|x), a reward r(x,y) and the
// KL-regularised objective J(π) = E_π[r] − β·KL(π‖π_ref), whose maximiser is π* = π_ref·exp(r/β)/Z (DPO, arXiv
// 2305.18290, eq. 4). Policies are tabular: π_θ = softmax(log π_ref + θ), so θ = 0 is π_ref. DPO training is in
// bandit-dpo.ts.
import type { Rng } from '../engine/random.js';
import { klDivergence, logSumExp, softmax } from './numeric.js';

/** One prompt: K responses. */
export interface BanditPrompt {
  refProbs: number[]; // (K,) π_ref(y|x), all > 0
  rewards: number[]; // (K,) r(x, y)
}

/** A seeded bandit: π_ref = softmax of N(0,1) logits, r ~ N(0,1); one prompt per entry of `responseCounts`. */
export function makeBandit(rng: Rng, responseCounts: readonly number[]): BanditPrompt[] {
  return responseCounts.map((K) => {
    const refLogits = Array.from({ length: K }, () => rng.normal());
    const rewards = Array.from({ length: K }, () => rng.normal());
    return { refProbs: softmax(refLogits), rewards };
  });
}

/** log Z(x) = log Σ_y π_ref(y|x)·exp(r(x,y)/β). */
export function logPartition(p: BanditPrompt, beta: number): number {
  return logSumExp(p.refProbs.map((q, y) => Math.log(q) + p.rewards[y] / beta));
}

/** π*(y|x) = π_ref(y|x)·exp(r(x,y)/β)/Z(x). */
export function optimalPolicy(p: BanditPrompt, beta: number): number[] {
  return softmax(p.refProbs.map((q, y) => Math.log(q) + p.rewards[y] / beta));
}

/** J(π) = Σ_y π(y)·r(y) − β·KL(π‖π_ref). */
export function objective(p: BanditPrompt, policy: readonly number[], beta: number): number {
  let expectedReward = 0;
  for (let y = 0; y < policy.length; y++) expectedReward += policy[y] * p.rewards[y];
  return expectedReward - beta * klDivergence(policy, p.refProbs);
}

/** π_θ = softmax(log π_ref + θ): θ is the policy's log-ratio to π_ref up to a per-prompt constant. */
export function tabularPolicy(p: BanditPrompt, theta: readonly number[]): number[] {
  return softmax(p.refProbs.map((q, y) => Math.log(q) + theta[y]));
}

/**
 * ∂J/∂θ for π_θ = softmax(log π_ref + θ): with g_y = ∂J/∂π_y = r_y − β·(log π_y/π_ref_y + 1), the softmax chain rule
 * gives ∂J/∂θ_y = π_y·(g_y − Σ_y' π_y'·g_y'). The "+1" cancels in the centring, so it is left out, and
 * log π_y/π_ref_y = θ_y − log Σ_y' π_ref_y'·exp(θ_y').
 */
export function objectiveGradient(p: BanditPrompt, theta: readonly number[], beta: number): number[] {
  const logits = theta.map((t, y) => Math.log(p.refProbs[y]) + t);
  const lse = logSumExp(logits);
  const policy = logits.map((l) => Math.exp(l - lse));
  const g = theta.map((t, y) => p.rewards[y] - beta * (t - lse));
  let centre = 0;
  for (let y = 0; y < g.length; y++) centre += policy[y] * g[y];
  return policy.map((q, y) => q * (g[y] - centre));
}

/**
 * Plain gradient ascent on J over θ, from equal logits (π uniform) with step 2/β. Near π* the Hessian in θ is
 * −β·(diag π − ππᵀ), whose eigenvalues lie in [−β/2, 0], so 2/β is stable. Why not start at π_ref: softmax gradient
 * ascent crawls while a response π* favours has tiny probability (its gradient is ∝ π_y), and at small β a start at
 * π_ref can sit on that plateau for 10⁵ steps. The rate is linear, but its constant scales with the smallest
 * probabilities along the way (Mei et al. 2020, arXiv 2005.06392), hence the many steps.
 */
export function ascendObjective(p: BanditPrompt, beta: number, steps: number): number[] {
  const theta = p.refProbs.map((q) => -Math.log(q)); // log π_ref + θ = 0: uniform
  const lr = 2 / beta;
  for (let t = 0; t < steps; t++) {
    const grad = objectiveGradient(p, theta, beta);
    for (let y = 0; y < theta.length; y++) theta[y] += lr * grad[y];
  }
  return tabularPolicy(p, theta);
}

/**
 * Random policies around `centre`, for checking that nothing beats it. Two families, each at every size:
 * moves inside the simplex towards a random distribution q, (1 − t)·centre + t·q (q uniform on the simplex), and
 * random moves of the logits, softmax(log centre + s·g) with g ~ N(0, I).
 */
export function perturbations(rng: Rng, centre: readonly number[], directions: number, sizes: readonly number[]): number[][] {
  const out: number[][] = [];
  const K = centre.length;
  for (let d = 0; d < directions; d++) {
    const exponentials = Array.from({ length: K }, () => -Math.log(1 - rng.uniform())); // normalised: uniform on simplex
    const total = exponentials.reduce((a, b) => a + b, 0);
    const q = exponentials.map((e) => e / total);
    const g = Array.from({ length: K }, () => rng.normal());
    for (const t of sizes) {
      out.push(centre.map((c, y) => (1 - t) * c + t * q[y]));
      out.push(softmax(centre.map((c, y) => Math.log(c) + t * g[y])));
    }
  }
  return out;
}

/**
 * How far the implicit reward β·log π(y)/π_ref(y) is from r up to a per-prompt constant:
 * max_y |β·log(π_y/π_ref_y) − r_y − c| with c the mean over y of β·log(π_y/π_ref_y) − r_y.
 */
export function implicitRewardError(p: BanditPrompt, policy: readonly number[], beta: number): number {
  const diff = policy.map((q, y) => beta * Math.log(q / p.refProbs[y]) - p.rewards[y]);
  const c = diff.reduce((a, b) => a + b, 0) / diff.length;
  return Math.max(...diff.map((d) => Math.abs(d - c)));
}
