// LD-DPO, Liu et al. 2024, "Length Desensitization in DPO" (arXiv 2409.06411): the log-prob side of the loss. Each
// sequence log-prob becomes Σ_{t ≤ l_p} log π(y_t) + α·Σ_{t > l_p} log π(y_t), l_p = min(|y_w|, |y_l|) of its pair,
// so the tokens beyond the shorter completion count α (TRL: ld_alpha). Pure helpers for dpo/logps; not a loss.
import { mul, reshape, scatterAdd } from '../../engine/ops/index.js';
import { tensor, zeros, type Tensor } from '../../engine/tensor.js';

/** (2B) l_p of every row of a concatenated [chosen; rejected] batch: min(|y_w|, |y_l|), for both rows of the pair. */
export function ldDpoSharedLengths(counts: ArrayLike<number>): Int32Array {
  if (counts.length % 2 !== 0) throw new Error(`ldDpoSharedLengths: expected 2B row counts ([chosen; rejected]), got ${counts.length}`);
  const b = counts.length / 2;
  const shared = new Int32Array(2 * b);
  for (let i = 0; i < b; i++) shared[i] = shared[b + i] = Math.min(counts[i], counts[b + i]);
  return shared;
}

/**
 * (R) desensitised sequence log-probs. tokenLogps (N) are the completion tokens' log-probs, each row's tokens in
 * position order (as dpo/logps's RowLogps gives them), tokenRow (N) their rows, sharedLength (R) l_p per row.
 * The k-th completion token of row r weighs 1 if k < l_p(r), else alpha. Differentiable in tokenLogps.
 */
export function ldDpoLogps(tokenLogps: Tensor, tokenRow: Int32Array, sharedLength: ArrayLike<number>, alpha: number): Tensor {
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`ldDpoLogps: ld_alpha must be in [0, 1] (1 is plain DPO), got ${alpha}`);
  const n = tokenLogps.size;
  if (tokenRow.length !== n) throw new Error(`ldDpoLogps: tokenRow has ${tokenRow.length} entries but tokenLogps has ${n}`);
  const rows = sharedLength.length;
  const seen = new Int32Array(rows);
  const weights = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const r = tokenRow[k];
    if (!(r >= 0 && r < rows)) throw new Error(`ldDpoLogps: tokenRow[${k}] = ${r} is outside the ${rows} rows of sharedLength`);
    weights[k] = seen[r] < sharedLength[r] ? 1 : alpha;
    seen[r]++;
  }
  const weighted = mul(reshape(tokenLogps, [n]), tensor(weights, [n], tokenLogps.dtype)); // (N)
  return reshape(scatterAdd(zeros([rows, 1], tokenLogps.dtype), tensor(tokenRow, [n], 'int32'), reshape(weighted, [n, 1])), [rows]);
}
