// Model configs, weight loading and initialisation: config.json parsing (HF defaults, every problem in one error,
// unsupported types name the supported ones), loadStateDict's checks and HF checkpoint quirks, seeded HF-style init,
// and the pure mask and position helpers. Runs against the fixture checkpoints of models.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng, noGrad, tensor } from '../src/index.js';
import {
  ConfigError, StateDictError, causalPaddingMask, createModel, defaultPositions, loadStateDict, parseModelConfig, type CausalLM,
  type NamedArray,
} from '../src/models/index.js';
import { fixtureCheckpoint, fixtureConfig, loadFixtureModel } from './model-fixtures.js';

const TINY_LLAMA = { model_type: 'llama', vocab_size: 50, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4 };
const TINY_GPT2 = { model_type: 'gpt2', vocab_size: 50, n_positions: 32, n_embd: 64, n_layer: 4, n_head: 4 };

function throwsWith(fn: () => unknown, pieces: (string | RegExp)[]): void {
  let message = '';
  assert.throws(fn, (e: Error) => {
    message = e.message;
    return true;
  });
  for (const p of pieces) assert.match(message, typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
}

// ------------------------------------------------------------------------------------------------ configs
describe('config.json parsing', () => {
  test('an unsupported model_type is an error that lists every supported type and its HF class', () => {
    throwsWith(() => parseModelConfig({ model_type: 'mamba' }), ['"mamba" is not supported', 'gpt2 (GPT2LMHeadModel)', 'llama (LlamaForCausalLM)', 'qwen2 (Qwen2ForCausalLM)']);
    throwsWith(() => parseModelConfig({ architectures: ['BertModel'] }), ['BertModel', 'gpt2 (GPT2LMHeadModel)']);
  });

  test('without model_type, architectures[0] picks the architecture', () => {
    assert.equal(parseModelConfig({ architectures: ['Qwen2ForCausalLM'], hidden_size: 8, num_attention_heads: 2 }).modelType, 'qwen2');
  });

  test('absent or null fields take HF defaults: KV heads = heads, head_dim = hidden/heads, n_inner = 4·n_embd, ties', () => {
    const llama = parseModelConfig({ ...TINY_LLAMA, num_key_value_heads: null, head_dim: null });
    assert.ok(llama.modelType === 'llama');
    assert.deepEqual([llama.numKeyValueHeads, llama.headDim, llama.tieWordEmbeddings, llama.ropeTheta, llama.rmsNormEps, llama.ropeScaling], [4, 16, false, 10000, 1e-6, null]);
    const gpt2 = parseModelConfig({ model_type: 'gpt2', n_inner: null });
    assert.ok(gpt2.modelType === 'gpt2');
    assert.deepEqual([gpt2.vocabSize, gpt2.hiddenSize, gpt2.innerSize, gpt2.maxPositions, gpt2.tieWordEmbeddings, gpt2.activation], [50257, 768, 3072, 1024, true, 'gelu_new']);
  });

  test('every invalid field is listed in one error that names the source', () => {
    throwsWith(() => parseModelConfig({ ...TINY_LLAMA, hidden_size: '64', num_key_value_heads: 3, rms_norm_eps: -1, hidden_act: 'gelu' }, 'my/config.json'), [
      'my/config.json (llama)', '"hidden_size" must be an integer ≥ 1, got "64"', '"num_attention_heads" (4) must be a multiple of "num_key_value_heads" (3)',
      '"rms_norm_eps" must be a positive number, got -1', '"hidden_act" = "gelu" is not supported; use one of gelu_new',
    ]);
  });

  test('rope_scaling: legacy "type" is read; unknown types, missing fields and sliding-window Qwen2 are errors', () => {
    const linear = parseModelConfig({ ...TINY_LLAMA, rope_scaling: { type: 'linear', factor: 2 } });
    assert.ok(linear.modelType === 'llama');
    assert.deepEqual(linear.ropeScaling, { type: 'linear', factor: 2 });
    throwsWith(() => parseModelConfig({ ...TINY_LLAMA, rope_scaling: { rope_type: 'yarn', factor: 4 } }), ['"yarn" is not supported; use \'linear\' or \'llama3\'']);
    throwsWith(() => parseModelConfig({ ...TINY_LLAMA, rope_scaling: { rope_type: 'llama3', factor: 8 } }), ['"low_freq_factor" is required', '"original_max_position_embeddings" is required']);
    throwsWith(() => parseModelConfig({ ...TINY_LLAMA, model_type: 'qwen2', use_sliding_window: true }), ['"use_sliding_window" = true is not supported']);
    assert.throws(() => parseModelConfig([1, 2]), ConfigError);
  });
});

// ------------------------------------------------------------------------------------------------ loading
function logitsOf(model: CausalLM): number[] {
  return noGrad(() => Array.from(model.logits(model.forward(tensor([3, 17, 5, 30], [1, 4], 'int32'))).data));
}

describe('loadStateDict', () => {
  test('lists every missing, unexpected and wrongly shaped key in one error, and copies nothing', () => {
    const ckpt = fixtureCheckpoint('llama');
    ckpt.delete('model.layers.0.mlp.up_proj.weight');
    ckpt.delete('model.norm.weight');
    ckpt.set('model.layers.0.self_attn.q_proj.bias', { shape: [32], data: new Float32Array(32) });
    const k = ckpt.get('model.layers.1.self_attn.k_proj.weight')!;
    ckpt.set('model.layers.1.self_attn.k_proj.weight', { shape: [24, 16], data: k.data });
    const model = loadFixtureModel('llama');
    const before = logitsOf(model);
    assert.throws(() => loadStateDict(model, ckpt, 'broken.safetensors'), (e: unknown) => {
      assert.ok(e instanceof StateDictError);
      assert.deepEqual(e.missing, ['model.layers.0.mlp.up_proj.weight', 'model.norm.weight']);
      assert.deepEqual(e.unexpected, ['model.layers.0.self_attn.q_proj.bias']);
      assert.deepEqual(e.mismatched, [{ name: 'model.layers.1.self_attn.k_proj.weight', checkpoint: [24, 16], model: [16, 24] }]);
      assert.match(e.message, /^broken\.safetensors does not fit LlamaForCausalLM \(llama\)/);
      assert.match(e.message, /missing \(2\): model\.layers\.0\.mlp\.up_proj\.weight, model\.norm\.weight/);
      return true;
    });
    assert.deepEqual(logitsOf(model), before, 'a failed load leaves the weights untouched');
    model.dispose();
  });

  test('GPT-2 saved as a base model (no "transformer." prefix) with attn.bias / attn.masked_bias buffers loads', () => {
    const hfStyle = new Map<string, NamedArray>();
    for (const [name, t] of fixtureCheckpoint('gpt2')) hfStyle.set(name.replace(/^transformer\./, ''), t);
    for (const i of [0, 1]) {
      hfStyle.set(`h.${i}.attn.bias`, { shape: [1, 1, 16, 16], data: new Float32Array(256).fill(1) });
      hfStyle.set(`h.${i}.attn.masked_bias`, { shape: [], data: Float32Array.of(-1e4) });
    }
    const want = loadFixtureModel('gpt2');
    const got = createModel(fixtureConfig('gpt2'), new Rng(5));
    loadStateDict(got, hfStyle);
    assert.deepEqual(logitsOf(got), logitsOf(want));
    want.dispose();
    got.dispose();
  });

  test('a tied model accepts lm_head.weight equal to the embedding and rejects a different one', () => {
    const model = loadFixtureModel('qwen2');
    const ckpt = fixtureCheckpoint('qwen2');
    const embed = ckpt.get('model.embed_tokens.weight')!;
    ckpt.set('lm_head.weight', { shape: embed.shape, data: embed.data.slice() });
    loadStateDict(model, ckpt);
    const different = embed.data.slice();
    different[7] += 1;
    ckpt.set('lm_head.weight', { shape: embed.shape, data: different });
    throwsWith(() => loadStateDict(model, ckpt), ['lm_head.weight is in the checkpoint but differs from model.embed_tokens.weight', '"tie_word_embeddings": false']);
    model.dispose();
  });
});

// ------------------------------------------------------------------------------------------------ initialisation
function stats(data: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < data.length; i++) {
    s += data[i];
    s2 += data[i] * data[i];
  }
  const mean = s / data.length;
  return { mean, std: Math.sqrt(s2 / data.length - mean * mean) };
}

describe('initialisation', () => {
  test('createModel is seeded: the same seed gives identical weights, another seed different ones', () => {
    const cfg = parseModelConfig(TINY_LLAMA);
    const [a, b, c] = [createModel(cfg, new Rng(1)), createModel(cfg, new Rng(1)), createModel(cfg, new Rng(2))];
    const w = (m: CausalLM) => Array.from(m.lmHeadWeight.data);
    assert.deepEqual(w(a), w(b));
    assert.notDeepEqual(w(a), w(c));
    for (const m of [a, b, c]) m.dispose();
  });

  test('weights are N(0, initializer_range²), GPT-2 residual projections N(0, (range/√(2·n_layer))²), biases 0, norms 1', () => {
    for (const raw of [{ ...TINY_LLAMA, attention_bias: true, initializer_range: 0.05 }, { ...TINY_GPT2, initializer_range: 0.05 }]) {
      const model = createModel(parseModelConfig(raw), new Rng(3));
      for (const [name, p] of model.namedParameters()) {
        const { mean, std } = stats(p.data);
        if (/norm|ln_/.test(name)) assert.deepEqual([mean, std], [name.endsWith('bias') ? 0 : 1, 0], name);
        else if (name.endsWith('bias')) assert.deepEqual([mean, std], [0, 0], name);
        else {
          const want = /c_proj\.weight$/.test(name) ? 0.05 / Math.sqrt(2 * 4) : 0.05;
          assert.ok(Math.abs(std / want - 1) < 0.08 && Math.abs(mean) < 0.1 * want, `${name}: mean ${mean}, std ${std}, expected N(0, ${want}²)`);
        }
      }
      model.dispose();
    }
  });
});

// ------------------------------------------------------------------------------------------------ masks, positions
describe('attention masks and positions', () => {
  test('no padding mask, or one that is all ones, gives null (the engine\'s causal fast path)', () => {
    assert.equal(causalPaddingMask(undefined, 2, 3, 3), null);
    assert.equal(causalPaddingMask(new Uint8Array(6).fill(1), 2, 1, 3), null);
  });

  test('with 2 cached keys, query i sees keys j ≤ 2 + i that are not padding', () => {
    // B = 1, Tq = 2, Tk = 4; key 0 is padding.
    const mask = causalPaddingMask(Uint8Array.of(0, 1, 1, 1), 1, 2, 4);
    assert.deepEqual(Array.from(mask!), [0, 1, 1, 0, /* query at key 3: */ 0, 1, 1, 1]);
  });

  test('default positions: past + 0.. without a mask; cumsum(mask) − 1, clamped at 0, with one', () => {
    assert.deepEqual(Array.from(defaultPositions(undefined, 2, 2, 3)), [3, 4, 3, 4]);
    assert.deepEqual(Array.from(defaultPositions(Uint8Array.of(0, 0, 1, 1, 1, 1, 1, 1, 1, 0), 2, 5, 0)), [0, 0, 0, 1, 2, 0, 1, 2, 3, 3]);
    assert.deepEqual(Array.from(defaultPositions(Uint8Array.of(0, 1, 1, 1), 1, 1, 3)), [2]);
  });

  test('forward rejects a padding mask that does not cover every key, and GPT-2 positions past n_positions', () => {
    const gpt2 = loadFixtureModel('gpt2');
    const cache = gpt2.newCache();
    noGrad(() => gpt2.forward(tensor([1, 2], [1, 2], 'int32'), { cache }));
    throwsWith(() => gpt2.forward(tensor([3], [1, 1], 'int32'), { cache, attentionMask: Uint8Array.of(1) }), ['B·(past + T) = 1·(2 + 1) = 3 values, got 1']);
    throwsWith(() => gpt2.forward(tensor([3], [1, 1], 'int32'), { positions: Int32Array.of(16) }), ['position 16 (row 0) is past n_positions = 16']);
    gpt2.dispose();
  });
});
