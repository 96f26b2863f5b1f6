// The contract between log-prob computation (dpo/logps) and the loss registry: per-pair sequence log-probs in,
// per-pair losses and implicit rewards out. Every loss is a small pure function of these tensors and options; the
// only state (BCO's running reward mean) is passed in and returned explicitly, never kept here.
import type { Tensor } from '../../engine/tensor.js';

/**
 * Per-pair inputs, each a (B) tensor of one float dtype. Log-probs are always SUMS over completion tokens; a loss
 * that wants length-averaged log-probs (ipo, sigmoid_norm, simpo, orpo) divides by the lengths itself.
 */
export interface PreferenceLogps {
  /** Σ log π_θ(y_w) */
  chosen: Tensor;
  /** Σ log π_θ(y_l) */
  rejected: Tensor;
  /** Σ log π_ref(y_w); null when no reference is used (simpo, cpo, orpo, sft). TRL's reference_free: pass zeros. */
  refChosen: Tensor | null;
  /** Σ log π_ref(y_l) */
  refRejected: Tensor | null;
  /** |y_w|, the number of completion tokens of y_w (as floats). */
  chosenLength: Tensor;
  /** |y_l| */
  rejectedLength: Tensor;
}

/** Options of the loss family, with TRL's names in camelCase. Each loss reads the ones its paper uses. */
export interface LossOptions {
  /** β: the KL-penalty strength (temperature of the implicit reward); ORPO's λ; IPO's τ. */
  beta: number;
  /** ε of conservative DPO / robust DPO / EXO / AOT: the assumed probability that a label is flipped. */
  labelSmoothing: number;
  /** SimPO's target reward margin γ (TRL: simpo_gamma). */
  simpoGamma: number;
  /** CPO's weight of the NLL term (TRL: cpo_alpha). */
  cpoAlpha: number;
  /** α of the alpha-divergence f-DPO loss, f'(u) = (1 − u^−α)/α (TRL: f_alpha_divergence_coef). */
  fAlphaDivergenceCoef: number;
  /** DiscoPOP's temperature τ (TRL: discopop_tau). */
  discopopTau: number;
}

/** Running mean of BCO's rewards over the steps so far (TRL's RunningMoments, mean only). */
export interface RunningMean {
  mean: number;
  /** Number of batch means folded in; 0 before the first step. */
  count: number;
}

/** Inputs some losses need beyond the log-probs. */
export interface LossExtras {
  /** bco_pair: the running mean δ from earlier steps; omitted (or count 0) on the first step. */
  bcoRunningMean?: RunningMean;
  /** (B) per-pair weights, e.g. WPO's wpoWeights(); computeLoss multiplies the combined losses by them. */
  pairWeights?: Tensor;
}

/** Per-pair results, each a (B) tensor. Rewards are the loss's implicit rewards (detached). */
export interface LossOutput {
  losses: Tensor;
  chosenRewards: Tensor;
  rejectedRewards: Tensor;
  /** bco_pair only: the running mean after this batch. Keep it for the next step (or drop it, for evaluation). */
  bcoRunningMean?: RunningMean;
}

export type LossFn = (lp: PreferenceLogps, opts: LossOptions, extras: LossExtras) => LossOutput;
