// Losses that need no reference model: simpo, cpo, orpo and sft. Their inputs are the policy's summed log-probs
// and completion lengths; refChosen/refRejected are ignored. The NLL term is TRL's token mean over the batch's
// chosen tokens (see chosenNll). B pairs each.
import { add, minimum, scale, sub } from '../../engine/ops/index.js';
import type { Tensor } from '../../engine/tensor.js';
import { chosenNll, impliedRewards, perToken, zeroRewards } from './logratios.js';
import { constantLike, conservativeLogistic, log1mExp, logSigmoid } from './stable.js';
import type { LossFn } from './types.js';

/**
 * SimPO, Meng et al. 2024 (arXiv 2405.14734): −logσ(β·(avg_w − avg_l) − γ) with avg = Σ log π / |y|
 * (and cDPO's ε, as TRL's CPO trainer applies it). Rewards β·avg.
 */
export const simpoLoss: LossFn = (lp, o) => {
  const chosen = perToken(lp.chosen, lp.chosenLength, 'simpo', 'chosen');
  const rejected = perToken(lp.rejected, lp.rejectedLength, 'simpo', 'rejected');
  const z = scale(sub(chosen, rejected), o.beta);
  return { losses: conservativeLogistic(sub(z, constantLike(z, o.simpoGamma)), o.labelSmoothing), ...impliedRewards(o.beta, chosen, rejected) };
};

/**
 * CPO, Xu et al. 2024 (arXiv 2401.08417): −logσ(β·(log π(y_w) − log π(y_l))) + α·NLL(y_w), summed log-probs,
 * α = cpoAlpha (and cDPO's ε). Rewards β·log π.
 */
export const cpoLoss: LossFn = (lp, o) => {
  const preference = conservativeLogistic(scale(sub(lp.chosen, lp.rejected), o.beta), o.labelSmoothing);
  const losses = o.cpoAlpha === 0 ? preference : add(preference, scale(chosenNll(lp, 'cpo'), o.cpoAlpha));
  return { losses, ...impliedRewards(o.beta, lp.chosen, lp.rejected) };
};

/**
 * Ceiling on ORPO's average log-prob inside log(1 − e^avg): a completion of probability 1 (avg = 0) has infinite odds;
 * clamping at −1e-6 caps its log-odds near 13.8, where σ(·) is already 1 − 1e-6. Gradient 0 above the ceiling.
 */
export const ORPO_AVERAGE_LOGP_CEILING = -1e-6;

/**
 * ORPO, Hong et al. 2024 (arXiv 2403.07691) with λ = β (as TRL): NLL(y_w) − β·logσ(log odds_w − log odds_l),
 * odds from average log-probs: log odds = avg − log(1 − e^avg). Rewards β·avg.
 */
export const orpoLoss: LossFn = (lp, o) => {
  const chosen = perToken(lp.chosen, lp.chosenLength, 'orpo', 'chosen');
  const rejected = perToken(lp.rejected, lp.rejectedLength, 'orpo', 'rejected');
  const ceiling = constantLike(chosen, ORPO_AVERAGE_LOGP_CEILING);
  const logOdds = (avg: Tensor) => sub(avg, log1mExp(minimum(avg, ceiling)));
  const oddsRatio = logSigmoid(sub(logOdds(chosen), logOdds(rejected)));
  return { losses: sub(chosenNll(lp, 'orpo'), scale(oddsRatio, o.beta)), ...impliedRewards(o.beta, chosen, rejected) };
};

/** SFT: the NLL of the chosen completions (TRL's sft loss type, the generation term of MPO/RPO). Zero rewards. */
export const sftLoss: LossFn = (lp) => ({ losses: chosenNll(lp, 'sft'), ...zeroRewards(lp.chosen) });
