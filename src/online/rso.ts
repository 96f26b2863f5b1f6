// RSO's statistical rejection sampler and its pair construction (Liu et al. 2023, "Statistical Rejection Sampling
// Improves Preference Optimization", arXiv 2309.06657, §3.2 and Appendix A.1 Algorithm 1). From N candidates drawn
// from π_sft for one prompt, it keeps those that approximate draws from π* ∝ π_sft·exp(r/β), then pairs and ranks
// them into (chosen, rejected). It is not a generator or a reward model: candidates arrive with their rewards.
import type { Rng } from '../engine/random.js';

/** One candidate response drawn from π_sft, with its reward r(x, y). */
export interface RsoCandidate {
  reward: number;
}

/**
 * Indices of the accepted candidates, in acceptance order (no duplicates, at most `numSamples`).
 *
 * Algorithm 1 of the paper, pass by pass: at the start of each pass r_max is the maximum reward among the candidates
 * NOT YET ACCEPTED (`max_reward = max(candidates.values())` is recomputed inside the `while` loop after accepted ones
 * are popped; Theorem 1 says the same: "r_max ... among the response candidates not yet accepted"). It is the sample
 * estimate of the envelope M over y ∉ D_x (eqs. 13–14), so a candidate is accepted with probability
 * exp((r − r_max)/β) ≤ 1. In the first pass this is the max over the original pool, so with numSamples = 1 the two
 * readings coincide. Within a pass r_max is fixed; each pass visits the remaining candidates in a fresh random order
 * (the paper walks them in list order, which is the same in law for i.i.d. candidates and also holds if the list
 * arrives sorted). The remaining maximum is always accepted (u < 1), so every pass accepts at least one candidate and
 * the loop stops after at most N passes: when numSamples are accepted or the pool is exhausted.
 *
 * Limits: β = ∞ accepts every pick (a uniform subset without replacement); β = 0 accepts only the maximum of the
 * remaining pool each pass (top-k-over-N, the "rejection sampling" of Llama 2 / AnthropicHH).
 */
export function rsoSample(candidates: readonly RsoCandidate[], numSamples: number, beta: number, rng: Rng): number[] {
  if (!Number.isInteger(numSamples) || numSamples < 0) {
    throw new Error(`rsoSample: numSamples must be a non-negative integer, got ${numSamples}`);
  }
  if (!(beta >= 0)) throw new Error(`rsoSample: beta must be ≥ 0 (0 and Infinity are the limits), got ${beta}`);
  candidates.forEach((c, i) => {
    if (!Number.isFinite(c.reward)) {
      throw new Error(`rsoSample: candidate ${i} has reward ${c.reward}; rewards must be finite numbers`);
    }
  });

  const accepted: number[] = [];
  let remaining = candidates.map((_, i) => i);
  while (accepted.length < numSamples && remaining.length > 0) {
    let maxReward = -Infinity;
    for (const i of remaining) maxReward = Math.max(maxReward, candidates[i].reward);
    shuffleInPlace(remaining, rng);
    const acceptedThisPass = new Set<number>();
    for (const i of remaining) {
      if (accepted.length === numSamples) break;
      const gap = maxReward - candidates[i].reward; // ≥ 0
      const acceptProb = gap === 0 ? 1 : Math.exp(-gap / beta); // gap/β is 0/0 at β = 0 only for the max: handled
      if (rng.uniform() < acceptProb) {
        accepted.push(i);
        acceptedThisPass.add(i);
      }
    }
    remaining = remaining.filter((i) => !acceptedThisPass.has(i));
  }
  return accepted;
}

/** Fisher–Yates with the seeded stream. */
function shuffleInPlace(xs: number[], rng: Rng): void {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = xs[i];
    xs[i] = xs[j];
    xs[j] = t;
  }
}

/** An accepted sample: its index in the candidate pool and its reward (or judge score). */
export interface RsoSample {
  index: number;
  reward: number;
}

export interface RsoPair {
  chosenIndex: number;
  rejectedIndex: number;
}

/**
 * How accepted samples are matched before ranking. The paper (§5) sub-samples 8 of 64 candidates and ranks pairs with
 * the reward-ranking model; SLiC's alternative is tournament-style ranking.
 * - 'first-round': consecutive pairs (s0, s1), (s2, s3), …; an odd last sample is left out. 8 samples → 4 pairs.
 * - 'tournament': the first round as above, then the winners of each round are paired consecutively again until one
 *   is left; an odd entrant gets a bye into the next round. 8 samples → 4 + 2 + 1 = 7 pairs.
 */
export type RsoPairMode = 'first-round' | 'tournament';

/** Matches of one round: consecutive pairs ranked by reward; ties give no pair, and the first of the two goes on. */
function playRound(entrants: readonly RsoSample[], pairs: RsoPair[]): RsoSample[] {
  const winners: RsoSample[] = [];
  for (let k = 0; k + 1 < entrants.length; k += 2) {
    const a = entrants[k];
    const b = entrants[k + 1];
    if (a.reward > b.reward) pairs.push({ chosenIndex: a.index, rejectedIndex: b.index });
    else if (b.reward > a.reward) pairs.push({ chosenIndex: b.index, rejectedIndex: a.index });
    winners.push(b.reward > a.reward ? b : a); // a tie carries no preference label: dropped, first one advances
  }
  if (entrants.length % 2 === 1) winners.push(entrants[entrants.length - 1]); // bye
  return winners;
}

const pairings: Record<RsoPairMode, (samples: readonly RsoSample[]) => RsoPair[]> = {
  'first-round': (samples) => {
    const pairs: RsoPair[] = [];
    playRound(samples, pairs);
    return pairs;
  },
  tournament: (samples) => {
    const pairs: RsoPair[] = [];
    let entrants: readonly RsoSample[] = samples;
    while (entrants.length > 1) entrants = playRound(entrants, pairs);
    return pairs;
  },
};

/** Preference pairs from accepted samples (e.g. `rsoSample`'s indices with their rewards), ranked by reward. */
export function rsoPairs(samples: readonly RsoSample[], mode: RsoPairMode = 'first-round'): RsoPair[] {
  const pairing = pairings[mode];
  if (pairing === undefined) throw new Error(`rsoPairs: unknown mode '${mode}'; expected one of ${Object.keys(pairings).join(', ')}`);
  samples.forEach((s, k) => {
    if (Number.isNaN(s.reward)) throw new Error(`rsoPairs: sample ${k} (candidate ${s.index}) has reward NaN`);
  });
  return pairing(samples);
}
