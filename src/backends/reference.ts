// The reference backend: every kernel as obvious loops in plain TypeScript, for float32 and float64 alike.
// It is the living definition of each kernel; the native backend is tested against it. It is not fast and does
// not try to be. Accumulation inside a row uses JS numbers (float64), then rounds once on store.

import type { AnyArray, Backend, BinaryOp, FloatArray, UnaryOp } from '../engine/backend.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

function sigmoid(x: number): number {
  // Stable for large |x|: never exponentiates a large positive number.
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

function unaryForward(op: UnaryOp, x: number): number {
  switch (op) {
    case 'neg': return -x;
    case 'exp': return Math.exp(x);
    case 'log': return Math.log(x);
    case 'tanh': return Math.tanh(x);
    case 'sqrt': return Math.sqrt(x);
    case 'rsqrt': return 1 / Math.sqrt(x);
    case 'sigmoid': return sigmoid(x);
    case 'silu': return x * sigmoid(x);
    case 'gelu': return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case 'relu': return x > 0 ? x : 0;
    case 'abs': return Math.abs(x);
    case 'square': return x * x;
    default: return op satisfies never;
  }
}

// d op(x) / dx, given x and y = op(x).
function unaryDerivative(op: UnaryOp, x: number, y: number): number {
  switch (op) {
    case 'neg': return -1;
    case 'exp': return y;
    case 'log': return 1 / x;
    case 'tanh': return 1 - y * y;
    case 'sqrt': return 0.5 / y;
    case 'rsqrt': return -0.5 * y * y * y;
    case 'sigmoid': return y * (1 - y);
    case 'silu': {
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    }
    case 'gelu': {
      const inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
      const t = Math.tanh(inner);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
    }
    case 'relu': return x > 0 ? 1 : 0;
    case 'abs': return x > 0 ? 1 : x < 0 ? -1 : 0;
    case 'square': return 2 * x;
    default: return op satisfies never;
  }
}

function binaryForward(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case 'add': return a + b;
    case 'sub': return a - b;
    case 'mul': return a * b;
    case 'div': return a / b;
    case 'maximum': return a >= b || Number.isNaN(a) ? a : b;
    case 'minimum': return a <= b || Number.isNaN(a) ? a : b;
    case 'eq': return a === b ? 1 : 0;
    case 'gt': return a > b ? 1 : 0;
    default: return op satisfies never;
  }
}

/** Calls visit(outIndex, offsets[0..]) for each element of a contiguous `shape`, tracking strided offsets. */
function forEachStrided(shape: readonly number[], strides: readonly (readonly number[])[], bases: readonly number[],
  visit: (i: number, offsets: number[]) => void): void {
  const rank = shape.length;
  let size = 1;
  for (const s of shape) size *= s;
  if (size === 0) return;
  const idx = new Array<number>(rank).fill(0);
  const offsets = bases.slice();
  for (let i = 0; i < size; i++) {
    visit(i, offsets);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      for (let s = 0; s < strides.length; s++) offsets[s] += strides[s][d];
      if (idx[d] < shape[d]) break;
      for (let s = 0; s < strides.length; s++) offsets[s] -= strides[s][d] * shape[d];
      idx[d] = 0;
    }
  }
}

export const referenceBackend: Backend = {
  name: 'reference',
  threads: 1,

  fill(out, value) {
    out.fill(value);
  },

  stridedCopy(out, x, shape, xStrides, xOffset) {
    forEachStrided(shape, [xStrides], [xOffset], (i, [xo]) => { out[i] = x[xo]; });
  },

  stridedAccumulate(out, x, shape, outStrides, outOffset) {
    forEachStrided(shape, [outStrides], [outOffset], (i, [oo]) => { out[oo] += x[i]; });
  },

  gatherRows(out, table, ids, n, c) {
    for (let i = 0; i < n; i++) {
      const src = ids[i] * c;
      for (let j = 0; j < c; j++) out[i * c + j] = table[src + j];
    }
  },

  scatterAddRows(table, src, ids, n, c) {
    for (let i = 0; i < n; i++) {
      const dst = ids[i] * c;
      for (let j = 0; j < c; j++) table[dst + j] += src[i * c + j];
    }
  },

  unary(op, out, x) {
    for (let i = 0; i < x.length; i++) out[i] = unaryForward(op, x[i]);
  },

  unaryBackward(op, dx, dy, x, y) {
    for (let i = 0; i < dy.length; i++) dx[i] = dy[i] * unaryDerivative(op, x[i], y[i]);
  },

  binary(op, out, a, b, shape, aStrides, bStrides) {
    forEachStrided(shape, [aStrides, bStrides], [0, 0], (i, [ao, bo]) => { out[i] = binaryForward(op, a[ao], b[bo]); });
  },

  where(out, cond, a, b, shape, condStrides, aStrides, bStrides) {
    forEachStrided(shape, [condStrides, aStrides, bStrides], [0, 0, 0], (i, [co, ao, bo]) => {
      out[i] = cond[co] !== 0 ? a[ao] : b[bo];
    });
  },

  affine(out: AnyArray, x: AnyArray, scale: number, shift: number) {
    const round = out instanceof Int32Array;
    for (let i = 0; i < x.length; i++) {
      const v = x[i] * scale + shift;
      out[i] = round ? Math.round(v) : v;
    }
  },

  reduceSum(out, x, outer, n, inner) {
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += x[(o * n + j) * inner + i];
        out[o * inner + i] = acc;
      }
    }
  },

  reduceMax(out, argmax, x, outer, n, inner) {
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let best = -Infinity;
        let at = 0;
        for (let j = 0; j < n; j++) {
          const v = x[(o * n + j) * inner + i];
          if (v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
            best = v;
            at = j;
          }
        }
        out[o * inner + i] = best;
        argmax[o * inner + i] = at;
      }
    }
  },

  matmul(c, a, b, batch, m, n, k, transA, transB, aBatchStride, bBatchStride, cBatchStride, accumulate) {
    for (let bi = 0; bi < batch; bi++) {
      const ao = bi * aBatchStride;
      const bo = bi * bBatchStride;
      const co = bi * cBatchStride;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let p = 0; p < k; p++) {
            const av = transA ? a[ao + p * m + i] : a[ao + i * k + p];
            const bv = transB ? b[bo + j * k + p] : b[bo + p * n + j];
            acc += av * bv;
          }
          c[co + i * n + j] = accumulate ? c[co + i * n + j] + acc : acc;
        }
      }
    }
  },

  linear(out, x, w, bias, n, cin, cout, wIsInOut) {
    for (let i = 0; i < n; i++) {
      for (let o = 0; o < cout; o++) {
        let acc = bias ? bias[o] : 0;
        for (let p = 0; p < cin; p++) acc += x[i * cin + p] * (wIsInOut ? w[p * cout + o] : w[o * cin + p]);
        out[i * cout + o] = acc;
      }
    }
  },

  softmax(out, x, rows, cols) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let max = -Infinity;
      for (let j = 0; j < cols; j++) max = Math.max(max, x[o + j]);
      let sum = 0;
      for (let j = 0; j < cols; j++) sum += Math.exp(x[o + j] - max);
      for (let j = 0; j < cols; j++) out[o + j] = Math.exp(x[o + j] - max) / sum;
    }
  },

  softmaxBackward(dx, dy, y, rows, cols) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let dot = 0;
      for (let j = 0; j < cols; j++) dot += dy[o + j] * y[o + j];
      for (let j = 0; j < cols; j++) dx[o + j] = y[o + j] * (dy[o + j] - dot);
    }
  },

  logSoftmax(out, x, rows, cols) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      const lse = logSumExp(x, o, cols);
      for (let j = 0; j < cols; j++) out[o + j] = x[o + j] - lse;
    }
  },

  logSoftmaxBackward(dx, dy, y, rows, cols) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let sum = 0;
      for (let j = 0; j < cols; j++) sum += dy[o + j];
      for (let j = 0; j < cols; j++) dx[o + j] = dy[o + j] - Math.exp(y[o + j]) * sum;
    }
  },

  layerNorm(out, mean, rstd, x, weight, bias, rows, cols, eps) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let mu = 0;
      for (let j = 0; j < cols; j++) mu += x[o + j];
      mu /= cols;
      let variance = 0;
      for (let j = 0; j < cols; j++) variance += (x[o + j] - mu) ** 2;
      variance /= cols; // biased variance, as torch.nn.LayerNorm
      const rs = 1 / Math.sqrt(variance + eps);
      for (let j = 0; j < cols; j++) {
        out[o + j] = (x[o + j] - mu) * rs * (weight ? weight[j] : 1) + (bias ? bias[j] : 0);
      }
      mean[r] = mu;
      rstd[r] = rs;
    }
  },

  layerNormBackward(dx, dweight, dbias, dy, x, weight, mean, rstd, rows, cols) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      // xhat = (x − μ)·rstd; dxhat = dy·w; dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat))
      let meanDxhat = 0;
      let meanDxhatXhat = 0;
      for (let j = 0; j < cols; j++) {
        const xhat = (x[o + j] - mean[r]) * rstd[r];
        const dxhat = dy[o + j] * (weight ? weight[j] : 1);
        meanDxhat += dxhat;
        meanDxhatXhat += dxhat * xhat;
        if (dweight) dweight[j] += dy[o + j] * xhat;
        if (dbias) dbias[j] += dy[o + j];
      }
      meanDxhat /= cols;
      meanDxhatXhat /= cols;
      for (let j = 0; j < cols; j++) {
        const xhat = (x[o + j] - mean[r]) * rstd[r];
        const dxhat = dy[o + j] * (weight ? weight[j] : 1);
        dx[o + j] = rstd[r] * (dxhat - meanDxhat - xhat * meanDxhatXhat);
      }
    }
  },

  rmsNorm(out, rstd, x, weight, rows, cols, eps) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let ms = 0;
      for (let j = 0; j < cols; j++) ms += x[o + j] * x[o + j];
      const rs = 1 / Math.sqrt(ms / cols + eps);
      for (let j = 0; j < cols; j++) out[o + j] = x[o + j] * rs * (weight ? weight[j] : 1);
      rstd[r] = rs;
    }
  },

  rmsNormBackward(dx, dweight, dy, x, weight, rstd, rows, cols) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      // y = x·rs·w with rs = (mean(x²)+eps)^(-1/2): dx = rs·(dy·w) − x·rs³·mean(dy·w·x)
      let meanDxhatX = 0;
      for (let j = 0; j < cols; j++) {
        const dxhat = dy[o + j] * (weight ? weight[j] : 1);
        meanDxhatX += dxhat * x[o + j];
        if (dweight) dweight[j] += dy[o + j] * x[o + j] * rstd[r];
      }
      meanDxhatX /= cols;
      const rs = rstd[r];
      for (let j = 0; j < cols; j++) {
        const dxhat = dy[o + j] * (weight ? weight[j] : 1);
        dx[o + j] = rs * dxhat - x[o + j] * rs * rs * rs * meanDxhatX;
      }
    }
  },

  logSoftmaxGather(out, lse, logits, targets, n, v) {
    for (let i = 0; i < n; i++) {
      if (targets[i] < 0) {
        out[i] = 0;
        lse[i] = 0;
        continue;
      }
      const l = logSumExp(logits, i * v, v);
      lse[i] = l;
      out[i] = logits[i * v + targets[i]] - l;
    }
  },

  logSoftmaxGatherBackward(dlogits, dout, logits, lse, targets, n, v) {
    for (let i = 0; i < n; i++) {
      const o = i * v;
      if (targets[i] < 0) {
        for (let j = 0; j < v; j++) dlogits[o + j] = 0;
        continue;
      }
      for (let j = 0; j < v; j++) dlogits[o + j] = -dout[i] * Math.exp(logits[o + j] - lse[i]);
      dlogits[o + targets[i]] += dout[i];
    }
  },

  attention(out, probs, q, k, v, mask, b, tq, tk, h, kvh, d, scale) {
    const group = h / kvh;
    for (let bi = 0; bi < b; bi++) {
      for (let hi = 0; hi < h; hi++) {
        const kh = Math.floor(hi / group);
        for (let i = 0; i < tq; i++) {
          const p = ((bi * h + hi) * tq + i) * tk; // probs row
          const qo = ((bi * tq + i) * h + hi) * d;
          let max = -Infinity;
          for (let j = 0; j < tk; j++) {
            const visible = mask ? mask[(bi * tq + i) * tk + j] !== 0 : j <= tk - tq + i;
            if (!visible) {
              probs[p + j] = -Infinity;
              continue;
            }
            const ko = ((bi * tk + j) * kvh + kh) * d;
            let s = 0;
            for (let c = 0; c < d; c++) s += q[qo + c] * k[ko + c];
            probs[p + j] = s * scale;
            max = Math.max(max, probs[p + j]);
          }
          let sum = 0;
          for (let j = 0; j < tk; j++) {
            const e = max === -Infinity ? 0 : Math.exp(probs[p + j] - max);
            probs[p + j] = e;
            sum += e;
          }
          for (let j = 0; j < tk; j++) probs[p + j] = sum > 0 ? probs[p + j] / sum : 0;
          for (let c = 0; c < d; c++) {
            let acc = 0;
            for (let j = 0; j < tk; j++) acc += probs[p + j] * v[((bi * tk + j) * kvh + kh) * d + c];
            out[qo + c] = acc;
          }
        }
      }
    }
  },

  attentionBackward(dq, dk, dv, dout, q, k, v, probs, b, tq, tk, h, kvh, d, scale) {
    dq.fill(0);
    dk.fill(0);
    dv.fill(0);
    const group = h / kvh;
    for (let bi = 0; bi < b; bi++) {
      for (let hi = 0; hi < h; hi++) {
        const kh = Math.floor(hi / group);
        for (let i = 0; i < tq; i++) {
          const p = ((bi * h + hi) * tq + i) * tk;
          const qo = ((bi * tq + i) * h + hi) * d;
          // dP_ij = dout_i · v_j ; dS_ij = P_ij (dP_ij − Σ_j P_ij dP_ij)
          const dp = new Float64Array(tk);
          let dot = 0;
          for (let j = 0; j < tk; j++) {
            const vo = ((bi * tk + j) * kvh + kh) * d;
            let s = 0;
            for (let c = 0; c < d; c++) s += dout[qo + c] * v[vo + c];
            dp[j] = s;
            dot += s * probs[p + j];
            for (let c = 0; c < d; c++) dv[vo + c] += probs[p + j] * dout[qo + c];
          }
          for (let j = 0; j < tk; j++) {
            const ds = probs[p + j] * (dp[j] - dot) * scale;
            if (ds === 0) continue;
            const ko = ((bi * tk + j) * kvh + kh) * d;
            for (let c = 0; c < d; c++) {
              dq[qo + c] += ds * k[ko + c];
              dk[ko + c] += ds * q[qo + c];
            }
          }
        }
      }
    }
  },

  rope(out, x, cos, sin, b, t, h, d, inverse) {
    const half = d / 2;
    const sign = inverse ? -1 : 1;
    for (let bi = 0; bi < b; bi++) {
      for (let ti = 0; ti < t; ti++) {
        const cs = (bi * t + ti) * half;
        for (let hi = 0; hi < h; hi++) {
          const o = ((bi * t + ti) * h + hi) * d;
          for (let i = 0; i < half; i++) {
            const c = cos[cs + i];
            const s = sign * sin[cs + i];
            const x1 = x[o + i];
            const x2 = x[o + i + half];
            out[o + i] = x1 * c - x2 * s;
            out[o + i + half] = x2 * c + x1 * s;
          }
        }
      }
    }
  },

  adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step) {
    const bc1 = 1 - beta1 ** step;
    const bc2 = 1 - beta2 ** step;
    for (let i = 0; i < param.length; i++) {
      param[i] -= lr * weightDecay * param[i];
      m[i] = beta1 * m[i] + (1 - beta1) * grad[i];
      v[i] = beta2 * v[i] + (1 - beta2) * grad[i] * grad[i];
      param[i] -= (lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + eps);
    }
  },
};

/** log Σ_j exp(x[o + j]) for j < n, stable (subtracts the max). −Infinity for n = 0. */
function logSumExp(x: FloatArray, o: number, n: number): number {
  let max = -Infinity;
  for (let j = 0; j < n; j++) max = Math.max(max, x[o + j]);
  if (max === -Infinity || !Number.isFinite(max)) return max;
  let sum = 0;
  for (let j = 0; j < n; j++) sum += Math.exp(x[o + j] - max);
  return max + Math.log(sum);
}
