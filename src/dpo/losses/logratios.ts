// Per-pair quantities the losses are built from: policy/reference log-ratios, length averages, the detached
// implicit rewards, and TRL's chosen-token NLL. Pure functions of PreferenceLogps; the losses live elsewhere.
import { div, scale, sub } from '../../engine/ops/index.js';
import { noGrad, zeros, type Tensor } from '../../engine/tensor.js';
import type { PreferenceLogps } from './types.js';

/** log π_θ(y|x) − log π_ref(y|x) for y_w and y_l (B each). Throws, naming the loss, when there is no reference. */
export function referenceLogratios(lp: PreferenceLogps, lossName: string): { chosen: Tensor; rejected: Tensor } {
  if (!lp.refChosen || !lp.refRejected) {
    throw new Error(
      `loss '${lossName}': needs reference log-probs but refChosen/refRejected are null; compute them (a frozen ` +
      `reference model or precomputed log-probs), pass zeros for TRL's reference_free=True, or pick a reference-free ` +
      `loss (simpo, cpo, orpo, sft)`,
    );
  }
  return { chosen: sub(lp.chosen, lp.refChosen), rejected: sub(lp.rejected, lp.refRejected) };
}

/** x / |y| per pair, after checking that no completion is empty (an average over zero tokens is undefined). */
export function perToken(x: Tensor, length: Tensor, lossName: string, which: 'chosen' | 'rejected'): Tensor {
  const lengths = length.data;
  for (let i = 0; i < lengths.length; i++) {
    if (!(lengths[i] >= 1)) {
      throw new Error(`loss '${lossName}': pair ${i} has a ${which} completion of length ${lengths[i]}; length-normalised losses need ≥ 1 completion token (drop empty completions in the data step)`);
    }
  }
  return div(x, length);
}

/** The implicit rewards β·(chosen), β·(rejected), detached. */
export function impliedRewards(beta: number, chosen: Tensor, rejected: Tensor): { chosenRewards: Tensor; rejectedRewards: Tensor } {
  return noGrad(() => ({ chosenRewards: scale(chosen, beta), rejectedRewards: scale(rejected, beta) }));
}

/** Zero rewards, for losses with no implicit reward (sft). */
export function zeroRewards(like: Tensor): { chosenRewards: Tensor; rejectedRewards: Tensor } {
  return { chosenRewards: zeros(like.shape, like.dtype), rejectedRewards: zeros(like.shape, like.dtype) };
}

/**
 * TRL's NLL term (sft, cpo, orpo): cross-entropy over all chosen completion tokens of the batch,
 * −Σ_b log π(y_w,b) / Σ_b |y_w,b|. Returned per pair as −log π(y_w,b)·B / Σ_b |y_w,b|, whose batch mean is exactly
 * that token mean (and which is −log π(y_w,b)/|y_w,b| when all lengths are equal).
 */
export function chosenNll(lp: PreferenceLogps, lossName: string): Tensor {
  const lengths = lp.chosenLength.data;
  let tokens = 0;
  for (let i = 0; i < lengths.length; i++) tokens += lengths[i];
  if (!(tokens >= 1)) throw new Error(`loss '${lossName}': the batch has no chosen completion tokens, so the NLL term is undefined`);
  return scale(lp.chosen, -lengths.length / tokens);
}
