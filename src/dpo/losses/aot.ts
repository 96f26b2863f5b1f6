// AOT, Melnyk et al. 2024, "Distributional Preference Alignment of LLMs via Optimal Transport" (arXiv 2406.05882):
// first-order stochastic dominance through sorting across the batch. Loss i belongs to the i-th quantile, not to
// pair i, so the per-pair values depend on the whole batch (larger batches estimate the quantiles better).
import { gather, reshape, scale, sub } from '../../engine/ops/index.js';
import { tensor, type Tensor } from '../../engine/tensor.js';
import { impliedRewards, referenceLogratios } from './logratios.js';
import { conservativeLogistic } from './stable.js';
import type { LossFn } from './types.js';

/** x (B) sorted ascending, differentiably: a gather at the (stable) sorting permutation. */
export function sortAscending(x: Tensor): Tensor {
  const values = x.data;
  const order = Array.from({ length: x.size }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  return reshape(gather(reshape(x, [x.size, 1]), tensor(order, [x.size], 'int32')), [x.size]);
}

/**
 * Paired AOT: the quantiles of the policy's log-ratio π_w − π_l must dominate the reference's ref_w − ref_l.
 * δ = sort(π_w − π_l) − sort(ref_w − ref_l); loss −(1−ε)·logσ(βδ) − ε·logσ(−βδ).
 */
export const aotLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'aot');
  const policyMargins = sortAscending(sub(lp.chosen, lp.rejected));
  const referenceMargins = sortAscending(sub(lp.refChosen!, lp.refRejected!)); // non-null: referenceLogratios checked
  const delta = sub(policyMargins, referenceMargins);
  return { losses: conservativeLogistic(scale(delta, o.beta), o.labelSmoothing), ...impliedRewards(o.beta, lr.chosen, lr.rejected) };
};

/**
 * Unpaired AOT (TRL's aot_unpaired, formerly aot_pair): the quantiles of the chosen log-ratio π_w − ref_w must
 * dominate those of the rejected π_l − ref_l. δ = sort(π_w − ref_w) − sort(π_l − ref_l); same logistic loss.
 */
export const aotUnpairedLoss: LossFn = (lp, o) => {
  const lr = referenceLogratios(lp, 'aot_unpaired');
  const delta = sub(sortAscending(lr.chosen), sortAscending(lr.rejected));
  return { losses: conservativeLogistic(scale(delta, o.beta), o.labelSmoothing), ...impliedRewards(o.beta, lr.chosen, lr.rejected) };
};
