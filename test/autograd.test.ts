// Autograd semantics (accumulation, noGrad, detach, requiresGrad propagation), memory scopes, determinism of the
// seeded RNG, and the typed errors raised on bad input.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DTypeError, DisposedError, GradError, IndexError, Rng, ShapeError, add, attention, backward, concat, gather, linear,
  logSoftmaxGather, matmul, memoryStats, mul, noGrad, randn, reshape, scope, slice, sum, tensor, zeros, currentBackend,
} from '../src/index.js';
import { assertClose } from './helpers.js';

describe(`autograd semantics (${currentBackend().name} backend)`, () => {
  test('gradients accumulate across backward() calls until cleared', () => {
    const x = tensor([1, 2, 3]).requireGrad();
    scope(() => backward(sum(mul(x, x))));
    scope(() => backward(sum(mul(x, x))));
    assertClose(x.grad!.data, [4, 8, 12], {}, 'two backward passes of Σx² give 2·2x');
  });

  test('noGrad records nothing and detach cuts the graph', () => {
    const x = tensor([1, 2]).requireGrad();
    const y = noGrad(() => mul(x, x));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.node, null);
    const z = mul(x.detach(), x); // d/dx (c·x) with c = x held constant
    backward(sum(z));
    assertClose(x.grad!.data, [1, 2], {}, 'gradient through the non-detached factor only');
  });

  test('requiresGrad propagates only from inputs that require it', () => {
    const a = tensor([1, 2]);
    const b = tensor([3, 4]).requireGrad();
    assert.equal(add(a, a).requiresGrad, false);
    assert.equal(add(a, b).requiresGrad, true);
  });

  test('slices of one tensor sum their gradients (overlapping windows, plus a non-slice use)', () => {
    // y = Σ x[:, 0:3]·w1 + Σ x[:, 2:5]·w2 + Σ 3x: dy/dx = w1 on columns 0-2, + w2 on 2-4, + 3 everywhere.
    const x = tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [2, 6]).requireGrad();
    const w1 = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const w2 = tensor([10, 20, 30, 40, 50, 60], [2, 3]);
    scope(() => backward(add(add(sum(mul(slice(x, [0, 0], [2, 3]), w1)), sum(mul(slice(x, [0, 2], [2, 5]), w2))),
      sum(mul(x, tensor([3]))))));
    assertClose(x.grad!.data, [4, 5, 16, 23, 33, 3, 7, 8, 49, 53, 63, 3], {}, 'w1 and w2 placed at their windows, plus 3');
  });

  test('a leaf that does not affect the output gets no gradient', () => {
    const x = tensor([1, 2]).requireGrad();
    const unused = tensor([5]).requireGrad();
    backward(sum(x));
    assert.equal(unused.grad, null);
  });

  test('backward with an explicit output gradient', () => {
    const x = tensor([1, 2, 3]).requireGrad();
    backward(mul(x, x), tensor([1, 0, -1]));
    assertClose(x.grad!.data, [2, 0, -6]);
  });

  test('scope disposes intermediates but keeps returned tensors and leaf gradients', () => {
    const w = tensor([0.5, -1, 2, 0.25], [2, 2]).requireGrad();
    let inner: ReturnType<typeof mul> | null = null;
    const out = scope(() => {
      inner = mul(w, w);
      const loss = sum(inner);
      backward(loss);
      return sum(w);
    });
    assert.ok(inner!.disposed, 'an intermediate is disposed when its scope ends');
    assert.throws(() => inner!.data, DisposedError);
    assert.equal(out.item(), 1.75);
    assertClose(w.grad!.data, [1, -2, 4, 0.5]);
  });

  test('reshape shares storage: a view outlives its base', () => {
    const v = scope(() => {
      const base = tensor([1, 2, 3, 4, 5, 6]);
      return reshape(base, [2, 3]);
    });
    assert.deepEqual(Array.from(v.data), [1, 2, 3, 4, 5, 6]);
  });

  test('the same seed gives the same numbers', () => {
    const a = randn([50], new Rng(42)).toArray();
    const b = randn([50], new Rng(42)).toArray();
    const c = randn([50], new Rng(43)).toArray();
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const rng = new Rng(1);
    rng.normal();
    const state = rng.getState();
    const next = [rng.uniform(), rng.normal(), rng.normal()];
    rng.setState(state);
    assert.deepEqual([rng.uniform(), rng.normal(), rng.normal()], next, 'a restored RNG state replays the stream');
  });

  test('memory accounting returns to its starting point after a scope', () => {
    const before = memoryStats().liveBytes;
    scope(() => {
      const x = randn([64, 64], new Rng(0)).requireGrad();
      backward(sum(matmul(x, x)));
      x.grad!.dispose();
    });
    assert.equal(memoryStats().liveBytes, before);
  });
});

describe('bad input raises typed errors naming the op, the argument and the shapes', () => {
  test('shape mismatches', () => {
    assert.throws(() => add(zeros([2, 3]), zeros([4])), (e: Error) => e instanceof ShapeError && /add/.test(e.message) && /\[2, 3\]/.test(e.message) && /\[4\]/.test(e.message));
    assert.throws(() => matmul(zeros([2, 3]), zeros([4, 5])), (e: Error) => e instanceof ShapeError && /matmul/.test(e.message) && /\[2, 3\]/.test(e.message) && /\[4, 5\]/.test(e.message));
    assert.throws(() => linear(zeros([2, 3]), zeros([5, 4])), (e: Error) => e instanceof ShapeError && /linear/.test(e.message) && /\[5, 4\]/.test(e.message));
    assert.throws(() => reshape(zeros([2, 3]), [4, 2]), (e: Error) => e instanceof ShapeError && /reshape/.test(e.message));
    assert.throws(() => concat([zeros([2, 3]), zeros([3, 3])], 1), (e: Error) => e instanceof ShapeError && /concat/.test(e.message));
    assert.throws(() => attention(zeros([1, 2, 3, 4]), zeros([1, 2, 2, 4]), zeros([1, 2, 2, 4])), (e: Error) => e instanceof ShapeError && /attention/.test(e.message));
  });

  test('dtype mismatches', () => {
    assert.throws(() => add(zeros([2]), zeros([2], 'float64')), (e: Error) => e instanceof DTypeError && /add/.test(e.message) && /float64/.test(e.message));
    assert.throws(() => gather(zeros([4, 2]), zeros([3])), (e: Error) => e instanceof DTypeError && /ids/.test(e.message));
    assert.throws(() => sum(zeros([2], 'int32')), (e: Error) => e instanceof DTypeError && /sum/.test(e.message));
  });

  test('out-of-range ids', () => {
    assert.throws(() => gather(zeros([4, 2]), tensor([0, 4], [2], 'int32')), (e: Error) => e instanceof IndexError && /gather/.test(e.message) && /ids\[1\] = 4/.test(e.message));
    assert.throws(() => gather(zeros([4, 2]), tensor([-1], [1], 'int32')), IndexError);
    assert.throws(() => logSoftmaxGather(zeros([2, 5]), tensor([1, 5], [2], 'int32')), (e: Error) => /logSoftmaxGather/.test(e.message) && /targets\[1\] = 5/.test(e.message));
  });

  test('backward on a non-scalar without a gradient', () => {
    const x = zeros([3]).requireGrad();
    assert.throws(() => backward(mul(x, x)), (e: Error) => e instanceof GradError && /non-scalar/.test(e.message) && /\[3\]/.test(e.message));
  });
});
