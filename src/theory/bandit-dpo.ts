// DPO on the tabular bandit policy π_θ = softmax(log π_ref + θ), with exact gradients in closed form: the population
// loss under exact Bradley–Terry labels (minimised exactly at π*), and the empirical loss on N sampled labelled pairs.
// The DPO margin of a pair (a, b) is h_ab = β·(log π_a/π_ref_a − log π_b/π_ref_b) = β·(θ_a − θ_b): linear in θ, so
// both losses are convex in θ. Not here: the bandit itself and J (bandit.ts).
import type { Rng } from '../engine/random.js';
import type { BanditPrompt } from './bandit.js';
import { logSigmoid, sigmoid } from './numeric.js';

/** (K, K) probabilities of drawing the ordered pair (a, b), a ≠ b: symmetric, zero diagonal, summing to 1. */
export type PairWeights = number[][];

/** How the pairs (y, y′) shown to the labeller are drawn. */
export type PairSampler = 'uniform' | 'reference';
export const pairSamplers: Record<PairSampler, { label: string; weights: (p: BanditPrompt) => PairWeights }> = {
  uniform: { label: 'uniform over pairs y ≠ y′', weights: (p) => normalisedPairs(p.refProbs.map(() => 1)) },
  reference: { label: 'π_ref × π_ref, y ≠ y′', weights: (p) => normalisedPairs(p.refProbs) },
};

/** W_ab ∝ m_a·m_b for a ≠ b. */
function normalisedPairs(m: readonly number[]): PairWeights {
  const K = m.length;
  const W = Array.from({ length: K }, (_, a) => Array.from({ length: K }, (_, b) => (a === b ? 0 : m[a] * m[b])));
  let total = 0;
  for (const row of W) for (const w of row) total += w;
  return W.map((row) => row.map((w) => w / total));
}

/** Bradley–Terry: P(a ≻ b | x) = σ(r(x,a) − r(x,b)). */
export function preferenceProbability(p: BanditPrompt, a: number, b: number): number {
  return sigmoid(p.rewards[a] - p.rewards[b]);
}

/**
 * Population DPO loss L(θ) = Σ_{a≠b} W_ab·[−P(a≻b)·log σ(h_ab) − P(b≻a)·log σ(−h_ab)]: the expected DPO loss of a
 * pair drawn from W and labelled by Bradley–Terry.
 */
export function dpoPopulationLoss(p: BanditPrompt, theta: readonly number[], beta: number, W: PairWeights): number {
  let loss = 0;
  for (let a = 0; a < theta.length; a++) {
    for (let b = 0; b < theta.length; b++) {
      if (a === b || W[a][b] === 0) continue;
      const h = beta * (theta[a] - theta[b]);
      const pab = preferenceProbability(p, a, b);
      loss -= W[a][b] * (pab * logSigmoid(h) + (1 - pab) * logSigmoid(-h));
    }
  }
  return loss;
}

/** ∂L/∂θ_a = 2β·Σ_b W_ab·(σ(h_ab) − P(a≻b)): zero for every a exactly when σ(h_ab) = P(a≻b) on every weighted pair. */
export function dpoPopulationGradient(p: BanditPrompt, theta: readonly number[], beta: number, W: PairWeights): number[] {
  const K = theta.length;
  const grad = new Array<number>(K).fill(0);
  for (let a = 0; a < K; a++) {
    for (let b = 0; b < K; b++) {
      if (a === b || W[a][b] === 0) continue;
      grad[a] += 2 * beta * W[a][b] * (sigmoid(beta * (theta[a] - theta[b])) - preferenceProbability(p, a, b));
    }
  }
  return grad;
}

/**
 * Per-coordinate step sizes 1/(β²·deg_a), deg_a = Σ_b W_ab. The Hessian of either loss is a graph Laplacian with edge
 * weights ≤ β²·W_ab/2 (σ′ ≤ 1/4, both orders of a pair), so these steps keep every eigenvalue of step·Hessian in [0, 1]:
 * gradient descent preconditioned by the diagonal bound (Jacobi), which removes π_ref's spread from the rate.
 */
export function stepSizes(W: PairWeights, beta: number): number[] {
  return W.map((row) => 1 / (beta * beta * row.reduce((s, w) => s + w, 0)));
}

/** Gradient descent on the population DPO loss from θ = 0 (π = π_ref). Returns θ. */
export function trainDpoPopulation(p: BanditPrompt, beta: number, W: PairWeights, steps: number): number[] {
  const theta = new Array<number>(p.rewards.length).fill(0);
  const lr = stepSizes(W, beta);
  for (let t = 0; t < steps; t++) {
    const grad = dpoPopulationGradient(p, theta, beta, W);
    for (let a = 0; a < theta.length; a++) theta[a] -= lr[a] * grad[a];
  }
  return theta;
}

/** N labelled pairs, kept as wins[a][b] = how many times a was preferred to b. */
export interface PreferenceCounts {
  wins: number[][]; // (K, K)
  total: number;
}

/** Draws N pairs from W (inverse CDF over ordered pairs) and labels each by Bradley–Terry with the true reward. */
export function samplePreferences(rng: Rng, p: BanditPrompt, W: PairWeights, N: number): PreferenceCounts {
  const K = W.length;
  const cdf: number[] = [];
  let acc = 0;
  for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) cdf.push((acc += W[a][b]));
  const wins = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  for (let n = 0; n < N; n++) {
    const u = rng.uniform() * acc;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    const a = Math.floor(lo / K);
    const b = lo % K;
    if (rng.uniform() < preferenceProbability(p, a, b)) wins[a][b]++;
    else wins[b][a]++;
  }
  return { wins, total: N };
}

/** Empirical DPO loss (1/N)·Σ_{pairs} −log σ(β·(θ_w − θ_l)). */
export function dpoEmpiricalLoss(theta: readonly number[], beta: number, data: PreferenceCounts): number {
  let loss = 0;
  for (let w = 0; w < theta.length; w++) {
    for (let l = 0; l < theta.length; l++) {
      if (data.wins[w][l] > 0) loss -= data.wins[w][l] * logSigmoid(beta * (theta[w] - theta[l]));
    }
  }
  return loss / data.total;
}

/** ∂/∂θ of the empirical loss: each win of w over l adds (β·n/N)·(σ(h_wl) − 1) to θ_w's entry and its negative to θ_l's. */
export function dpoEmpiricalGradient(theta: readonly number[], beta: number, data: PreferenceCounts): number[] {
  const K = theta.length;
  const grad = new Array<number>(K).fill(0);
  for (let w = 0; w < K; w++) {
    for (let l = 0; l < K; l++) {
      const n = data.wins[w][l];
      if (n === 0) continue;
      const g = (beta * n / data.total) * (sigmoid(beta * (theta[w] - theta[l])) - 1);
      grad[w] += g;
      grad[l] -= g;
    }
  }
  return grad;
}

/**
 * Gradient descent on the empirical DPO loss from θ = 0 (π = π_ref) for a fixed number of steps, with the population
 * step sizes. This is the regulariser: with finite data the loss has no minimiser (a pair never lost drives its
 * margin to +∞, an unseen pair is unconstrained), and stopping early from π_ref keeps θ finite.
 */
export function trainDpoEmpirical(beta: number, data: PreferenceCounts, lr: readonly number[], steps: number): number[] {
  const theta = new Array<number>(lr.length).fill(0);
  for (let t = 0; t < steps; t++) {
    const grad = dpoEmpiricalGradient(theta, beta, data);
    for (let a = 0; a < theta.length; a++) theta[a] -= lr[a] * grad[a];
  }
  return theta;
}
