// Prefix sharing (prompt | chosen | rejected in one sequence, the rejected part seeing only the prompt and itself) and
// padding-free packing (several sequences per row) give the padded path's results: the visibility rule and positions,
// the packed layout, sequence and per-token log-probs, every loss, every parameter gradient, the live and the
// precomputed reference, and short dpo and sft training runs, for GPT-2 (learned positions) and Llama (RoPE, GQA), on
// mixed prompt and completion lengths with a prompt-less pair and an empty completion.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Rng, add, attention, backward, currentBackend, noGrad, scale, scope, sum, tensor, zeroGrad, type Tensor } from '../src/index.js';
import { collatePreferenceBatch, type PreferenceBatch } from '../src/data/collate.js';
import { PACKED_SCORE_BUDGET, packPreferenceBatch, packRows } from '../src/data/pack.js';
import type { TokenizedExample } from '../src/data/tokenize.js';
import { truncateExamples } from '../src/data/truncate.js';
import { forwardPairs, type BatchLayout, type PairForward } from '../src/dpo/forward.js';
import { sequenceLogps } from '../src/dpo/logps.js';
import { computeLoss, defaultLossOptions, lossTypes, needsReference } from '../src/dpo/losses/index.js';
import { computeRefLogps, modelReference } from '../src/dpo/reference.js';
import { segmentMask, visiblePositions } from '../src/models/attention-mask.js';
import { createModel, type CausalLM } from '../src/models/index.js';
import { assertClose, randomTensor, type Tolerance } from './helpers.js';
import { fixtureConfig } from './model-fixtures.js';
import { FIXTURE_PAIRS, MODEL_FIXTURES, PLAIN_SGD, TRAINER_FIXTURES, quietTrain, readMetrics, readWeights, scratchDir, withoutTimings, writeJsonl } from './trainer-helpers.js';

// The same float32 arithmetic on differently shaped rows: GEMM blocking and summation order change, nothing else.
const F32: Tolerance = { atol: 1e-5, rtol: 1e-5 };

const layouts: [string, BatchLayout][] = [
  ['prefix sharing', { prefixSharing: true, paddingFree: false }],
  ['padding-free packing', { prefixSharing: false, paddingFree: true }],
  ['prefix sharing + packing', { prefixSharing: true, paddingFree: true }],
];

const example = (index: number, promptIds: number[], chosenIds: number[], rejectedIds: number[]): TokenizedExample =>
  ({ index, source: `test:${index}`, promptIds, chosenIds, rejectedIds, promptMismatch: false });
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => (from + i) % 37);

/**
 * Mixed lengths within GPT-2's 16 positions: short and long prompts and completions, one-token completions, a pair
 * without a prompt (its first completion tokens are not scored), and pairs cut by truncation (max_length 16: one
 * kept with a one-token chosen completion, one dropped with no room left), as the trainer sees them.
 */
function mixedExamples(): TokenizedExample[] {
  const raw = [
    example(0, [3, 17, 5], [30, 8, 1, 22], [12, 4]),
    example(1, [7, 9], [11], [13, 14, 15]),
    example(2, range(4, 8), range(12, 7), [19, 20]),
    example(3, [], [21, 22, 23], [24, 25]),
    example(4, [20], [21, 22], [23]),
    example(5, range(1, 12), range(13, 3), range(16, 4)),
    example(6, range(2, 15), range(5, 6), range(9, 3)), // cut to 1 + 1 completion tokens
    example(7, range(6, 16), [1, 2], [3, 4]), // no room: dropped
  ];
  const { examples, summary } = truncateExamples(raw, { maxLength: 16, maxPromptLength: 16 });
  assert.equal(summary.dropped.no_room_for_completion, 1, 'the last pair is dropped by truncation');
  return examples;
}

function withModel(name: 'gpt2' | 'llama', seed: number, fn: (model: CausalLM) => void): void {
  const model = createModel(fixtureConfig(name), new Rng(seed));
  try {
    scope(() => fn(model));
  } finally {
    model.dispose();
  }
}

describe('the visibility rule and positions of a segment layout', () => {
  test('prompt | chosen | rejected: the rejected tokens see the prompt and themselves, and continue the prompt\'s positions', () => {
    // Row: prompt p0 p1 | chosen c0 c1 | rejected r0 r1 r2, then one padding token.
    const ids = Int32Array.from([0, 0, 1, 1, 2, 2, 2, -1]);
    const mask = segmentMask({ ids, parents: Int32Array.from([-1, 0, 0]) }, 1, 8);
    const rows = Array.from({ length: 8 }, (_, i) => Array.from(mask.subarray(i * 8, i * 8 + 8)).join(''));
    assert.deepEqual(rows, ['10000000', '11000000', '11100000', '11110000', '11001000', '11001100', '11001110', '00000000']);
    assert.deepEqual(Array.from(visiblePositions(mask, 1, 8)), [0, 1, 2, 3, 2, 3, 4, 0]);
  });
  test('packed sequences are block-diagonal causal and each restarts at position 0', () => {
    const ids = Int32Array.from([0, 0, 0, 1, 1, 2]);
    const mask = segmentMask({ ids, parents: Int32Array.from([-1, -1, -1]) }, 1, 6);
    const rows = Array.from({ length: 6 }, (_, i) => Array.from(mask.subarray(i * 6, i * 6 + 6)).join(''));
    assert.deepEqual(rows, ['100000', '110000', '111000', '000100', '000110', '000001']);
    assert.deepEqual(Array.from(visiblePositions(mask, 1, 6)), [0, 1, 2, 0, 1, 0]);
  });
  test('a model given segments without positions derives them from the visible keys; a cache or a padding mask alongside is refused', () => {
    withModel('llama', 5, (model) => {
      const batch = collatePreferenceBatch(mixedExamples(), { padTokenId: 0 });
      const packed = packPreferenceBatch(batch, { prefixSharing: true, paddingFree: true });
      const ids = tensor(packed.inputIds, [packed.rows, packed.T], 'int32');
      const given = model.forward(ids, { segments: packed.segments, positions: packed.positions }).data;
      assert.deepEqual(Array.from(model.forward(ids, { segments: packed.segments }).data), Array.from(given));
      assert.throws(() => model.forward(ids, { segments: packed.segments, cache: model.newCache() }), /segments replace attentionMask and take no cache/);
      assert.throws(() => model.forward(ids, { segments: packed.segments, attentionMask: new Uint8Array(packed.rows * packed.T).fill(1) }), /segments replace attentionMask/);
      assert.throws(() => model.forward(ids, { segments: { ids: packed.segments.ids, parents: Int32Array.from([1, 0]) } }), /segments\.ids\[\d+\] = \d+ is not −1/);
    });
  });
  test('float64 attention over prompt | chosen | rejected equals attention over the padded chosen and rejected rows to 1e-12', () => {
    const rng = new Rng(9);
    const [p, c, r, h, d] = [3, 4, 2, 2, 5];
    const t = p + c + r;
    const [q, k, v] = [0, 1, 2].map(() => randomTensor(rng, [1, t, h, d]));
    const mask = segmentMask({ ids: Int32Array.from([0, 0, 0, 1, 1, 1, 1, 2, 2]), parents: Int32Array.from([-1, 0, 0]) }, 1, t);
    const shared = attention(q, k, v, { mask }).data; // (1, T, H, D)
    // The same tokens as two causal rows: prompt ++ chosen and prompt ++ rejected.
    const rowOf = (x: Tensor, picks: number[]) => tensor(picks.flatMap((i) => Array.from(x.data.subarray(i * h * d, (i + 1) * h * d))), [1, picks.length, h, d], 'float64');
    for (const picks of [[0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 7, 8]]) {
      const alone = attention(rowOf(q, picks), rowOf(k, picks), rowOf(v, picks)).data;
      picks.forEach((i, n) => assertClose(shared.subarray(i * h * d, (i + 1) * h * d), alone.subarray(n * h * d, (n + 1) * h * d), { atol: 1e-12, rtol: 1e-12 }, `token ${i}`));
    }
  });
});

describe('the packed layouts of a batch', () => {
  const batch = collatePreferenceBatch(mixedExamples(), { padTokenId: 0 });
  const paddedTokens = 2 * batch.B * batch.T;
  for (const [name, layout] of layouts) {
    test(`${name}: each scored token is the padded batch's target, predicted at the same position of the same sequence`, () => {
      const packed = packPreferenceBatch(batch, layout);
      const expected: [number, number, number][] = []; // (sequence, position, target) of the padded batch, in order
      batch.targets.forEach((target, i) => { if (target !== -100) expected.push([Math.floor(i / batch.T), i % batch.T, target]); });
      const { index, target, sequence, position } = packed.scored;
      assert.deepEqual(Array.from(target, (x, n) => [sequence[n], position[n], x]), expected);
      // The scoring token sits at that position, and the target follows it in its sequence.
      index.forEach((at, n) => assert.equal(packed.positions[at], position[n], `entry ${n}: position id`));
      const realTokens = Array.from(packed.segments.ids).filter((s) => s >= 0).length;
      const sequenceTokens = batch.attentionMask.reduce((a, m) => a + m, 0);
      const promptTokens = batch.promptLengths.subarray(0, batch.B).reduce((a, n) => a + n, 0);
      assert.equal(realTokens, layout.prefixSharing ? sequenceTokens - promptTokens : sequenceTokens, 'each prompt is run once under prefix sharing');
      assert.ok(packed.rows * packed.T < paddedTokens, `${packed.rows}×${packed.T} tokens run, padded ${paddedTokens}`);
      if (layout.paddingFree) assert.ok(packed.rows < (layout.prefixSharing ? batch.B : 2 * batch.B), 'several units share a row');
    });
  }
  test('packRows: full-length sequences keep a row each; short ones share rows; never more rows than the score budget allows', () => {
    assert.deepEqual(packRows([128, 128, 128, 128], 4 * 128 * 128), [0, 1, 2, 3], 'two rows of 256 would run as many tokens');
    const lengths = [120, 30, 90, 40, 60, 128, 20, 70];
    const rowOf = packRows(lengths, 8 * 128 * 128);
    const total = lengths.reduce((a, n) => a + n, 0);
    const rows = Math.max(...rowOf) + 1;
    assert.ok(rows <= Math.ceil((total * total) / (PACKED_SCORE_BUDGET * 8 * 128 * 128)), `${rows} rows`);
    const fill = new Array<number>(rows).fill(0);
    rowOf.forEach((r, u) => { fill[r] += lengths[u]; });
    assert.ok(rows * Math.max(...fill) < 8 * 128, `${rows} rows of ${Math.max(...fill)} tokens, padded 8 × 128`);
    assert.deepEqual(packRows([], 0), []);
  });

  test('chosen only (the sft loss): only the B chosen sequences are laid out and scored', () => {
    const packed = packPreferenceBatch(batch, { prefixSharing: true, paddingFree: true, chosenOnly: true });
    assert.equal(packed.sequences, batch.B);
    assert.ok(packed.scored.sequence.every((s) => s < batch.B));
    assert.equal(packed.scored.target.length, Array.from(batch.targets.subarray(0, batch.B * batch.T)).filter((x) => x !== -100).length);
  });
});

/** PairForward's numbers as plain arrays. */
const numbers = (f: PairForward) => ({
  chosen: Array.from(f.chosen.data), rejected: Array.from(f.rejected.data), chosenLength: Array.from(f.chosenLength.data),
  rejectedLength: Array.from(f.rejectedLength.data), pairWeights: f.pairWeights ? Array.from(f.pairWeights.data) : [],
  logits: [f.chosenLogitSum, f.rejectedLogitSum], entries: [f.chosenLogitEntries, f.rejectedLogitEntries, f.numTokens],
});

function samePairForward(actual: PairForward, expected: PairForward, what: string): void {
  const [a, e] = [numbers(actual), numbers(expected)];
  for (const key of Object.keys(e) as (keyof typeof e)[]) {
    assertClose(a[key], e[key], key === 'logits' ? { atol: 1e-4, rtol: 1e-5 } : F32, `${what}: ${key}`);
  }
}

for (const arch of ['gpt2', 'llama'] as const) {
  describe(`${arch}: the packed layouts give the padded path's results (${currentBackend().name} backend)`, () => {
    // A batch with an empty rejected completion too (collate allows it; truncation would drop it): 0 tokens, sum 0.
    const batches: [string, PreferenceBatch][] = [
      ['mixed lengths', collatePreferenceBatch(mixedExamples(), { padTokenId: 0 })],
      ['an empty completion', collatePreferenceBatch([example(0, [5, 6], [7, 8], []), example(1, [9], [10, 11, 12], [13])], { padTokenId: 0 })],
    ];
    for (const [name, layout] of layouts) {
      test(`${name}: sequence log-probs, per-token log-probs and positions, counts and logit sums`, () => {
        withModel(arch, 3, (model) => {
          for (const [what, batch] of batches) {
            const padded = sequenceLogps(model, batch, { chunkRows: 5 });
            const packed = sequenceLogps(model, packPreferenceBatch(batch, layout), { chunkRows: 5 });
            assertClose(packed.sums.data, padded.sums.data, F32, `${what}: sums`);
            assertClose(packed.tokenLogps.data, padded.tokenLogps.data, F32, `${what}: per-token log-probs`);
            assert.deepEqual(Array.from(packed.counts), Array.from(padded.counts), `${what}: counts`);
            assert.deepEqual(Array.from(packed.tokenRow), Array.from(padded.tokenRow), `${what}: token rows`);
            assert.deepEqual(Array.from(packed.tokenPosition), Array.from(padded.tokenPosition), `${what}: token positions`);
            assertClose(packed.logitSums, padded.logitSums, { atol: 1e-4, rtol: 1e-5 }, `${what}: logit sums`);
          }
        });
      });

      test(`${name}: forwardPairs (plain, LD-DPO, WPO, chosen only), every loss type, and every parameter gradient`, () => {
        withModel(arch, 3, (policy) => withModel(arch, 4, (reference) => {
          const batch = batches[0][1];
          const params = [...policy.namedParameters()];
          const base = { ldAlpha: null, useWeighting: false, chosenOnly: false };
          for (const variant of [base, { ...base, ldAlpha: 0.3 }, { ...base, useWeighting: true }, { ...base, chosenOnly: true }]) {
            const what = JSON.stringify(variant);
            samePairForward(forwardPairs(policy, batch, { ...variant, layout }), forwardPairs(policy, batch, variant), what);
          }
          // One objective over every loss type (distinct weights), so one backward checks each loss's gradient path.
          const objective = (l: BatchLayout | undefined) => {
            const ref = noGrad(() => forwardPairs(reference, batch, { ...base, layout: l }));
            const pol = forwardPairs(policy, batch, { ...base, layout: l });
            const lp = { chosen: pol.chosen, rejected: pol.rejected, refChosen: ref.chosen, refRejected: ref.rejected, chosenLength: pol.chosenLength, rejectedLength: pol.rejectedLength };
            const each = lossTypes.map((type) => computeLoss([type], null, needsReference(type) ? lp : { ...lp, refChosen: null, refRejected: null }, defaultLossOptions).losses);
            backward(each.map((losses, i) => scale(sum(losses), 1 + 0.1 * i)).reduce((a, b) => add(a, b)));
            return each.map((losses) => Array.from(losses.data));
          };
          const paddedLosses = objective(undefined);
          const paddedGrads = params.map(([, p]) => Array.from(p.grad!.data));
          zeroGrad(params.map(([, p]) => p));
          const packedLosses = objective(layout);
          lossTypes.forEach((type, i) => assertClose(packedLosses[i], paddedLosses[i], F32, `${type} losses`));
          params.forEach(([pname, p], i) => assertClose(p.grad!.data, paddedGrads[i], F32, `d Σ losses / d ${pname}`));
          zeroGrad(params.map(([, p]) => p));
        }));
      });

      test(`${name}: the live reference and the precomputed reference log-probs`, () => {
        withModel(arch, 4, (model) => {
          const examples = mixedExamples();
          const batch = collatePreferenceBatch(examples, { padTokenId: 0 });
          const [live, livePadded] = [modelReference(model, null, layout), modelReference(model, null)].map((r) => r.logps('train', batch)!);
          assertClose(live.chosen.data, livePadded.chosen.data, F32, 'live reference chosen');
          assertClose(live.rejected.data, livePadded.rejected.data, F32, 'live reference rejected');
          const opts = { batchSize: 3, padTokenId: 0, ldAlpha: null };
          const cached = computeRefLogps(model, examples, { ...opts, layout });
          const cachedPadded = computeRefLogps(model, examples, opts);
          for (const e of examples) {
            assertClose([cached.get(e.index)!.chosen, cached.get(e.index)!.rejected], [cachedPadded.get(e.index)!.chosen, cachedPadded.get(e.index)!.rejected], F32, `precomputed, example ${e.index}`);
          }
        });
      });
    }
  });
}

describe(`the trainer options padding_free and prefix_sharing (${currentBackend().name} backend)`, () => {
  const scratch = scratchDir('prefix-packing');
  after(() => rmSync(scratch, { recursive: true, force: true }));
  const base = {
    model: join(MODEL_FIXTURES, 'gpt2'), refModel: join(TRAINER_FIXTURES, 'gpt2-ref'), dataset: FIXTURE_PAIRS, evalDataset: FIXTURE_PAIRS,
    evalStrategy: 'steps' as const, evalSteps: 2, learningRate: 0.5, maxSteps: 3, perDeviceTrainBatchSize: 4, loggingSteps: 1, saveSteps: 0,
    ...PLAIN_SGD, // SGD: AdamW would blow round-off in gradients that are 0 in exact arithmetic (GPT-2's key bias) up to ±lr
  };
  test('sft with padding_free (chosen sequences only, packed) logs the same metrics and saves the same weights, prompt scored or not', async () => {
    const pairs = readFileSync(FIXTURE_PAIRS, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt_input_ids: number[]; chosen_input_ids: number[] });
    const dataset = writeJsonl(join(scratch, 'sft.jsonl'), pairs.map((p) => ({ prompt_input_ids: p.prompt_input_ids, completion_input_ids: p.chosen_input_ids })));
    for (const completionOnlyLoss of [true, false]) {
      const sft = { ...base, task: 'sft' as const, lossType: ['sft' as const], refModel: null, dataset, evalDataset: null, evalStrategy: 'no' as const, maxPromptLength: null, completionOnlyLoss };
      const [plain, fast] = [join(scratch, `sft-plain-${completionOnlyLoss}`), join(scratch, `sft-fast-${completionOnlyLoss}`)];
      await quietTrain({ ...sft, outputDir: plain });
      await quietTrain({ ...sft, outputDir: fast, paddingFree: true });
      const [a, b] = [withoutTimings(readMetrics(fast)), withoutTimings(readMetrics(plain))];
      a.forEach((record, i) => { for (const key of Object.keys(b[i])) assertClose([record[key]], [b[i][key]], { atol: 1e-5, rtol: 1e-5 }, `sft metrics line ${i}: ${key}`); });
      const [wa, wb] = [readWeights(fast), readWeights(plain)];
      for (const [name, w] of wb) assertClose(wa.get(name)!, w, { atol: 1e-5, rtol: 1e-4 }, `sft saved ${name}`);
    }
  });

  for (const precomputeRefLogProbs of [false, true]) {
    test(`3 SGD steps with both levers log the same metrics and save the same weights (${precomputeRefLogProbs ? 'precomputed' : 'live'} reference)`, async () => {
      const plain = join(scratch, `plain-${precomputeRefLogProbs}`);
      const fast = join(scratch, `fast-${precomputeRefLogProbs}`);
      await quietTrain({ ...base, precomputeRefLogProbs, outputDir: plain });
      await quietTrain({ ...base, precomputeRefLogProbs, outputDir: fast, paddingFree: true, prefixSharing: true });
      const [a, b] = [withoutTimings(readMetrics(fast)), withoutTimings(readMetrics(plain))];
      assert.equal(a.length, b.length);
      a.forEach((record, i) => {
        assert.deepEqual(Object.keys(record).sort(), Object.keys(b[i]).sort());
        for (const key of Object.keys(record)) assertClose([record[key]], [b[i][key]], { atol: 1e-4, rtol: 1e-4 }, `metrics line ${i}: ${key}`);
      });
      const [wa, wb] = [readWeights(fast), readWeights(plain)];
      for (const [name, w] of wb) assertClose(wa.get(name)!, w, { atol: 1e-5, rtol: 1e-4 }, `saved ${name}`);
    });
  }
});
