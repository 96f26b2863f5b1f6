// A non-finite gradient with a finite loss stops training: the loop computes the global norm with clipGradNorm and
// hands it to checkFiniteGradNorm, which must name the step, the batch's example indices and the offending entries.
// (The non-finite loss path is tested end to end through the CLI in trainer-cli.test.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TrainingDivergedError, checkFiniteGradNorm, clipGradNorm, tensor, type Tensor } from '../src/index.js';

function paramWithGrad(values: number[], grad: number[]): Tensor {
  const p = tensor(values).requireGrad();
  p.grad = tensor(grad);
  return p;
}

test('a non-finite gradient norm stops the run, naming the step, the batch and the bad entries', () => {
  const named: [string, Tensor][] = [
    ['model.layers.0.mlp.up_proj.weight', paramWithGrad([1, 2, 3], [0.5, Infinity, 1])],
    ['model.norm.weight', paramWithGrad([1, 1], [NaN, 0])],
    ['lm_head.weight', paramWithGrad([1], [2])],
  ];
  const norm = clipGradNorm(named.map(([, p]) => p), 1.0);
  assert.ok(!Number.isFinite(norm), 'the global norm of a gradient holding Inf and NaN is not finite');
  assert.throws(
    () => checkFiniteGradNorm(norm, 7, [{ index: 12 }, { index: 3 }], named, '/tmp/out/checkpoint-5'),
    (e: Error) => e instanceof TrainingDivergedError
      && /step 7/.test(e.message)
      && /\[12, 3\]/.test(e.message)
      && /model\.layers\.0\.mlp\.up_proj\.weight\[1\] = Infinity/.test(e.message)
      && /model\.norm\.weight\[0\] = NaN/.test(e.message)
      && !/lm_head/.test(e.message)
      && /checkpoint-5/.test(e.message),
  );
});

test('a finite gradient norm passes, and clipping scales it to max_grad_norm', () => {
  const named: [string, Tensor][] = [['w', paramWithGrad([1, 1], [3, 4])]];
  const norm = clipGradNorm(named.map(([, p]) => p), 1.0);
  assert.equal(norm, 5);
  checkFiniteGradNorm(norm, 1, [{ index: 0 }], named, null);
  const g = named[0][1].grad!.data;
  assert.ok(Math.abs(Math.hypot(g[0], g[1]) - 1) < 1e-5, 'the clipped gradient has norm max_grad_norm');
});
