// Losses of the DPO margin h = (log π_θ(y_w) − log π_ref(y_w)) − (log π_θ(y_l) − log π_ref(y_l)), B pairs each:
// sigmoid (DPO / cDPO), sigmoid_norm, hinge (SLiC), ipo, robust, exo_pair and discopop. Every one returns the
// rewards β·(log-ratio it uses), detached. Losses on each response's own log-ratio are in anchored.ts.
import { add, addScalar, affine, exp, mul, neg, relu, scale, sigmoid, square, sub } from '../../engine/ops/index.js';
import { impliedRewards, perToken, referenceLogratios } from './logratios.js';
import { conservativeLogistic, logSigmoid } from './stable.js';
import type { LossFn } from './types.js';

/** DPO, Rafailov et al. 2023 (arXiv 2305.18290) eq. 7, with cDPO's label smoothing ε: −(1−ε)·logσ(βh) − ε·logσ(−βh). */
export const sigmoidLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'sigmoid');
  const h = sub(lr.chosen, lr.rejected);
  return { losses: conservativeLogistic(scale(h, o.beta), o.labelSmoothing), ...impliedRewards(o.beta, lr.chosen, lr.rejected) };
};

/**
 * Length-normalised DPO (Tülu 3, Lambert et al. 2024, arXiv 2411.15124, eq. 6; TRL's sigmoid_norm):
 * −logσ(β·[(π_w − ref_w)/|y_w| − (π_l − ref_l)/|y_l|]). No label smoothing, as in the paper.
 */
export const sigmoidNormLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'sigmoid_norm');
  const chosen = perToken(lr.chosen, lp.chosenLength, 'sigmoid_norm', 'chosen');
  const rejected = perToken(lr.rejected, lp.rejectedLength, 'sigmoid_norm', 'rejected');
  return { losses: neg(logSigmoid(scale(sub(chosen, rejected), o.beta))), ...impliedRewards(o.beta, chosen, rejected) };
};

/** SLiC hinge, Zhao et al. 2023 (arXiv 2305.10425), as RSO/TRL apply it to the DPO margin: relu(1 − βh). */
export const hingeLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'hinge');
  return { losses: relu(affine(sub(lr.chosen, lr.rejected), -o.beta, 1)), ...impliedRewards(o.beta, lr.chosen, lr.rejected) };
};

/**
 * IPO, Azar et al. 2023 (arXiv 2310.12036) eq. 17 with τ = β: (h̄ − 1/(2β))², where h̄ is the margin of
 * LENGTH-AVERAGED log-ratios (as TRL averages log-probs over completion tokens for ipo).
 */
export const ipoLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'ipo');
  const chosen = perToken(lr.chosen, lp.chosenLength, 'ipo', 'chosen');
  const rejected = perToken(lr.rejected, lp.rejectedLength, 'ipo', 'rejected');
  return { losses: square(addScalar(sub(chosen, rejected), -1 / (2 * o.beta))), ...impliedRewards(o.beta, chosen, rejected) };
};

/**
 * Robust DPO, Chowdhury et al. 2024 (arXiv 2403.00409), unbiased under label-flip rate ε:
 * (−(1−ε)·logσ(βh) + ε·logσ(−βh)) / (1 − 2ε).
 */
export const robustLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'robust');
  const z = scale(sub(lr.chosen, lr.rejected), o.beta);
  const eps = o.labelSmoothing;
  const losses = scale(add(scale(logSigmoid(z), -(1 - eps)), scale(logSigmoid(neg(z)), eps)), 1 / (1 - 2 * eps));
  return { losses, ...impliedRewards(o.beta, lr.chosen, lr.rejected) };
};

/** EXO's ε when label_smoothing is 0 (TRL's default for exo_pair). */
export const EXO_DEFAULT_EPSILON = 1e-3;

/**
 * Pairwise EXO, Ji et al. 2024 (arXiv 2402.00856) eq. 16: the reverse KL from the model's pair preference
 * p = (σ(βh), σ(−βh)) to the smoothed label (1−ε, ε): σ(βh)·(logσ(βh) − log(1−ε)) + σ(−βh)·(logσ(−βh) − log ε).
 */
export const exoPairLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'exo_pair');
  const z = scale(sub(lr.chosen, lr.rejected), o.beta);
  const eps = o.labelSmoothing === 0 ? EXO_DEFAULT_EPSILON : o.labelSmoothing;
  const forChosen = mul(sigmoid(z), addScalar(logSigmoid(z), -Math.log(1 - eps)));
  const forRejected = mul(sigmoid(neg(z)), addScalar(logSigmoid(neg(z)), -Math.log(eps)));
  return { losses: add(forChosen, forRejected), ...impliedRewards(o.beta, lr.chosen, lr.rejected) };
};

/**
 * DiscoPOP / log-ratio modulated loss, Lu et al. 2024 (arXiv 2406.08414) eq. 5, ρ = βh:
 * (1 − σ(ρ/τ))·(−logσ(ρ)) + σ(ρ/τ)·e^−ρ. The second term is computed as exp(logσ(ρ/τ) − ρ), finite for ρ → −∞
 * whenever τ < 1.
 */
export const discopopLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'discopop');
  const rho = scale(sub(lr.chosen, lr.rejected), o.beta);
  const logistic = mul(sigmoid(scale(rho, -1 / o.discopopTau)), neg(logSigmoid(rho)));
  const exponential = exp(sub(logSigmoid(scale(rho, 1 / o.discopopTau)), rho));
  return { losses: add(logistic, exponential), ...impliedRewards(o.beta, lr.chosen, lr.rejected) };
};
