// Each fused op against its composition from simpler primitives (composites.ts): forward values and gradients, in
// float64 (tight) and float32 (round-off). The composition is the textbook formula; the fused op is what models use.
import { describe, test } from 'node:test';
import {
  Rng, Tensor, attention, attentionComposed, backward, gelu, geluComposed, layerNorm, layerNormComposed, logSoftmax,
  logSoftmaxComposed, logSoftmaxGather, logSoftmaxGatherComposed, mul, rmsNorm, rmsNormComposed, rope, ropeComposed,
  scope, silu, siluComposed, softmax, softmaxComposed, sum, tensor, currentBackend, type DType,
} from '../src/index.js';
import { assertClose, randomTensor } from './helpers.js';

const tolFor = (dtype: DType) => (dtype === 'float64' ? { atol: 1e-12, rtol: 1e-10 } : { atol: 2e-5, rtol: 2e-4 });

/** Forward and input gradients of f and g agree on the same inputs. */
function sameFunction(name: string, fused: (...xs: Tensor[]) => Tensor, composed: (...xs: Tensor[]) => Tensor, make: (dtype: DType) => Tensor[],
  dtypes: readonly DType[] = ['float64', 'float32']): void {
  for (const dtype of dtypes) {
    scope(() => {
      const run = (f: (...xs: Tensor[]) => Tensor) => {
        const rng = new Rng(99);
        const xs = make(dtype).map((x) => x.requireGrad());
        const y = f(...xs);
        const w = randomTensor(rng, y.shape, dtype);
        backward(sum(mul(y, w)));
        return { y: Array.from(y.data), grads: xs.map((x) => Array.from(x.grad!.data)) };
      };
      const a = run(fused);
      const b = run(composed);
      const tol = tolFor(dtype);
      assertClose(a.y, b.y, tol, `${name} (${dtype}) forward`);
      a.grads.forEach((g, i) => assertClose(g, b.grads[i], tol, `${name} (${dtype}) gradient of input ${i}`));
    });
  }
}

describe(`fused ops equal their compositions (${currentBackend().name} backend)`, () => {
  const seeded = (seed: number) => new Rng(seed);
  const r = (rng: Rng, shape: number[], dtype: DType, lo = -2, hi = 2) => randomTensor(rng, shape, dtype, lo, hi);

  test('softmax and log-softmax, ordinary and ±80 logits', () => {
    for (const span of [2, 80]) {
      sameFunction(`softmax ±${span}`, softmax, softmaxComposed, (dt) => [r(seeded(1), [5, 33], dt, -span, span)]);
      sameFunction(`logSoftmax ±${span}`, logSoftmax, logSoftmaxComposed, (dt) => [r(seeded(2), [5, 33], dt, -span, span)]);
    }
  });

  test('GELU (tanh form) and SiLU', () => {
    sameFunction('gelu', gelu, geluComposed, (dt) => [r(seeded(3), [4, 17], dt, -6, 6)]);
    sameFunction('silu', silu, siluComposed, (dt) => [r(seeded(4), [4, 17], dt, -6, 6)]);
  });

  test('LayerNorm and RMSNorm', () => {
    sameFunction('layerNorm', (x, w, b) => layerNorm(x, w, b, 1e-5), (x, w, b) => layerNormComposed(x, w, b, 1e-5),
      (dt) => { const g = seeded(5); return [r(g, [3, 4, 19], dt), r(g, [19], dt), r(g, [19], dt)]; });
    sameFunction('rmsNorm', (x, w) => rmsNorm(x, w, 1e-6), (x, w) => rmsNormComposed(x, w, 1e-6),
      (dt) => { const g = seeded(6); return [r(g, [3, 4, 19], dt), r(g, [19], dt)]; });
  });

  test('attention: causal, GQA, KV-cache offsets and explicit masks', () => {
    const cases: [string, number[], number[], Uint8Array | null][] = [
      ['causal', [2, 7, 4, 8], [2, 7, 4, 8], null],
      ['GQA 4/2', [2, 6, 4, 5], [2, 6, 2, 5], null],
      ['MQA, Tq 3 of Tk 9', [1, 3, 4, 4], [1, 9, 1, 4], null],
    ];
    const mask = new Uint8Array(2 * 5 * 5);
    for (let i = 0; i < mask.length; i++) mask[i] = (i * 7) % 3 === 0 || i % 6 === 0 ? 1 : 0;
    for (let row = 0; row < 10; row++) mask[row * 5] = 1; // every query sees at least one key
    cases.push(['masked', [2, 5, 2, 3], [2, 5, 2, 3], mask]);
    for (const [name, qs, ks, m] of cases) {
      sameFunction(`attention ${name}`, (q, k, v) => attention(q, k, v, { mask: m }), (q, k, v) => attentionComposed(q, k, v, m),
        (dt) => { const g = seeded(7); return [r(g, qs, dt), r(g, ks, dt), r(g, ks, dt)]; });
    }
  });

  test('rotary embeddings', () => {
    const angles = Array.from({ length: 5 * 4 }, (_, i) => (i % 4) * 0.3 + Math.floor(i / 4) * 0.7);
    for (const dtype of ['float64', 'float32'] as const) {
      const cos = tensor(angles.map(Math.cos), [5, 4], dtype);
      const sin = tensor(angles.map(Math.sin), [5, 4], dtype);
      sameFunction('rope', (x) => rope(x, cos, sin), (x) => ropeComposed(x, cos, sin), (dt) => [r(seeded(8), [2, 5, 3, 8], dt)], [dtype]);
    }
  });

  test('log-prob gather at targets', () => {
    const targets = tensor([0, 5, 12, 3, 3, 11], [6], 'int32');
    sameFunction('logSoftmaxGather', (x) => logSoftmaxGather(x, targets), (x) => logSoftmaxGatherComposed(x, targets),
      (dt) => [r(seeded(9), [6, 13], dt, -30, 30)]);
  });
});
