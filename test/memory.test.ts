// Memory stays flat over a long run: 1,000 AdamW steps of a small MLP, each inside a scope, leave the engine's live
// bytes exactly where they were after the first steps, and the process's resident set within a small bound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capacityFor } from '../src/engine/storage.js';
import {
  Rng, adamwUpdate, clearPool, backward, gelu, linear, logSoftmaxGather, mean, memoryStats, neg, randn, scope, tensor, zeros, currentBackend,
} from '../src/index.js';

test(`resident memory stays flat over 1,000 training steps of an MLP (${currentBackend().name} backend)`, () => {
  const rng = new Rng(0);
  const params = [randn([128, 64], rng, 0.1), zeros([128]), randn([10, 128], rng, 0.1), zeros([10])].map((p) => p.requireGrad());
  const moments = params.map((p) => [zeros(p.shape), zeros(p.shape)]);
  const x = randn([32, 64], rng);
  const y = tensor(Array.from({ length: 32 }, (_, i) => i % 10), [32], 'int32');
  let firstLoss = 0;
  let lastLoss = 0;
  let liveAt100 = 0;
  let rssAt100 = 0;
  for (let step = 1; step <= 1000; step++) {
    const loss = scope(() => {
      const h = gelu(linear(x, params[0], params[1]));
      const l = neg(mean(logSoftmaxGather(linear(h, params[2], params[3]), y)));
      backward(l);
      params.forEach((p, i) => adamwUpdate(p, p.grad!, moments[i][0], moments[i][1], { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step }));
      params.forEach((p) => { p.grad!.dispose(); p.grad = null; });
      return l.item();
    });
    if (step === 1) firstLoss = loss;
    lastLoss = loss;
    if (step === 100) {
      global.gc?.();
      liveAt100 = memoryStats().liveBytes;
      rssAt100 = process.memoryUsage().rss;
    }
  }
  global.gc?.();
  const rssGrowthMb = (process.memoryUsage().rss - rssAt100) / 2 ** 20;
  console.log(`# rss growth from step 100 to 1000: ${rssGrowthMb.toFixed(2)} MiB; engine live bytes ${memoryStats().liveBytes}; loss ${firstLoss.toFixed(4)} → ${lastLoss.toFixed(4)}`);
  assert.equal(memoryStats().liveBytes, liveAt100, 'live tensor bytes are the same at step 100 and step 1000');
  assert.ok(rssGrowthMb < 16, `the resident set grew by ${rssGrowthMb.toFixed(1)} MiB between steps 100 and 1000`);
  assert.ok(lastLoss < firstLoss * 0.5, `training makes progress (${firstLoss} → ${lastLoss}), so the steps are real`);
});

test('the buffer pool reuses one size class across lengths, hands out views of the asked length, and zeroes on request', () => {
  assert.equal(capacityFor(100), 100); // small: exact
  assert.equal(capacityFor(4096), 4096);
  assert.equal(capacityFor(5000), 5120); // 4096 < 5000 ≤ 4096 + 2·512
  assert.equal(capacityFor(8192), 8192);
  for (const n of [4097, 5000, 9999, 123457, 1 << 20]) {
    const c = capacityFor(n);
    assert.ok(c >= n && c <= n * 1.125 + 1, `capacity ${c} of ${n} wastes at most 1/8`);
  }
  clearPool();
  const a = zeros([5000]);
  a.data.fill(7);
  const buffer = a.data.buffer;
  assert.equal(a.data.length, 5000);
  a.dispose();
  const b = zeros([5100]); // same class (5120): the same buffer, zeroed, seen at its own length
  assert.equal(b.data.buffer, buffer);
  assert.equal(b.data.length, 5100);
  assert.ok(b.data.every((v) => v === 0));
  b.dispose();
  const c = zeros([6000]); // another class: a fresh buffer
  assert.notEqual(c.data.buffer, buffer);
  c.dispose();
  // An array the pool did not make (a view into a larger buffer) is never recycled.
  const outer = new Float32Array(10000);
  tensor(outer.subarray(0, 5000), [5000]).dispose();
  const d = zeros([5000]);
  assert.notEqual(d.data.buffer, outer.buffer);
  d.dispose();
  clearPool();
});
