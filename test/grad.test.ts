// Float64 central-difference gradient checks for every differentiable op, on random shapes with odd sizes, size-1
// dimensions and broadcasting, plus extreme input ranges for exp, log and the softmax family.
import { describe, test } from 'node:test';
import {
  Rng, Tensor, abs, add, affine, attention, cast, concat, div, exp, expand, gather, gelu, layerNorm, linear, log,
  logSoftmax, logSoftmaxGather, matmul, max, maximum, mean, minimum, mul, neg, permute, relu, reshape, rmsNorm, rope,
  rsqrt, scatterAdd, sigmoid, silu, slice, softmax, sqrt, square, sub, sum, tanh, tensor, transpose, unaryOps, where,
  currentBackend,
} from '../src/index.js';
import { gradCheck, randomTensor } from './helpers.js';

const rng = new Rng(7);
const r = (shape: number[], lo = -1, hi = 1) => randomTensor(rng, shape, 'float64', lo, hi);

describe(`gradients (float64 central differences, ${currentBackend().name} backend)`, () => {
  test('unary ops on ordinary and extreme ranges', () => {
    const fns: Record<(typeof unaryOps)[number], (x: Tensor) => Tensor> = {
      neg, exp, log, tanh, sqrt, rsqrt, sigmoid, silu, gelu, relu, abs, square,
    };
    const positive = new Set(['log', 'sqrt', 'rsqrt']);
    for (const op of unaryOps) {
      const [lo, hi] = positive.has(op) ? [0.2, 3] : [-3, 3];
      gradCheck(op, fns[op], [r([3, 5], lo, hi)]);
    }
    gradCheck('exp, large inputs', exp, [r([7], 30, 32)], { rtol: 1e-6, atol: 0, eps: 1e-5 });
    gradCheck('log, tiny inputs', log, [r([7], 1e-4, 1e-3)], { rtol: 1e-5, atol: 0, eps: 1e-9 });
    gradCheck('sigmoid, saturated', sigmoid, [tensor([-40, -15, 15, 40], [4], 'float64')]);
    gradCheck('tanh, saturated', tanh, [tensor([-20, -5, 5, 20], [4], 'float64')]);
  });

  test('binary ops with broadcasting', () => {
    const shapes: [number[], number[]][] = [[[3, 4], [3, 4]], [[3, 4], [4]], [[2, 1, 5], [3, 1]], [[1], [2, 3]], [[5, 1], [1, 6]]];
    for (const [sa, sb] of shapes) {
      gradCheck(`add ${sa}+${sb}`, add, [r(sa), r(sb)]);
      gradCheck(`sub ${sa}-${sb}`, sub, [r(sa), r(sb)]);
      gradCheck(`mul ${sa}*${sb}`, mul, [r(sa), r(sb)]);
      gradCheck(`div ${sa}/${sb}`, div, [r(sa), r(sb, 0.5, 2)]);
      gradCheck(`maximum ${sa},${sb}`, maximum, [r(sa), r(sb)]);
      gradCheck(`minimum ${sa},${sb}`, minimum, [r(sa), r(sb)]);
    }
  });

  test('an input used twice accumulates both paths', () => {
    gradCheck('x*x + x', (x) => add(mul(x, x), x), [r([4, 3])]);
  });

  test('where, affine, cast', () => {
    const cond = tensor([1, 0, 0, 1, 1, 0], [2, 3], 'float64');
    gradCheck('where', (a, b) => where(cond, a, b), [r([2, 3]), r([3])]);
    gradCheck('affine', (x) => affine(x, -2.5, 0.25), [r([2, 3])]);
    gradCheck('cast f64→f32→f64', (x) => cast(mul(cast(x, 'float32'), cast(x, 'float32')), 'float64'), [r([5])], { atol: 1e-4, rtol: 1e-3, eps: 1e-3 });
  });

  test('reductions: sum, mean, max', () => {
    gradCheck('sum all', (x) => sum(x), [r([3, 4, 2])]);
    gradCheck('sum axes 0,2', (x) => sum(x, [0, 2]), [r([3, 4, 2])]);
    gradCheck('sum axis -1 keepDims', (x) => sum(x, -1, true), [r([3, 4, 2])]);
    gradCheck('mean axis 1', (x) => mean(x, 1), [r([3, 5, 2])]);
    gradCheck('max axis 1', (x) => max(x, 1), [r([3, 5, 2])]);
    gradCheck('max axis 0 keepDims', (x) => max(x, 0, true), [r([4, 3])]);
  });

  test('shape ops: reshape, permute, transpose, slice, concat, expand', () => {
    gradCheck('reshape', (x) => mul(reshape(x, [6, -1]), reshape(x, [6, -1])), [r([2, 3, 4])]);
    gradCheck('permute', (x) => permute(x, [2, 0, 1]), [r([2, 3, 4])]);
    gradCheck('transpose', (x) => transpose(x), [r([2, 3, 5])]);
    gradCheck('slice', (x) => slice(x, [1, 0, 2], [3, 3, 4]), [r([3, 3, 5])]);
    gradCheck('concat', (a, b, c) => concat([a, b, c], 1), [r([2, 1, 3]), r([2, 4, 3]), r([2, 2, 3])]);
    gradCheck('expand', (x) => expand(x, [4, 3, 5]), [r([3, 1])]);
  });

  test('gather and scatterAdd', () => {
    const ids = tensor([2, 0, 2, 4, 1], [5], 'int32');
    gradCheck('gather', (t) => gather(t, ids), [r([5, 3])]);
    gradCheck('gather 2-D ids', (t) => gather(t, reshape(ids, [5, 1])), [r([5, 3])]);
    gradCheck('scatterAdd', (base, src) => scatterAdd(base, ids, src), [r([5, 3]), r([5, 3])]);
  });

  test('matmul: transposes, batches, shared B', () => {
    const m = 3, n = 5, k = 4;
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = r(transA ? [2, k, m] : [2, m, k]);
        const b = r(transB ? [2, n, k] : [2, k, n]);
        gradCheck(`batched matmul tA=${transA} tB=${transB}`, (x, y) => matmul(x, y, { transA, transB }), [a, b]);
        const b2 = r(transB ? [n, k] : [k, n]);
        gradCheck(`shared-B matmul tA=${transA} tB=${transB}`, (x, y) => matmul(x, y, { transA, transB }), [r(transA ? [2, k, m] : [2, m, k]), b2]);
      }
    }
    gradCheck('matmul 1x1x1', (x, y) => matmul(x, y), [r([1, 1]), r([1, 1])]);
  });

  test('linear: nn.Linear and Conv1D layouts, with and without bias', () => {
    gradCheck('linear (Cout, Cin) + bias', (x, w, b) => linear(x, w, b), [r([2, 3, 4]), r([5, 4]), r([5])]);
    gradCheck('linear (Cin, Cout) + bias', (x, w, b) => linear(x, w, b, true), [r([3, 4]), r([4, 5]), r([5])]);
    gradCheck('linear no bias', (x, w) => linear(x, w), [r([3, 4]), r([5, 4])]);
  });

  test('softmax and log-softmax, including extreme logits', () => {
    gradCheck('softmax', softmax, [r([3, 7], -3, 3)]);
    gradCheck('logSoftmax', logSoftmax, [r([3, 7], -3, 3)]);
    gradCheck('softmax, logits ±300', softmax, [r([2, 5], -300, 300)], { atol: 1e-6 });
    gradCheck('logSoftmax, logits ±300', logSoftmax, [r([2, 5], -300, 300)], { atol: 1e-6 });
    gradCheck('logSoftmax, one column', logSoftmax, [r([4, 1])]);
  });

  test('LayerNorm and RMSNorm', () => {
    gradCheck('layerNorm', (x, w, b) => layerNorm(x, w, b, 1e-5), [r([2, 3, 6]), r([6]), r([6])], { atol: 1e-5 });
    gradCheck('layerNorm no affine', (x) => layerNorm(x, null, null), [r([3, 5])], { atol: 1e-5 });
    gradCheck('rmsNorm', (x, w) => rmsNorm(x, w, 1e-6), [r([2, 3, 6]), r([6])], { atol: 1e-5 });
    gradCheck('rmsNorm no weight', (x) => rmsNorm(x, null), [r([3, 7])], { atol: 1e-5 });
  });

  test('attention: causal, grouped-query, Tq < Tk, masked', () => {
    gradCheck('attention causal H=KVH', (q, k, v) => attention(q, k, v), [r([2, 3, 2, 4]), r([2, 3, 2, 4]), r([2, 3, 2, 4])]);
    gradCheck('attention GQA H=4 KVH=2', (q, k, v) => attention(q, k, v), [r([1, 4, 4, 3]), r([1, 4, 2, 3]), r([1, 4, 2, 3])]);
    gradCheck('attention MQA KVH=1, Tq=2 < Tk=5', (q, k, v) => attention(q, k, v), [r([1, 2, 3, 2]), r([1, 5, 1, 2]), r([1, 5, 1, 2])]);
    const mask = new Uint8Array([1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
    gradCheck('attention with mask', (q, k, v) => attention(q, k, v, { mask }), [r([1, 3, 2, 2]), r([1, 4, 2, 2]), r([1, 4, 2, 2])]);
  });

  test('rotary embeddings', () => {
    const cos = r([3, 2]);
    const sin = r([3, 2]);
    gradCheck('rope', (x) => rope(x, cos, sin), [r([2, 3, 2, 4])]);
    const [cosB, sinB] = [r([2, 3, 1]), r([2, 3, 1])];
    gradCheck('rope batched tables', (x) => rope(x, cosB, sinB), [r([2, 3, 1, 2])]);
  });

  test('log-prob gather at target ids, with ignored targets and extreme logits', () => {
    const targets = tensor([3, 0, -100, 6], [4], 'int32');
    gradCheck('logSoftmaxGather', (x) => logSoftmaxGather(x, targets), [r([4, 7], -3, 3)]);
    gradCheck('logSoftmaxGather ±200', (x) => logSoftmaxGather(x, targets), [r([4, 7], -200, 200)], { atol: 1e-6 });
    gradCheck('logSoftmaxGather 2-D', (x) => logSoftmaxGather(x, reshape(targets, [2, 2])), [r([2, 2, 7])]);
  });
});
