// generate() on tiny random GPT-2, Llama and Qwen2 models built here (seeded): the KV cache changes nothing, batching
// prompts of different lengths changes nothing, seeds reproduce, and the stopping rules hold. The sampling filters
// (top-k, top-p) are checked by value.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng, currentBackend, memoryStats } from '../src/index.js';
import { argmax, generate, logSumExp, sampleToken, samplingDistribution, topKIds, topPIds } from '../src/models/generate.js';
import { createModelFromHFConfig, type CausalLM } from '../src/models/index.js';
import { assertClose } from './helpers.js';

// initializer_range 0.5 (not HF's 0.02) spreads the logits, so greedy choices are not decided by float rounding.
const CONFIGS = {
  gpt2: { model_type: 'gpt2', vocab_size: 41, n_positions: 64, n_embd: 16, n_layer: 2, n_head: 2, initializer_range: 0.5 },
  llama: {
    model_type: 'llama', vocab_size: 41, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, max_position_embeddings: 64, initializer_range: 0.5,
  },
  qwen2: {
    model_type: 'qwen2', vocab_size: 41, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, max_position_embeddings: 64, initializer_range: 0.5, tie_word_embeddings: true,
  },
} as const;
type Arch = keyof typeof CONFIGS;
const ARCHS = Object.keys(CONFIGS) as Arch[];

function withModel(arch: Arch, fn: (model: CausalLM) => void): void {
  const model = createModelFromHFConfig(CONFIGS[arch], new Rng(7));
  try {
    fn(model);
  } finally {
    model.dispose();
  }
}

const PROMPTS = [[3, 14, 15, 9, 26, 5], [2, 7], [1, 8, 28, 18]];
/** Text of ids for stop strings: one letter per token. */
const letters = (ids: readonly number[]) => ids.map((id) => String.fromCharCode(97 + (id % 26))).join('');

describe(`generate (${currentBackend().name} backend)`, () => {
  for (const arch of ARCHS) {
    test(`${arch}: greedy decoding with the KV cache gives the tokens and logits (within 1e-4) of recomputing without it`, () => {
      withModel(arch, (model) => {
        const cached = generate(model, PROMPTS, { maxNewTokens: 10, useCache: true, returnLogits: true });
        const full = generate(model, PROMPTS, { maxNewTokens: 10, useCache: false, returnLogits: true });
        assert.deepEqual(cached.tokens, full.tokens);
        PROMPTS.forEach((_, row) => {
          cached.logits![row].forEach((l, i) => assertClose(l, full.logits![row][i], { atol: 1e-4, rtol: 1e-4 }, `${arch} row ${row} step ${i} logits`));
          assertClose(cached.logprobs[row], full.logprobs[row], { atol: 1e-4, rtol: 1e-4 }, `${arch} row ${row} logprobs`);
        });
      });
    });

    test(`${arch}: batched prompts of different lengths give each prompt's greedy tokens alone`, () => {
      withModel(arch, (model) => {
        const batched = generate(model, PROMPTS, { maxNewTokens: 12 });
        PROMPTS.forEach((prompt, row) => {
          assert.deepEqual(batched.tokens[row], generate(model, [prompt], { maxNewTokens: 12 }).tokens[0], `${arch} row ${row}`);
        });
      });
    });
  }

  test('the same seed gives the same samples; another seed gives others', () => {
    withModel('llama', (model) => {
      const sample = (seed: number) => generate(model, PROMPTS, { maxNewTokens: 16, temperature: 1.5, seed }).tokens;
      assert.deepEqual(sample(1), sample(1));
      assert.notDeepEqual(sample(1), sample(2));
    });
  });

  test('sampling with top-k = 1 is greedy decoding', () => {
    withModel('gpt2', (model) => {
      const greedy = generate(model, PROMPTS, { maxNewTokens: 10 }).tokens;
      assert.deepEqual(generate(model, PROMPTS, { maxNewTokens: 10, temperature: 1.3, topK: 1, seed: 5 }).tokens, greedy);
    });
  });

  test('each log-prob is the sampled token\'s log-softmax under the raw logits', () => {
    withModel('qwen2', (model) => {
      const r = generate(model, PROMPTS, { maxNewTokens: 5, temperature: 1, seed: 3, returnLogits: true });
      r.tokens.forEach((ids, row) => ids.forEach((id, i) => {
        const logits = r.logits![row][i];
        assertClose([r.logprobs[row][i]], [logits[id] - logSumExp(logits)], { atol: 1e-6 }, `row ${row} step ${i}`);
      }));
    });
  });

  test('max_new_tokens is respected: every row gets exactly that many tokens and finishes at "length"', () => {
    withModel('gpt2', (model) => {
      const r = generate(model, PROMPTS, { maxNewTokens: 7 });
      assert.deepEqual(r.tokens.map((t) => t.length), [7, 7, 7]);
      assert.deepEqual(r.finishReasons, ['length', 'length', 'length']);
      assert.deepEqual(generate(model, PROMPTS, { maxNewTokens: 0 }).tokens, [[], [], []]);
    });
  });

  test('a row stops at its first EOS (kept), the other rows go on, and several EOS ids all count', () => {
    withModel('llama', (model) => {
      const free = generate(model, PROMPTS, { maxNewTokens: 12 }).tokens;
      const eos = free[0][3];
      const first = free[0].indexOf(eos);
      const r = generate(model, PROMPTS, { maxNewTokens: 12, eosTokenIds: eos });
      assert.deepEqual(r.tokens[0], free[0].slice(0, first + 1));
      assert.equal(r.finishReasons[0], 'eos');
      PROMPTS.forEach((_, row) => {
        const at = free[row].indexOf(eos);
        assert.deepEqual(r.tokens[row], at < 0 ? free[row] : free[row].slice(0, at + 1), `row ${row} stops at its own first EOS`);
      });
      const other = free[1][5];
      const both = generate(model, PROMPTS, { maxNewTokens: 12, eosTokenIds: [eos, other] });
      const stopAt = (row: number) => Math.min(...[eos, other].map((e) => free[row].indexOf(e)).filter((i) => i >= 0), free[row].length - 1);
      PROMPTS.forEach((_, row) => assert.deepEqual(both.tokens[row], free[row].slice(0, stopAt(row) + 1)));
    });
  });

  test('a stop string ends the row at the token that completes it', () => {
    withModel('qwen2', (model) => {
      const free = generate(model, [PROMPTS[0]], { maxNewTokens: 12 }).tokens[0];
      const stop = letters(free.slice(4, 6)); // the text of new tokens 4 and 5
      const end = letters(free).indexOf(stop) + stop.length; // one letter per token
      const r = generate(model, [PROMPTS[0]], { maxNewTokens: 12, stopStrings: [stop], decode: letters });
      assert.deepEqual(r.tokens[0], free.slice(0, end));
      assert.equal(r.finishReasons[0], 'stop');
      assert.throws(() => generate(model, [PROMPTS[0]], { stopStrings: ['x'] }), /decode callback/);
    });
  });

  test('onToken streams every new token, in order, row by row', () => {
    withModel('gpt2', (model) => {
      const streamed: number[][] = [[], [], []];
      const r = generate(model, PROMPTS, { maxNewTokens: 6, onToken: (row, id) => streamed[row].push(id) });
      assert.deepEqual(streamed, r.tokens);
    });
  });

  test('memory is flat: generating leaves no live tensor behind (the cache is disposed)', () => {
    withModel('llama', (model) => {
      generate(model, PROMPTS, { maxNewTokens: 4 }); // warm-up
      const before = memoryStats().liveBytes;
      generate(model, PROMPTS, { maxNewTokens: 20, temperature: 1, topP: 0.9 });
      generate(model, PROMPTS, { maxNewTokens: 5, useCache: false });
      assert.equal(memoryStats().liveBytes, before);
    });
  });

  test('bad inputs are refused with the reason', () => {
    withModel('gpt2', (model) => {
      assert.throws(() => generate(model, [[1, 99]]), /prompt 0, token 1 is 99, outside the vocabulary 0..40/);
      assert.throws(() => generate(model, [[]]), /prompt 0 is empty/);
      assert.throws(() => generate(model, [[1, 2]], { maxNewTokens: 63 }), /exceeds the model's 64 positions/);
      assert.throws(() => generate(model, [[1]], { topP: 0 }), /topP must be in \(0, 1\]/);
    });
  });
});

describe('sampling filters, by value', () => {
  test('top-p keeps the smallest set of most likely tokens whose probability sums to ≥ p', () => {
    const probs = [0.1, 0.4, 0.2, 0.3];
    assert.deepEqual(topPIds(probs, 0.4), [1]); // 0.4 ≥ 0.4 alone
    assert.deepEqual(topPIds(probs, 0.5), [1, 3]); // 0.4 < 0.5 ≤ 0.4 + 0.3
    assert.deepEqual(topPIds(probs, 0.75), [1, 2, 3]); // 0.7 < 0.75 ≤ 0.9
    assert.deepEqual(topPIds(probs, 0.95), [0, 1, 2, 3]);
    assert.deepEqual(topPIds(probs, 0.01), [1], 'at least one token is kept');
    assert.deepEqual(topPIds(probs, 1), [0, 1, 2, 3]);
    assert.deepEqual(topPIds([0.3, 0.2, 0.3, 0.2], 0.5), [0, 2], 'ties are ordered by id');
  });

  test('top-k keeps the k most likely tokens (ties at the cut go to the lower id)', () => {
    assert.deepEqual(topKIds([0.1, 0.4, 0.2, 0.3], 2), [1, 3]);
    assert.deepEqual(topKIds([0.1, 0.4, 0.2, 0.3], 0), [0, 1, 2, 3]);
    assert.deepEqual(topKIds([0.1, 0.4], 5), [0, 1]);
    assert.deepEqual(topKIds([0.25, 0.25, 0.25, 0.25], 3), [0, 1, 2]);
    assert.deepEqual(topKIds([0.1, 0.3, 0.3, 0.3], 2), [1, 2]);
  });

  test('the sampling distribution is softmax(logits / T), cut by top-k then top-p, renormalised', () => {
    const logits = [Math.log(1), Math.log(4), Math.log(2), Math.log(3)]; // probabilities 0.1, 0.4, 0.2, 0.3
    const all = samplingDistribution(logits, { temperature: 1 });
    assertClose(all.probs, [0.1, 0.4, 0.2, 0.3], { atol: 1e-12 });
    const hot = samplingDistribution(logits, { temperature: 0.5 }); // p ∝ p₀²: 1, 16, 4, 9 over 30
    assertClose(hot.probs, [1 / 30, 16 / 30, 4 / 30, 9 / 30], { atol: 1e-12 });
    const k3 = samplingDistribution(logits, { topK: 3 });
    assert.deepEqual(Array.from(k3.ids), [1, 2, 3]);
    assertClose(k3.probs, [4 / 9, 2 / 9, 3 / 9], { atol: 1e-12 });
    const k3p = samplingDistribution(logits, { topK: 3, topP: 0.7 }); // within the top 3: 4/9 < 0.7 ≤ 7/9
    assert.deepEqual(Array.from(k3p.ids), [1, 3]);
    assertClose(k3p.probs, [4 / 7, 3 / 7], { atol: 1e-12 });
  });

  test('sampleToken draws each token with its probability (20,000 draws, within 0.015)', () => {
    const rng = new Rng(11);
    const dist = { ids: Int32Array.from([7, 2, 5]), probs: Float64Array.from([0.5, 0.3, 0.2]) };
    const counts = new Map<number, number>();
    for (let i = 0; i < 20_000; i++) {
      const id = sampleToken(dist, rng);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    assertClose(Array.from(dist.ids, (id) => (counts.get(id) ?? 0) / 20_000), dist.probs, { atol: 0.015, rtol: 0 });
  });

  test('argmax takes the first of equal maxima, as torch.argmax', () => {
    assert.equal(argmax([1, 3, 3, 2]), 1);
  });
});
