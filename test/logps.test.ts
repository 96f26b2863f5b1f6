// dpo/logps against the float64 PyTorch fixture (test/fixtures/dpo, made by scripts/fixtures/make_dpo_fixtures.py):
// per-example sequence log-probs, per-token log-probs and TRL's mean logits of a padded [chosen; rejected] batch, for
// GPT-2 and Llama policies and their references. Then: the chunked head equals the full-vocabulary head in value and
// gradient at any chunk size, and per-token rewards are β·(log π − log π_ref).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Rng, backward, currentBackend, logSoftmaxGather, memoryStats, mul, noGrad, resetPeakMemory, scope, sum, tensor, zeroGrad } from '../src/index.js';
import { loadPretrained } from '../src/io/pretrained.js';
import { concatenatedLogps, sequenceLogps, tokenRewards } from '../src/dpo/logps.js';
import { createModel, parseModelConfig, type CausalLM } from '../src/models/index.js';
import { assertClose, type Tolerance } from './helpers.js';
import { MODEL_FIXTURES, fixtureConfig } from './model-fixtures.js';
import { DPO_FIXTURES, collatePairs, readDpoExpected, readPairs, type SideLogps } from './dpo-fixtures.js';

function withModels(dirs: string[], fn: (...models: CausalLM[]) => void): void {
  const models = dirs.map((d) => loadPretrained(d).model);
  try {
    scope(() => fn(...models));
  } finally {
    for (const m of models) m.dispose();
  }
}

// Sums of up to 8 float32 log-probs of size ~5: float32 rounding of the forward stays below 1e-4 absolute.
const FLOAT32: Tolerance = { atol: 1e-4, rtol: 1e-5 };
// The same float32 computation regrouped (chunking): agreement to float32 rounding.
const REGROUPED: Tolerance = { atol: 1e-5, rtol: 1e-5 };

function checkSide(model: CausalLM, expected: SideLogps, what: string, chunkRows?: number): void {
  const pairs = readPairs();
  const lp = concatenatedLogps(model, collatePairs(pairs), { chunkRows });
  assertClose(lp.chosen.data, expected.chosen, FLOAT32, `${what} Σ log π(chosen)`);
  assertClose(lp.rejected.data, expected.rejected, FLOAT32, `${what} Σ log π(rejected)`);
  assert.deepEqual(Array.from(lp.chosenLength.data), expected.chosen_length, `${what} chosen lengths`);
  assert.deepEqual(Array.from(lp.rejectedLength.data), expected.rejected_length, `${what} rejected lengths`);
  assertClose(lp.chosenAverage.data, expected.chosen.map((s, i) => s / expected.chosen_length[i]), FLOAT32, `${what} length-averaged chosen`);
  assertClose(lp.rows.tokenLogps.data, [...expected.chosen_tokens.flat(), ...expected.rejected_tokens.flat()], FLOAT32, `${what} per-token log-probs`);
  assertClose(lp.rows.logitSums, [...expected.chosen_logit_sums, ...expected.rejected_logit_sums], { atol: 1e-3, rtol: 1e-5 }, `${what} logit sums`);
  assertClose([lp.meanChosenLogits, lp.meanRejectedLogits], [expected.mean_chosen_logits, expected.mean_rejected_logits], { atol: 1e-6, rtol: 1e-4 }, `${what} TRL logits/chosen, logits/rejected`);
}

describe(`sequence log-probs against PyTorch (${currentBackend().name} backend)`, () => {
  const ex = readDpoExpected();
  const gpt2 = join(MODEL_FIXTURES, 'gpt2');
  test('GPT-2 policy and its perturbed reference: Σ log π per example, per token, and mean logits match', () => {
    withModels([gpt2, join(DPO_FIXTURES, 'gpt2-ref')], (policy, reference) => {
      checkSide(policy, ex.gpt2.policy, 'gpt2');
      checkSide(reference, ex.gpt2.reference, 'gpt2-ref');
    });
  });
  test('Llama policy and Qwen2 reference (same vocabulary) match, with a chunk of 3 rows', () => {
    withModels([join(MODEL_FIXTURES, 'llama'), join(MODEL_FIXTURES, 'qwen2')], (policy, reference) => {
      checkSide(policy, ex.llama_qwen2.policy, 'llama', 3);
      checkSide(reference, ex.llama_qwen2.reference, 'qwen2', 3);
    });
  });
  test('the batch covers the fixture\'s edge cases: a one-token completion and one of max_length', () => {
    const pairs = readPairs();
    assert.ok(pairs.some((p) => p.chosen_input_ids.length === 1) && pairs.some((p) => p.rejected_input_ids.length === 1));
    assert.ok(pairs.some((p) => p.prompt_input_ids.length + p.chosen_input_ids.length === ex.max_length));
  });
  test('per-token rewards are β·(log π − log π_ref) for every completion token', () => {
    withModels([gpt2, join(DPO_FIXTURES, 'gpt2-ref')], (policy, reference) => {
      const batch = collatePairs(readPairs());
      const r = tokenRewards(sequenceLogps(policy, batch).tokenLogps.data, sequenceLogps(reference, batch).tokenLogps.data, 0.5);
      const flat = (s: SideLogps) => [...s.chosen_tokens.flat(), ...s.rejected_tokens.flat()];
      const [p, q] = [flat(ex.gpt2.policy), flat(ex.gpt2.reference)];
      assertClose(r, p.map((v, i) => 0.5 * (v - q[i])), FLOAT32, 'token rewards');
    });
  });
});

describe(`the chunked LM head (${currentBackend().name} backend)`, () => {
  for (const chunkRows of [1, 4, 1000]) {
    test(`chunks of ${chunkRows} rows: sums and every parameter gradient equal the full (2B, T, V) log-softmax path`, () => {
      const model = createModel(fixtureConfig('llama'), new Rng(3));
      try {
        scope(() => {
          const batch = collatePairs(readPairs());
          const params = [...model.namedParameters()];
          // Full path: logits for every position, log-softmax-gather with −100 ignored, summed per row.
          const [rows, t] = [2 * batch.B, batch.T];
          const logits = model.logits(model.forward(tensor(batch.inputIds, [rows, t], 'int32'), { attentionMask: batch.attentionMask }));
          const full = sum(logSoftmaxGather(logits, tensor(batch.targets, [rows, t], 'int32')), 1); // (2B)
          const w = tensor(Array.from({ length: rows }, (_, i) => 1 + 0.25 * i), [rows]);
          backward(sum(mul(full, w))); // distinct row weights, so a row mix-up shows
          const fullGrads = params.map(([, p]) => Array.from(p.grad!.data));
          zeroGrad(params.map(([, p]) => p));
          const chunked = sequenceLogps(model, batch, { chunkRows });
          assertClose(chunked.sums.data, full.data, REGROUPED, 'per-row sums');
          backward(sum(mul(chunked.sums, w)));
          params.forEach(([name, p], i) => assertClose(p.grad!.data, fullGrads[i], REGROUPED, `d/d ${name}`));
          zeroGrad(params.map(([, p]) => p));
        });
      } finally {
        model.dispose();
      }
    });
  }
});

describe(`memory of the chunked LM head (${currentBackend().name} backend)`, () => {
  // A GPT-2 whose (V, C) head dwarfs everything else, so logits dominate the peak: V = 4000, C = 8, one layer.
  const config = parseModelConfig({ model_type: 'gpt2', vocab_size: 4000, n_positions: 16, n_embd: 8, n_layer: 1, n_head: 2 }, 'wide-vocab');
  const peakDuring = (fn: () => void): number => {
    const before = memoryStats().liveBytes;
    resetPeakMemory();
    scope(fn);
    return memoryStats().peakLiveBytes - before;
  };
  test('no (2B, T, V) logits: under noGrad the peak is a chunk\'s logits; with grad, the N completion rows\' logits', () => {
    const model = createModel(config, new Rng(5));
    try {
      const batch = collatePairs(readPairs());
      const v = 4000;
      const fullLogitsBytes = 2 * batch.B * batch.T * v * 4;
      const n = Array.from(batch.targets).filter((x) => x !== -100).length;
      const inference = peakDuring(() => noGrad(() => { sequenceLogps(model, batch, { chunkRows: 4 }); }));
      assert.ok(inference < fullLogitsBytes / 4, `noGrad peak ${inference} B should be far below the full logits' ${fullLogitsBytes} B`);
      const training = peakDuring(() => { backward(sum(sequenceLogps(model, batch, { chunkRows: 4 }).sums)); });
      assert.ok(training < fullLogitsBytes, `with grad the peak ${training} B should stay below the full logits' ${fullLogitsBytes} B`);
      assert.ok(training > n * v * 4, `with grad the N·V = ${n}·${v} logits are kept for backward (peak ${training} B)`);
      zeroGrad(model.parameters());
    } finally {
      model.dispose();
    }
  });
});
