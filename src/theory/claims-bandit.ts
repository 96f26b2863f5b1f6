// The bandit claims (a.i–a.iv), each measured on a seeded bandit and reported as a Claim: π* maximises J, exact-label
// DPO converges to π*, sampled-label DPO approaches it as N grows (the curve), and the implicit reward recovers r up to
// a per-prompt constant. Settings are plain data so tests and `dpo theory` run the very same checks.
import {
  ascendObjective, implicitRewardError, logPartition, makeBandit, objective, optimalPolicy, perturbations, tabularPolicy,
  type BanditPrompt,
} from './bandit.js';
import {
  dpoPopulationGradient, dpoPopulationLoss, pairSamplers, samplePreferences, stepSizes, trainDpoEmpirical,
  trainDpoPopulation, type PairSampler, type PairWeights,
} from './bandit-dpo.js';
import type { Rng } from '../engine/random.js';
import { childRng, claim, klDivergence, mean, totalVariation, type Claim } from './numeric.js';

export const banditSettings = {
  responseCounts: [8, 24, 64], // K per prompt, one prompt each
  betas: [0.1, 0.5, 2],
  perturbationDirections: 100, // random directions per prompt and β, each tried at every size below
  perturbationSizes: [1e-4, 1e-3, 1e-2, 0.1, 0.5, 1],
  ascentSteps: 20000, // gradient ascent on J from uniform logits, step 2/β
  dpoSteps: 300, // gradient descent on the population DPO loss (converged to round-off by ~200)
  sampledBeta: 0.5,
  sampledSampler: 'uniform' as PairSampler,
  sampledPairs: [10, 30, 100, 300, 1000, 3000, 10000], // N labelled pairs per prompt
  sampledSeeds: 3,
  sampledSteps: 300, // the regulariser: this many steps from π_ref, then stop
};
export type BanditSettings = typeof banditSettings;

/** One point of the finite-data curve (a.iii). */
export interface CurvePoint {
  pairsPerPrompt: number;
  meanTv: number; // mean over seeds of the mean over prompts of TV(π_N, π*)
  tvPerSeed: number[];
}

export interface BanditResults {
  claims: Claim[];
  curve: CurvePoint[];
  regulariser: string;
}

export function banditClaims(seed: number, s: BanditSettings = banditSettings): BanditResults {
  const prompts = makeBandit(childRng(seed, 1), s.responseCounts);
  const rng = childRng(seed, 2);
  /** max over every prompt and β of f. */
  const worst = (f: (p: BanditPrompt, beta: number, i: number) => number): number =>
    Math.max(...s.betas.flatMap((beta) => prompts.map((p, i) => f(p, beta, i))));
  const samplers = Object.keys(pairSamplers) as PairSampler[];

  // (i) π* maximises J(π) = E_π[r] − β·KL(π‖π_ref).
  const claims = [
    claim('a.i.1', 'J(π*) = β·log Z(x) (max abs error)',
      worst((p, beta) => Math.abs(objective(p, optimalPolicy(p, beta), beta) - beta * logPartition(p, beta))), '≤', 1e-12),
    ...perturbationClaims(rng, prompts, s),
    claim('a.i.4', `gradient ascent on J over softmax logits, ${s.ascentSteps} steps from uniform, reaches π* (max TV)`,
      worst((p, beta) => totalVariation(ascendObjective(p, beta, s.ascentSteps), optimalPolicy(p, beta))), '≤', 1e-3),
  ];

  // (ii) DPO with exact Bradley–Terry labels, pairs weighted by W, converges to π*.
  claims.push(claim('a.ii.1', 'every pair y ≠ y′ has weight > 0 under both pair distributions (min weight)',
    Math.min(...samplers.flatMap((k) => prompts.map((p) => Math.min(...pairSamplers[k].weights(p).flatMap((row, a) => row.filter((_, b) => b !== a)))))),
    '≥', 1e-12));
  claims.push(claim('a.ii.2', 'π* is a stationary point of the population DPO loss: max |∂L/∂θ| at θ = r/β',
    Math.max(...samplers.map((k) => worst((p, beta) =>
      Math.max(...dpoPopulationGradient(p, p.rewards.map((r) => r / beta), beta, pairSamplers[k].weights(p)).map(Math.abs))))), '≤', 1e-12));
  claims.push(claim('a.ii.3', 'and its minimiser: no random move of θ = r/β lowers it (max decrease)',
    Math.max(...samplers.map((k) => worst((p, beta) => dpoLossDecrease(rng, p, beta, pairSamplers[k].weights(p), s.perturbationSizes)))), '≤', 1e-12));
  const learned = samplers.map((k) => s.betas.map((beta) => prompts.map((p) => tabularPolicy(p, trainDpoPopulation(p, beta, pairSamplers[k].weights(p), s.dpoSteps)))));
  const learnedPolicy = (k: number, beta: number, i: number) => learned[k][s.betas.indexOf(beta)][i];
  samplers.forEach((k, j) => claims.push(claim(`a.ii.${4 + j}`, `DPO, exact BT labels, pairs ${pairSamplers[k].label}: ${s.dpoSteps} GD steps reach π* (max TV)`,
    worst((p, beta, i) => totalVariation(learnedPolicy(j, beta, i), optimalPolicy(p, beta))), '≤', 1e-3)));

  // (iii) N sampled preference pairs per prompt: the distance to π* shrinks as N grows.
  const curve = sampledCurve(seed, prompts, s);
  const [first, last] = [curve[0], curve[curve.length - 1]];
  claims.push(claim('a.iii.1', `finite data: TV at N = ${last.pairsPerPrompt} over TV at N = ${first.pairsPerPrompt} (curve below)`,
    last.meanTv / first.meanTv, '≤', 0.5));

  // (iv) The implicit reward β·log π/π_ref recovers r up to a per-prompt constant c(x).
  claims.push(claim('a.iv.1', 'implicit reward at π*: max_y |β·log π*/π_ref − r − c(x)|',
    worst((p, beta) => implicitRewardError(p, optimalPolicy(p, beta), beta)), '≤', 1e-12));
  claims.push(claim('a.iv.2', 'the same for the π DPO learned in (ii), both pair distributions',
    Math.max(...samplers.map((_, j) => worst((p, beta, i) => implicitRewardError(p, learnedPolicy(j, beta, i), beta)))), '≤', 1e-6));

  const regulariser = `early stopping, ${s.sampledSteps} gradient steps from π_ref (θ = 0); β = ${s.sampledBeta}; pairs ${pairSamplers[s.sampledSampler].label}`;
  return { claims, curve, regulariser };
}

/** a.i.2 and a.i.3: random policies around π* never beat it, and each falls short by exactly β·KL(π‖π*). */
function perturbationClaims(rng: Rng, prompts: readonly BanditPrompt[], s: BanditSettings): Claim[] {
  let gain = -Infinity;
  let gapError = 0;
  let count = 0;
  for (const beta of s.betas) {
    for (const p of prompts) {
      const best = optimalPolicy(p, beta);
      const jBest = objective(p, best, beta);
      for (const other of perturbations(rng, best, s.perturbationDirections, s.perturbationSizes)) {
        const j = objective(p, other, beta);
        gain = Math.max(gain, j - jBest);
        gapError = Math.max(gapError, Math.abs(jBest - j - beta * klDivergence(other, best)));
        count++;
      }
    }
  }
  return [
    claim('a.i.2', `no perturbation beats π*: max J(π) − J(π*) over ${count} random π (simplex and logit moves)`, gain, '≤', 1e-12),
    claim('a.i.3', 'the gap is a KL: J(π*) − J(π) = β·KL(π‖π*) for those π (max abs error)', gapError, '≤', 1e-12),
  ];
}

/** max over random moves δ (10 directions × each size) of L(θ*) − L(θ* + δ), θ* = r/β. */
function dpoLossDecrease(rng: Rng, p: BanditPrompt, beta: number, W: PairWeights, sizes: readonly number[]): number {
  const thetaStar = p.rewards.map((r) => r / beta);
  const best = dpoPopulationLoss(p, thetaStar, beta, W);
  let decrease = -Infinity;
  for (let d = 0; d < 10; d++) {
    const g = thetaStar.map(() => rng.normal());
    for (const size of sizes) decrease = Math.max(decrease, best - dpoPopulationLoss(p, thetaStar.map((t, y) => t + size * g[y]), beta, W));
  }
  return decrease;
}

/** TV(π_N, π*) for each N, with the minimal regulariser (a fixed number of GD steps from π_ref). */
export function sampledCurve(seed: number, prompts: readonly BanditPrompt[], s: BanditSettings): CurvePoint[] {
  const beta = s.sampledBeta;
  return s.sampledPairs.map((N) => {
    const tvPerSeed = Array.from({ length: s.sampledSeeds }, (_, k) => mean(prompts.map((p, i) => {
      const W = pairSamplers[s.sampledSampler].weights(p);
      // The same stream for every N, so the N pairs are the first N of one long draw: the data nest as N grows.
      const data = samplePreferences(childRng(seed, 1000 + 100 * k + i), p, W, N);
      const theta = trainDpoEmpirical(beta, data, stepSizes(W, beta), s.sampledSteps);
      return totalVariation(tabularPolicy(p, theta), optimalPolicy(p, beta));
    })));
    return { pairsPerPrompt: N, meanTv: mean(tvPerSeed), tvPerSeed };
  });
}
