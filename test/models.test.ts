// GPT-2, Llama and Qwen2 against PyTorch and against themselves. Each checkpoint under test/fixtures/models/ (HF
// layout, made by scripts/fixtures/make_model_fixtures.py) is loaded by name and run on a right-padded batch: logits,
// loss and every parameter gradient must match the float64 reference. Then: KV-cache decoding equals the full
// forward, left padding does not change the real tokens' logits, and weights survive a stateDict round trip.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng, Tensor, backward, concat, currentBackend, logSoftmaxGather, memoryStats, noGrad, scale, scope, slice, sum, tensor } from '../src/index.js';
import { createModel, defaultPositions, disposeKVCache, loadStateDict, ropeInverseFrequencies, stateDict, type CausalLM } from '../src/models/index.js';
import { assertClose, type Tolerance } from './helpers.js';
import { FIXTURES, fixtureConfig, loadFixtureModel, readExpected, type Expected, type FixtureName } from './model-fixtures.js';

// ------------------------------------------------------------------------------------------------ helpers
/** Runs fn with the fixture's model and frees the model's weights afterwards. */
function withModel(name: FixtureName, fn: (model: CausalLM, ex: Expected) => void): void {
  const model = loadFixtureModel(name);
  try {
    scope(() => fn(model, readExpected(name)));
  } finally {
    model.dispose();
  }
}

const ids = (rows: number[][]) => tensor(rows.flat(), [rows.length, rows[0].length], 'int32');
const bytes = (rows: number[][]) => Uint8Array.from(rows.flat());

/** Mean −log p(next token) over positions whose token and next token are both real. logits (B, T, V). */
function nextTokenLoss(logits: Tensor, tokens: number[][], mask: number[][]): Tensor {
  const targets = tokens.map((row, b) => row.map((_, t) => (t + 1 < row.length && mask[b][t] && mask[b][t + 1] ? row[t + 1] : -100)));
  const counted = targets.flat().filter((t) => t >= 0).length;
  return scale(sum(logSoftmaxGather(logits, ids(targets))), -1 / counted); // ignored targets give 0
}

// float32 forward and backward against a float64 reference on the same (float32) weights. The worst errors seen are
// 2.5e-6 on logits (|logit| ~ 2) and 7e-7 on gradients (median |grad| ~ 0.03), so any real slip (a wrong bias,
// position or mask) fails by orders of magnitude.
const FLOAT32: Tolerance = { atol: 5e-6, rtol: 1e-4 };
// The same float32 computation, only regrouped (cached keys, fewer rows): agreement to float32 rounding.
const REGROUPED: Tolerance = { atol: 1e-5, rtol: 1e-5 };

// ------------------------------------------------------------------------------------------------ against PyTorch
describe(`models against the PyTorch reference (${currentBackend().name} backend)`, () => {
  for (const name of FIXTURES) {
    test(`${name}: logits, loss and every parameter gradient of a right-padded batch match PyTorch`, () => {
      withModel(name, (model, ex) => {
        const mask = bytes(ex.attention_mask);
        assert.deepEqual(Array.from(defaultPositions(mask, 2, 7, 0)), ex.position_ids.flat(), 'default positions are cumsum(mask) − 1');
        const logits = model.logits(model.forward(ids(ex.input_ids), { attentionMask: mask }));
        assert.deepEqual(logits.shape, ex.logits.shape);
        assertClose(logits.data, ex.logits.data, FLOAT32, `${name} logits`);
        const loss = nextTokenLoss(logits, ex.input_ids, ex.attention_mask);
        assertClose([loss.item()], [ex.loss], FLOAT32, `${name} loss`);
        backward(loss);
        const params = new Map(model.namedParameters());
        assert.deepEqual([...params.keys()].sort(), Object.keys(ex.grads).sort(), 'the model has exactly the checkpoint\'s parameters');
        for (const [pname, g] of Object.entries(ex.grads)) {
          const grad = params.get(pname)?.grad;
          assert.ok(grad, `d loss / d ${pname}: no gradient`);
          assertClose(grad.data, g.data, FLOAT32, `${name}: d loss / d ${pname}`);
        }
      });
    });
  }

  test('rope_scaling llama3: the inverse frequencies match the reference (kept, smoothed, scaled, scaled)', () => {
    const ex = readExpected('llama3');
    const cfg = fixtureConfig('llama3');
    assert.ok(cfg.modelType === 'llama' && cfg.ropeScaling?.type === 'llama3');
    assertClose(ropeInverseFrequencies(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling), ex.rope_inv_freq!, { atol: 0, rtol: 1e-14 });
  });

  test('rope_scaling linear divides every inverse frequency by the factor', () => {
    assertClose(ropeInverseFrequencies(8, 10000, { type: 'linear', factor: 4 }), [0.25, 0.025, 0.0025, 0.00025], { atol: 0, rtol: 1e-15 });
  });
});

// ------------------------------------------------------------------------------------------------ cache and padding
/** Logits (B, T, V) of one full forward, no gradient. */
function fullLogits(model: CausalLM, rows: number[][], mask?: number[][]): Tensor {
  return noGrad(() => model.logits(model.forward(ids(rows), { attentionMask: mask && bytes(mask) })));
}

/** Feeds `rows` in chunks of the given lengths through one KV cache and joins the chunks' logits along T. */
function cachedLogits(model: CausalLM, rows: number[][], mask: number[][], chunks: number[]): Tensor {
  const cache = model.newCache();
  const parts: Tensor[] = [];
  let start = 0;
  noGrad(() => {
    for (const len of chunks) {
      const chunk = rows.map((r) => r.slice(start, start + len));
      const seen = mask.map((r) => r.slice(0, start + len)); // the mask covers cached keys and this chunk
      parts.push(model.logits(model.forward(ids(chunk), { attentionMask: bytes(seen), cache })));
      start += len;
      assert.equal(cache.length, start, 'the cache advances by the chunk length');
    }
  });
  disposeKVCache(cache);
  return concat(parts, 1);
}

describe(`KV cache and padding (${currentBackend().name} backend)`, () => {
  for (const name of FIXTURES) {
    test(`${name}: decoding token by token through the KV cache gives the full forward's logits`, () => {
      withModel(name, (model, ex) => {
        const want = fullLogits(model, ex.input_ids, ex.attention_mask);
        const got = cachedLogits(model, ex.input_ids, ex.attention_mask, [1, 1, 1, 1, 1, 1, 1]);
        assertClose(got.data, want.data, REGROUPED, `${name} token-by-token logits`);
      });
    });

    test(`${name}: prefill of 4 tokens, then decoding 1 + 2, gives the full forward's logits`, () => {
      withModel(name, (model, ex) => {
        const want = fullLogits(model, ex.input_ids, ex.attention_mask);
        const got = cachedLogits(model, ex.input_ids, ex.attention_mask, [4, 1, 2]);
        assertClose(got.data, want.data, REGROUPED, `${name} prefill + decode logits`);
      });
    });

    test(`${name}: a left-padded row gives the real tokens the logits of the unpadded sequence, also when decoding`, () => {
      withModel(name, (model) => {
        const real = [7, 21, 3, 30, 11];
        const padded = [[0, 0, ...real], [4, 8, 15, 16, 23, 5, 9]];
        const mask = [[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]];
        const want = fullLogits(model, [real]); // (1, 5, V)
        const v = want.shape[2];
        const row0 = (t: Tensor) => slice(t, [0, 2, 0], [1, 7, v]); // the real tokens of the padded row
        assertClose(row0(fullLogits(model, padded, mask)).data, want.data, REGROUPED, `${name} left-padded logits`);
        assertClose(row0(cachedLogits(model, padded, mask, [4, 1, 1, 1])).data, want.data, REGROUPED, `${name} left-padded decoding`);
      });
    });
  }

  test('decoding in scopes holds exactly the weights plus the (B, T, KVH, D) cache; disposeKVCache frees it all', () => {
    const model = loadFixtureModel('llama'); // 2 layers, KVH = 2, D = 8, float32
    const base = memoryStats().liveBytes;
    const cache = model.newCache();
    for (let step = 1; step <= 3; step++) {
      scope(() => {
        noGrad(() => model.logits(model.forward(ids([[step], [step + 5]]), { cache })));
      });
      assert.deepEqual(cache.keys[1]!.shape, [2, step, 2, 8]);
      const cacheBytes = 2 * 2 * (2 * step * 2 * 8) * 4; // (keys + values) · layers · B·T·KVH·D · 4 bytes
      assert.equal(memoryStats().liveBytes - base, cacheBytes, `after step ${step}, only the cache outlives the scope`);
    }
    const kept = cache.keys[0]!;
    disposeKVCache(cache);
    assert.ok(kept.disposed && cache.length === 0 && cache.keys.every((k) => k === null));
    assert.equal(memoryStats().liveBytes, base, 'disposeKVCache frees every cached tensor');
    model.dispose();
  });
});

// ------------------------------------------------------------------------------------------------ saving
describe('stateDict', () => {
  for (const name of FIXTURES) {
    test(`${name}: stateDict → loadStateDict into a freshly initialised model reproduces the logits exactly`, () => {
      withModel(name, (model, ex) => {
        const saved = stateDict(model);
        const tied = !new Map(model.namedParameters()).has('lm_head.weight');
        assert.equal(saved.has('lm_head.weight'), !tied, 'a tied lm_head is omitted, as HF omits it');
        const fresh = createModel(fixtureConfig(name), new Rng(99));
        try {
          loadStateDict(fresh, saved);
          const mask = ex.attention_mask;
          assert.deepEqual(fullLogits(fresh, ex.input_ids, mask).data, fullLogits(model, ex.input_ids, mask).data);
        } finally {
          fresh.dispose();
        }
      });
    });
  }
});
