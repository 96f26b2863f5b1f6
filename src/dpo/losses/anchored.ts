// Losses that act on each response's own reward r = β·(log π_θ(y) − log π_ref(y)) rather than only on the margin:
// nca_pair, bco_pair (with its running-mean state), sppo_hard, apo_zero and apo_down. B pairs each.
import { add, addScalar, neg, scale, sigmoid, square, sub } from '../../engine/ops/index.js';
import { impliedRewards, referenceLogratios } from './logratios.js';
import { constantLike, logSigmoid } from './stable.js';
import type { LossFn, RunningMean } from './types.js';

/** Pairwise NCA, Chen et al. 2024 (arXiv 2402.05369): −logσ(r_w) − ½·logσ(−r_w) − ½·logσ(−r_l). */
export const ncaPairLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'nca_pair');
  const rewards = impliedRewards(o.beta, lr.chosen, lr.rejected);
  const rw = scale(lr.chosen, o.beta);
  const rl = scale(lr.rejected, o.beta);
  const losses = add(neg(logSigmoid(rw)), scale(add(logSigmoid(neg(rw)), logSigmoid(neg(rl))), -0.5));
  return { losses, ...rewards };
};

/** Folds one batch mean into the running mean (TRL's RunningMoments: each step's mean counts once). */
export function updateRunningMean(prev: RunningMean | undefined, batchMean: number): RunningMean {
  const count = (prev?.count ?? 0) + 1;
  const mean = prev && prev.count > 0 ? prev.mean + (batchMean - prev.mean) / count : batchMean;
  return { mean, count };
}

/**
 * Pairwise BCO, Jung et al. 2024 (arXiv 2404.04656): a binary classifier with logit r − δ,
 * −logσ(r_w − δ) − logσ(−(r_l − δ)). δ is the running mean, over steps, of each batch's mean reward
 * mean([r_w; r_l]), updated with this batch BEFORE use (as TRL does) and not differentiated. The state comes in
 * as extras.bcoRunningMean and the updated state goes out as bcoRunningMean.
 */
export const bcoPairLoss: LossFn = (lp, o, extras) => {
  const lr = referenceLogratios(lp, 'bco_pair');
  const rewards = impliedRewards(o.beta, lr.chosen, lr.rejected);
  let total = 0;
  for (const r of [rewards.chosenRewards.data, rewards.rejectedRewards.data]) for (let i = 0; i < r.length; i++) total += r[i];
  const state = updateRunningMean(extras.bcoRunningMean, total / (2 * lr.chosen.size));
  const delta = constantLike(lr.chosen, state.mean);
  const rw = scale(lr.chosen, o.beta);
  const rl = scale(lr.rejected, o.beta);
  const losses = sub(neg(logSigmoid(sub(rw, delta))), logSigmoid(neg(sub(rl, delta))));
  return { losses, ...rewards, bcoRunningMean: state };
};

/**
 * SPPO with hard labels, Wu et al. 2024 (arXiv 2405.00675) eq. 4.7 with P(y_w ≻ y_l) = 1: the square loss pulling
 * the log-ratios to ±1/(2β): (log-ratio_w − 1/(2β))² + (log-ratio_l + 1/(2β))².
 */
export const sppoHardLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'sppo_hard');
  const half = 1 / (2 * o.beta);
  const losses = add(square(addScalar(lr.chosen, -half)), square(addScalar(lr.rejected, half)));
  return { losses, ...impliedRewards(o.beta, lr.chosen, lr.rejected) };
};

/** APO-zero, D'Oosterlinck et al. 2024 (arXiv 2408.06266) eq. 7: (1 − σ(r_w)) + σ(r_l), written σ(−r_w) + σ(r_l). */
export const apoZeroLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'apo_zero');
  const losses = add(sigmoid(scale(lr.chosen, -o.beta)), sigmoid(scale(lr.rejected, o.beta)));
  return { losses, ...impliedRewards(o.beta, lr.chosen, lr.rejected) };
};

/** APO-down, D'Oosterlinck et al. 2024 (arXiv 2408.06266) eq. 8: σ(r_w) + (1 − σ(r_w − r_l)), the latter as σ(−βh). */
export const apoDownLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'apo_down');
  const losses = add(sigmoid(scale(lr.chosen, o.beta)), sigmoid(scale(sub(lr.chosen, lr.rejected), -o.beta)));
  return { losses, ...impliedRewards(o.beta, lr.chosen, lr.rejected) };
};
