// WPO, Zhou et al. 2024, "Weighted Preference Optimization" (arXiv 2406.11827), TRL's use_weighting: each pair's
// loss is multiplied by w(y_w)·w(y_l), w(y) = exp((1/|y|)·Σ_t [log π(y_t) − log Σ_v π(v)²]) (the paper's
// sampling-aligned weight, computed by the policy without gradient), clamped at 1 as TRL does. Not a loss.
import { add, exp, log, logSoftmax, max, reshape, scale, sub, sum } from '../../engine/ops/index.js';
import { noGrad, scope, tensor, type Tensor } from '../../engine/tensor.js';

/** (rows) log Σ_v π(v)² at each scored position, from its (rows, V) logits: logsumexp(2·logSoftmax(logits)). No grad. */
export function wpoTokenLogNormalizer(logits: Tensor): Tensor {
  if (logits.rank !== 2) throw new Error(`wpoTokenLogNormalizer: expected (rows, V) logits, got rank ${logits.rank}`);
  const rows = logits.shape[0];
  return noGrad(() => scope(() => {
    const doubled = scale(logSoftmax(logits), 2); // (rows, V) log π(v)²
    const peak = max(doubled, -1, true); // (rows, 1)
    return add(reshape(peak, [rows]), log(sum(exp(sub(doubled, peak)), -1)));
  }));
}

/**
 * (B) WPO pair weights for a concatenated [chosen; rejected] batch of R = 2B rows: tokenLogps (N) and
 * tokenLogNormalizer (N) per completion token, tokenRow (N) its row. A row with no completion token contributes
 * w = 1. Returns a tensor of tokenLogps's dtype, detached: pass it to computeLoss as extras.pairWeights.
 */
export function wpoWeights(tokenLogps: Tensor, tokenLogNormalizer: Tensor, tokenRow: Int32Array, rows: number): Tensor {
  const n = tokenLogps.size;
  if (tokenLogNormalizer.size !== n || tokenRow.length !== n) {
    throw new Error(`wpoWeights: tokenLogps (${n}), tokenLogNormalizer (${tokenLogNormalizer.size}) and tokenRow (${tokenRow.length}) must have one entry per completion token`);
  }
  if (rows % 2 !== 0) throw new Error(`wpoWeights: expected R = 2B rows ([chosen; rejected]), got ${rows}`);
  const logps = tokenLogps.data;
  const norms = tokenLogNormalizer.data;
  const total = new Float64Array(rows);
  const count = new Float64Array(rows);
  for (let k = 0; k < n; k++) {
    const r = tokenRow[k];
    if (!(r >= 0 && r < rows)) throw new Error(`wpoWeights: tokenRow[${k}] = ${r} is outside the ${rows} rows`);
    total[r] += logps[k] - norms[k];
    count[r]++;
  }
  const meanOf = (r: number) => (count[r] === 0 ? 0 : total[r] / count[r]);
  const b = rows / 2;
  const weights = Array.from({ length: b }, (_, i) => Math.min(Math.exp(meanOf(i) + meanOf(b + i)), 1));
  return tensor(weights, [b], tokenLogps.dtype);
}
