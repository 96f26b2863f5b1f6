// Fused neural-network primitives, each one backend kernel forward and one backward: softmax and log-softmax over
// the last axis, LayerNorm, RMSNorm, causal/masked attention with grouped-query heads, rotary embeddings (HF's
// rotate-half layout) and the log-prob gather at target ids. composites.ts keeps each one's composition from
// simpler primitives; the tests check the two against each other.
import { ShapeError, fmtShape } from '../errors.js';
import type { GradRules } from '../graph.js';
import { empty, getBackend, Tensor } from '../tensor.js';
import { assertFloat, assertInt, assertSameDType, record } from './util.js';

function rowsCols(x: Tensor): [number, number] {
  const cols = x.rank === 0 ? 1 : x.shape[x.rank - 1];
  return [cols === 0 ? 0 : x.size / cols, cols];
}

/** softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  const xd = assertFloat('softmax', 'x', x);
  const [rows, cols] = rowsCols(x);
  const y = empty(x.shape, x.dtype);
  getBackend().softmax(y.floatData(), xd, rows, cols);
  return record(y, 'softmax', [x], { y });
}

/** log-softmax over the last axis (x − logΣexp x, stable). */
export function logSoftmax(x: Tensor): Tensor {
  const xd = assertFloat('logSoftmax', 'x', x);
  const [rows, cols] = rowsCols(x);
  const y = empty(x.shape, x.dtype);
  getBackend().logSoftmax(y.floatData(), xd, rows, cols);
  return record(y, 'logSoftmax', [x], { y });
}

function checkVector(op: string, name: string, t: Tensor | null, cols: number): void {
  if (t && (t.rank !== 1 || t.shape[0] !== cols)) throw new ShapeError(op, `${name} must have shape [${cols}] to match the last axis, got ${fmtShape(t.shape)}`);
}

/** LayerNorm over the last axis with optional affine weight and bias (torch.nn.LayerNorm). */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const xd = assertFloat('layerNorm', 'x', x);
  const [rows, cols] = rowsCols(x);
  checkVector('layerNorm', 'weight', weight, cols);
  checkVector('layerNorm', 'bias', bias, cols);
  const all: Record<string, Tensor> = { x };
  if (weight) all.weight = weight;
  if (bias) all.bias = bias;
  assertSameDType('layerNorm', all);
  const y = empty(x.shape, x.dtype);
  const mean = empty([rows], x.dtype);
  const rstd = empty([rows], x.dtype);
  getBackend().layerNorm(y.floatData(), mean.floatData(), rstd.floatData(), xd, weight?.floatData() ?? null, bias?.floatData() ?? null, rows, cols, eps);
  return record(y, 'layerNorm', [x, weight, bias], { mean, rstd });
}

/** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · weight (Llama, Qwen2). */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  const xd = assertFloat('rmsNorm', 'x', x);
  const [rows, cols] = rowsCols(x);
  checkVector('rmsNorm', 'weight', weight, cols);
  if (weight) assertSameDType('rmsNorm', { x, weight });
  const y = empty(x.shape, x.dtype);
  const rstd = empty([rows], x.dtype);
  getBackend().rmsNorm(y.floatData(), rstd.floatData(), xd, weight?.floatData() ?? null, rows, cols, eps);
  return record(y, 'rmsNorm', [x, weight], { rstd });
}

export interface AttentionOptions {
  /** (B, Tq, Tk) mask as 0/1 bytes that replaces the causal rule (padding, prefix sharing). Default: causal. */
  mask?: Uint8Array | null;
  /** Score scale; default 1/sqrt(D). */
  scale?: number;
}

/**
 * Attention with grouped-query heads. q (B, Tq, H, D); k, v (B, Tk, KVH, D) with H a multiple of KVH; out (B, Tq, H, D).
 * Causal by default, with query i at position Tk − Tq + i (so a KV cache's earlier keys stay visible).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const qd = assertFloat('attention', 'q', q);
  const kd = assertFloat('attention', 'k', k);
  const vd = assertFloat('attention', 'v', v);
  assertSameDType('attention', { q, k, v });
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new ShapeError('attention', `q, k, v must be (B, T, heads, D); got q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`);
  }
  const [b, tq, h, d] = q.shape;
  const [bk, tk, kvh, dk] = k.shape;
  if (bk !== b || dk !== d || v.shape.some((s, i) => s !== k.shape[i]) || kvh === 0 || h % kvh !== 0) {
    throw new ShapeError('attention', `incompatible q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}: need equal B and D, k = v, and H a multiple of KVH`);
  }
  if (!opts.mask && tq > tk) throw new ShapeError('attention', `causal attention needs Tq ≤ Tk, got Tq = ${tq}, Tk = ${tk}`);
  const mask = opts.mask ?? null;
  if (mask && mask.length !== b * tq * tk) throw new ShapeError('attention', `mask must hold B·Tq·Tk = ${b * tq * tk} bytes, got ${mask.length}`);
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const out = empty(q.shape, q.dtype);
  const probs = empty([b, h, tq, tk], q.dtype);
  getBackend().attention(out.floatData(), probs.floatData(), qd, kd, vd, mask, b, tq, tk, h, kvh, d, scale);
  return record(out, 'attention', [q, k, v], { probs, scale });
}

/**
 * Rotary position embedding in HF's rotate-half layout. x (B, T, H, D); cos and sin (B, T, D/2) or (T, D/2), the
 * tables for each token's position (not differentiated).
 */
export function rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const xd = assertFloat('rope', 'x', x);
  assertSameDType('rope', { x, cos, sin });
  if (x.rank !== 4 || x.shape[3] % 2 !== 0) throw new ShapeError('rope', `x must be (B, T, H, D) with even D, got ${fmtShape(x.shape)}`);
  const [b, t, h, d] = x.shape;
  const want = [t, d / 2];
  const ok = (c: Tensor) => (c.rank === 2 && c.shape[0] === t && c.shape[1] === d / 2) || (c.rank === 3 && c.shape[0] === b && c.shape[1] === t && c.shape[2] === d / 2);
  if (!ok(cos) || !ok(sin)) throw new ShapeError('rope', `cos and sin must be (B, T, D/2) or ${fmtShape(want)}; got cos ${fmtShape(cos.shape)}, sin ${fmtShape(sin.shape)} for x ${fmtShape(x.shape)}`);
  const [cb, sb] = [expandTable(cos, b), expandTable(sin, b)];
  const out = empty(x.shape, x.dtype);
  getBackend().rope(out.floatData(), xd, cb.floatData(), sb.floatData(), b, t, h, d, false);
  return record(out, 'rope', [x], { cos: cb, sin: sb });
}

function expandTable(c: Tensor, b: number): Tensor {
  if (c.rank === 3) return c;
  const out = empty([b, ...c.shape], c.dtype);
  const src = c.floatData();
  const dst = out.floatData();
  for (let i = 0; i < b; i++) dst.set(src, i * src.length);
  return out;
}

/**
 * log p(target) under softmax(logits): logits (…, V), int32 targets (…) → (…). A negative target (−100) is ignored:
 * it gives 0 and no gradient. The (…, V) log-softmax is never materialised.
 */
export function logSoftmaxGather(logits: Tensor, targets: Tensor): Tensor {
  const ld = assertFloat('logSoftmaxGather', 'logits', logits);
  const td = assertInt('logSoftmaxGather', 'targets', targets);
  const v = logits.shape[logits.rank - 1];
  if (logits.rank < 1 || targets.rank !== logits.rank - 1 || targets.shape.some((s, i) => s !== logits.shape[i])) {
    throw new ShapeError('logSoftmaxGather', `targets ${fmtShape(targets.shape)} must equal logits ${fmtShape(logits.shape)} without its last axis`);
  }
  for (let i = 0; i < td.length; i++) {
    if (td[i] >= v) throw new ShapeError('logSoftmaxGather', `targets[${i}] = ${td[i]} is outside the vocabulary of ${v}`);
  }
  const n = targets.size;
  const out = empty(targets.shape, logits.dtype);
  const lse = empty([n], logits.dtype);
  getBackend().logSoftmaxGather(out.floatData(), lse.floatData(), ld, td, n, v);
  return record(out, 'logSoftmaxGather', [logits, null], { lse, targets });
}

export const nnRules: Pick<GradRules, 'softmax' | 'logSoftmax' | 'layerNorm' | 'rmsNorm' | 'attention' | 'rope' | 'logSoftmaxGather'> = {
  softmax(g, { saved: { y } }) {
    const [rows, cols] = rowsCols(y);
    const dx = empty(y.shape, y.dtype);
    getBackend().softmaxBackward(dx.floatData(), g.floatData(), y.floatData(), rows, cols);
    return [dx];
  },
  logSoftmax(g, { saved: { y } }) {
    const [rows, cols] = rowsCols(y);
    const dx = empty(y.shape, y.dtype);
    getBackend().logSoftmaxBackward(dx.floatData(), g.floatData(), y.floatData(), rows, cols);
    return [dx];
  },
  layerNorm(g, { inputs: [x, weight, bias], saved: { mean, rstd } }) {
    const [rows, cols] = rowsCols(x!);
    const dx = empty(x!.shape, x!.dtype);
    const dw = weight?.requiresGrad ? zerosLike(weight) : null;
    const db = bias?.requiresGrad ? zerosLike(bias) : null;
    getBackend().layerNormBackward(dx.floatData(), dw?.floatData() ?? null, db?.floatData() ?? null, g.floatData(), x!.floatData(),
      weight?.floatData() ?? null, mean.floatData(), rstd.floatData(), rows, cols);
    return [dx, dw, db];
  },
  rmsNorm(g, { inputs: [x, weight], saved: { rstd } }) {
    const [rows, cols] = rowsCols(x!);
    const dx = empty(x!.shape, x!.dtype);
    const dw = weight?.requiresGrad ? zerosLike(weight) : null;
    getBackend().rmsNormBackward(dx.floatData(), dw?.floatData() ?? null, g.floatData(), x!.floatData(), weight?.floatData() ?? null, rstd.floatData(), rows, cols);
    return [dx, dw];
  },
  attention(g, { inputs: [q, k, v], saved: { probs, scale } }) {
    const [b, tq, h, d] = q!.shape;
    const [, tk, kvh] = k!.shape;
    const dq = empty(q!.shape, q!.dtype);
    const dk = empty(k!.shape, k!.dtype);
    const dv = empty(v!.shape, v!.dtype);
    getBackend().attentionBackward(dq.floatData(), dk.floatData(), dv.floatData(), g.floatData(), q!.floatData(), k!.floatData(), v!.floatData(),
      probs.floatData(), b, tq, tk, h, kvh, d, scale);
    return [dq, dk, dv];
  },
  rope(g, { saved: { cos, sin } }) {
    const [b, t, h, d] = g.shape;
    const dx = empty(g.shape, g.dtype);
    getBackend().rope(dx.floatData(), g.floatData(), cos.floatData(), sin.floatData(), b, t, h, d, true);
    return [dx];
  },
  logSoftmaxGather(g, { inputs: [logits], saved: { lse, targets } }) {
    const v = logits!.shape[logits!.rank - 1];
    const dl = empty(logits!.shape, logits!.dtype);
    getBackend().logSoftmaxGatherBackward(dl.floatData(), g.floatData(), logits!.floatData(), lse.floatData(), targets.data as Int32Array, targets.size, v);
    return [dl, null];
  },
};

function zerosLike(t: Tensor): Tensor {
  const z = empty(t.shape, t.dtype);
  z.floatData().fill(0);
  return z;
}
