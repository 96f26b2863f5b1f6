// Exact gradient accumulation. An optimizer step sees N pairs in micro-batches of B_m pairs; the update must be the
// gradient of the mean loss over all N, whatever the split. Each micro-batch therefore backpropagates Σ_b ℓ_b / N
// (not the micro-batch mean), and the token-mean NLL inside sft, cpo and orpo (TRL's −Σ log π(y_w) / Σ|y_w| over the
// batch) is re-normalised from the micro-batch's chosen tokens to the whole step's. Pure functions, tested by value.
// Losses that compare pairs within a batch (aot, aot_unpaired, bco_pair's batch mean) stay per micro-batch, as TRL.
import { add, mul, scale, sum } from '../engine/ops/index.js';
import type { Tensor } from '../engine/tensor.js';
import type { LossOptions, LossType } from './losses/index.js';

/** How much of each loss type is the chosen-token NLL term (losses/logratios chosenNll). */
const nllShare: { readonly [K in LossType]: (o: LossOptions) => number } = {
  sigmoid: () => 0, sigmoid_norm: () => 0, hinge: () => 0, ipo: () => 0, robust: () => 0, exo_pair: () => 0,
  discopop: () => 0, nca_pair: () => 0, bco_pair: () => 0, sppo_hard: () => 0, apo_zero: () => 0, apo_down: () => 0,
  aot: () => 0, aot_unpaired: () => 0, reverse_kl: () => 0, forward_kl: () => 0, js_divergence: () => 0,
  alpha_divergence: () => 0, simpo: () => 0,
  cpo: (o) => o.cpoAlpha, // preference + α·NLL
  orpo: () => 1, // NLL − β·log σ(log-odds ratio)
  sft: () => 1,
};

/** c = Σ_k weight_k · (NLL share of type_k): the coefficient of the token-mean NLL in the combined per-pair loss. */
export function nllCoefficient(types: readonly LossType[], weights: readonly number[] | null, o: LossOptions): number {
  return types.reduce((c, t, k) => c + (weights ? weights[k] : 1) * nllShare[t](o), 0);
}

export interface MicroBatchShare {
  /** Pairs and chosen completion tokens in this micro-batch. */
  pairs: number;
  chosenTokens: number;
  /** Pairs and chosen completion tokens in the whole optimizer step. */
  stepPairs: number;
  stepChosenTokens: number;
}

/**
 * (B) per-pair losses whose mean over the step's N pairs is the step's loss. computeLoss wrote the NLL of pair b as
 * −log π(y_w,b)·B_m/T_m (a token mean over the micro-batch); over the step it is −log π(y_w,b)·N/T. So add
 * c·(−log π(y_w,b))·(N/T − B_m/T_m), times the pair weight when WPO weighs the pairs. Identity when c = 0 or the
 * micro-batch is the whole step.
 */
export function stepPairLosses(losses: Tensor, chosenLogps: Tensor, pairWeights: Tensor | null, nllCoef: number, s: MicroBatchShare): Tensor {
  const factor = s.stepPairs / s.stepChosenTokens - s.pairs / s.chosenTokens;
  if (nllCoef === 0 || factor === 0) return losses;
  const correction = scale(chosenLogps, -nllCoef * factor);
  return add(losses, pairWeights ? mul(correction, pairWeights) : correction);
}

/** The scalar a micro-batch backpropagates: Σ_b ℓ_b / N, so that the step's gradients add up to ∇ mean loss. */
export function microBatchObjective(stepLosses: Tensor, stepPairs: number): Tensor {
  return scale(sum(stepLosses), 1 / stepPairs);
}
