// Compositions of primitives for every fused op in ops/nn.ts (and GELU/SiLU). They are slower and use more memory,
// but each line is the textbook formula, so they serve as the test oracle for the fused kernels and their gradients.
import { add, addScalar, concat, div, exp, gather, log, matmul, max, mean, mul, neg, permute, reshape, rsqrt, scale, sigmoid, slice, square, sub, sum, tanh, where, expand } from './ops/index.js';
import { ShapeError } from './errors.js';
import { Tensor, tensor, scope } from './tensor.js';

export function softmaxComposed(x: Tensor): Tensor {
  const shifted = sub(x, max(x, -1, true));
  const e = exp(shifted);
  return div(e, sum(e, -1, true));
}

export function logSoftmaxComposed(x: Tensor): Tensor {
  const shifted = sub(x, max(x, -1, true));
  return sub(shifted, log(sum(exp(shifted), -1, true)));
}

export function layerNormComposed(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const centered = sub(x, mean(x, -1, true));
  const variance = mean(square(centered), -1, true);
  let y = mul(centered, rsqrt(addScalar(variance, eps)));
  if (weight) y = mul(y, weight);
  if (bias) y = add(y, bias);
  return y;
}

export function rmsNormComposed(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  const y = mul(x, rsqrt(addScalar(mean(square(x), -1, true), eps)));
  return weight ? mul(y, weight) : y;
}

export function geluComposed(x: Tensor): Tensor {
  const inner = scale(add(x, scale(mul(square(x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(scale(x, 0.5), addScalar(tanh(inner), 1));
}

export function siluComposed(x: Tensor): Tensor {
  return mul(x, sigmoid(x));
}

/** Attention from matmul, where and softmax, with KV heads repeated for grouped-query attention. */
export function attentionComposed(q: Tensor, k: Tensor, v: Tensor, mask: Uint8Array | null = null, scaleBy?: number): Tensor {
  const [b, tq, h, d] = q.shape;
  const [, tk, kvh] = k.shape;
  if (h % kvh !== 0) throw new ShapeError('attentionComposed', 'H must be a multiple of KVH');
  const repeatHeads = (t: Tensor) => reshape(expand(reshape(t, [b, tk, kvh, 1, d]), [b, tk, kvh, h / kvh, d]), [b, tk, h, d]);
  const qh = permute(q, [0, 2, 1, 3]); // (B, H, Tq, D)
  const kh = permute(repeatHeads(k), [0, 2, 1, 3]); // (B, H, Tk, D)
  const vh = permute(repeatHeads(v), [0, 2, 1, 3]);
  const scores = scale(matmul(qh, kh, { transB: true }), scaleBy ?? 1 / Math.sqrt(d)); // (B, H, Tq, Tk)
  const visible = new Array<number>(b * tq * tk);
  for (let bi = 0; bi < b; bi++) {
    for (let i = 0; i < tq; i++) {
      for (let j = 0; j < tk; j++) visible[(bi * tq + i) * tk + j] = mask ? mask[(bi * tq + i) * tk + j] : j <= tk - tq + i ? 1 : 0;
    }
  }
  const cond = tensor(visible, [b, 1, tq, tk], q.dtype);
  const negInf = tensor([-Infinity], [1], q.dtype);
  const probs = softmaxComposed(where(cond, scores, negInf)); // rows with no visible key would be NaN: avoid them
  return permute(matmul(probs, vh), [0, 2, 1, 3]);
}

/** Rotary embedding as HF writes it: x·cos + rotate_half(x)·sin with the tables repeated over both halves. */
export function ropeComposed(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const [b, t, h, d] = x.shape;
  const half = d / 2;
  const x1 = slice(x, [0, 0, 0, 0], [b, t, h, half]);
  const x2 = slice(x, [0, 0, 0, half], [b, t, h, d]);
  const rotated = concat([neg(x2), x1], 3);
  const table = (c: Tensor) => reshape(concat([c, c], -1), c.rank === 2 ? [1, t, 1, d] : [b, t, 1, d]);
  return add(mul(x, table(cos)), mul(rotated, table(sin)));
}

/** log-softmax, then a gather of each row's target (no ignored targets). */
export function logSoftmaxGatherComposed(logits: Tensor, targets: Tensor): Tensor {
  const v = logits.shape[logits.rank - 1];
  const n = targets.size;
  const flat = reshape(logSoftmaxComposed(logits), [n * v, 1]);
  const ids = scope(() => {
    const t = targets.data;
    return tensor(Array.from({ length: n }, (_, i) => i * v + t[i]), [n], 'int32');
  });
  return reshape(gather(flat, ids), targets.shape);
}
