// The training loop's claims on tiny models: exact gradient accumulation (8×1 = 2×4 = 1×8 = 3×3 with a short last
// micro-batch, also for the token-mean NLL of sft), bit-identical reruns with one seed, bit-identical resumption
// (weights and metrics, TR-DPO's moving reference included), the precomputed-reference cache (hit, then rebuilt when
// the reference changes), reference-free losses loading no reference, and the per-step arithmetic helpers.
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Rng, tensor } from '../src/index.js';
import { defaultLossOptions } from '../src/dpo/losses/index.js';
import { nllCoefficient, stepPairLosses } from '../src/dpo/step-loss.js';
import { planRun, shuffledOrder, stepMicroBatches } from '../src/dpo/train-data.js';
import type { TrainConfig } from '../src/dpo/trainer-config.js';
import { assertClose } from './helpers.js';
import {
  FIXTURE_PAIRS, MODEL_FIXTURES, PLAIN_SGD, TRAINER_FIXTURES, quietTrain, randomPairs, readMetrics, readWeights, sameWeights, scratchDir,
  withoutTimings, writeJsonl,
} from './trainer-helpers.js';

const scratch = scratchDir('trainer');
after(() => rmSync(scratch, { recursive: true, force: true }));
const GPT2 = join(MODEL_FIXTURES, 'gpt2');
const GPT2_REF = join(TRAINER_FIXTURES, 'gpt2-ref');
const PAIRS8 = writeJsonl(join(scratch, 'pairs8.jsonl'), randomPairs(8, 37, 5));
let runs = 0;
const out = (name: string) => join(scratch, `${name}-${runs++}`);

/** The largest |a − b| over all weights, relative to the largest |update| of the reference run. */
function maxDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let worst = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  }
  return worst;
}

describe('gradient accumulation is exact: the update is ∇ of the mean loss over the step\'s pairs', () => {
  for (const lossType of [['sigmoid'], ['sigmoid', 'sft']] as const) {
    test(`${lossType.join(',')}: 8×1 = 2×4 = 1×8 = 3×3 (micro-batches 3, 3, 2) within float32 round-off`, async () => {
      const base: Partial<TrainConfig> = { ...PLAIN_SGD, model: GPT2, refModel: GPT2_REF, dataset: PAIRS8, learningRate: 0.5, beta: 0.5, maxSteps: 1, saveSteps: 0, lossType: [...lossType] };
      const whole = join(out('acc'), 'x');
      await quietTrain({ ...base, outputDir: whole, perDeviceTrainBatchSize: 8, gradientAccumulationSteps: 1 });
      const reference = readWeights(whole);
      const before = readWeights(GPT2);
      const updateSize = maxDifference(reference, before);
      assert.ok(updateSize > 1e-3, `the step moves the weights (max |Δ| ${updateSize})`);
      for (const [bs, ga] of [[2, 4], [1, 8], [3, 3]]) {
        const dir = out(`acc-${bs}x${ga}`);
        await quietTrain({ ...base, outputDir: dir, perDeviceTrainBatchSize: bs, gradientAccumulationSteps: ga });
        const diff = maxDifference(readWeights(dir), reference);
        assert.ok(diff <= 1e-5 * Math.max(1, updateSize) + 2e-6, `${bs}×${ga}: max |w − w(8×1)| = ${diff} (update ${updateSize})`);
        assertClose([readMetrics(dir)[0].loss], [readMetrics(whole)[0].loss], { atol: 1e-6, rtol: 1e-6 }, `${bs}×${ga}: logged loss`);
      }
    });
  }

  test('stepPairLosses re-normalises the token-mean NLL from the micro-batch to the step', () => {
    // Two pairs of a 5-pair step with 20 chosen tokens; this micro-batch has 6 of them. sft: losses = −logπ·B_m/T_m.
    const chosen = tensor([-3, -9], [2], 'float64');
    const micro = tensor([3 * 2 / 6, 9 * 2 / 6], [2], 'float64');
    const c = nllCoefficient(['sft'], null, defaultLossOptions);
    const step = stepPairLosses(micro, chosen, null, c, { pairs: 2, chosenTokens: 6, stepPairs: 5, stepChosenTokens: 20 });
    assertClose(step.data, [3 * 5 / 20, 9 * 5 / 20], { atol: 1e-12 }, 'per-pair NLL over the step');
    assert.equal(nllCoefficient(['sigmoid', 'sft', 'cpo'], [1, 0.5, 2], { ...defaultLossOptions, cpoAlpha: 0.25 }), 0.5 + 2 * 0.25);
  });
});

describe('the run plan and the data order', () => {
  test('planRun: steps per epoch round up, max_steps wins, fractional epochs round up', () => {
    assert.deepEqual(planRun(10, { perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 2, maxSteps: -1, numTrainEpochs: 3 }), { pairsPerStep: 4, stepsPerEpoch: 3, totalSteps: 9 });
    assert.equal(planRun(10, { perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 2, maxSteps: 7, numTrainEpochs: 3 }).totalSteps, 7);
    assert.equal(planRun(10, { perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 1, maxSteps: -1, numTrainEpochs: 0.5 }).totalSteps, 2);
  });
  test('stepMicroBatches: the last step of an epoch takes the remainder; shuffledOrder is a seeded permutation', () => {
    assert.deepEqual(stepMicroBatches(10, 4, { perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 2 }), [[8, 9]]);
    assert.deepEqual(stepMicroBatches(7, 0, { perDeviceTrainBatchSize: 3, gradientAccumulationSteps: 2 }), [[0, 1, 2], [3, 4, 5]]);
    const a = shuffledOrder(50, new Rng(3));
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
    assert.deepEqual(shuffledOrder(50, new Rng(3)), a);
    assert.notDeepEqual(shuffledOrder(50, new Rng(4)), a);
  });
});

describe('reproducible runs', () => {
  const adamw: Partial<TrainConfig> = {
    model: GPT2, refModel: GPT2_REF, dataset: PAIRS8, learningRate: 1e-2, lrSchedulerType: 'constant', warmupSteps: 2, beta: 0.5,
    perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 1, loggingSteps: 1, seed: 7,
  };

  test('the same seed gives bit-identical saved weights and metrics; another seed does not', async () => {
    const [a, b, c] = [out('seed'), out('seed'), out('seed')];
    await quietTrain({ ...adamw, outputDir: a, maxSteps: 6, saveSteps: 0 });
    await quietTrain({ ...adamw, outputDir: b, maxSteps: 6, saveSteps: 0 });
    await quietTrain({ ...adamw, outputDir: c, maxSteps: 6, saveSteps: 0, seed: 8 });
    assert.ok(sameWeights(readWeights(a), readWeights(b)), 'seed 7 twice: identical weights');
    assert.deepEqual(withoutTimings(readMetrics(a)), withoutTimings(readMetrics(b)));
    assert.ok(!sameWeights(readWeights(a), readWeights(c)), 'seed 8 shuffles differently');
  });

  test('interrupted at step 3 (--max-steps 3) and resumed to 6 equals an uninterrupted run, bit for bit, with TR-DPO', async () => {
    const trdpo: Partial<TrainConfig> = { ...adamw, syncRefModel: true, refModelSyncSteps: 2, refModelMixupAlpha: 0.5, saveSteps: 2, evalDataset: FIXTURE_PAIRS, evalStrategy: 'steps', evalSteps: 2 };
    const whole = out('resume-whole');
    const parts = out('resume-parts');
    await quietTrain({ ...trdpo, outputDir: whole, maxSteps: 6 });
    await quietTrain({ ...trdpo, outputDir: parts, maxSteps: 3 }); // checkpoint-2 and, at its last step, checkpoint-3
    const resumed = await quietTrain({ ...trdpo, outputDir: parts, maxSteps: 6, resumeFromCheckpoint: 'latest' });
    assert.ok(resumed.log.some((l) => l.includes('resuming from') && l.includes('checkpoint-3')), resumed.log.join('\n'));
    assert.ok(sameWeights(readWeights(parts), readWeights(whole)), 'final weights');
    assert.deepEqual(withoutTimings(readMetrics(parts)), withoutTimings(readMetrics(whole)));
    assert.ok(readMetrics(whole).some((r) => 'eval_loss' in r), 'eval lines are part of the comparison');
    assert.ok(sameWeights(readWeights(join(parts, 'checkpoint-6')), readWeights(join(whole, 'checkpoint-6'))), 'checkpoint-6');
  });

  test('save_total_limit keeps the newest checkpoints', async () => {
    const dir = out('limit');
    await quietTrain({ ...adamw, outputDir: dir, maxSteps: 5, saveSteps: 1, saveTotalLimit: 2 });
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('checkpoint-')).sort(), ['checkpoint-4', 'checkpoint-5']);
  });
});

describe('LD-DPO and WPO in the loop', () => {
  const one: Partial<TrainConfig> = { ...PLAIN_SGD, model: GPT2, refModel: GPT2_REF, learningRate: 0.5, beta: 0.5, maxSteps: 1, perDeviceTrainBatchSize: 8, saveSteps: 0 };
  test('ld_alpha = 1 is plain DPO; ld_alpha = 0 is plain DPO too when every pair\'s completions have equal lengths', async () => {
    const plain = out('ld-plain');
    await quietTrain({ ...one, dataset: PAIRS8, outputDir: plain });
    const ld1 = out('ld-1');
    await quietTrain({ ...one, dataset: PAIRS8, outputDir: ld1, ldAlpha: 1 });
    assert.ok(sameWeights(readWeights(ld1), readWeights(plain)));
    const equal = writeJsonl(join(scratch, 'equal.jsonl'), randomPairs(8, 37, 9).map((p) => ({ ...p, rejected_input_ids: p.chosen_input_ids.map((id) => 3 + ((id + 5) % 34)) })));
    const [a, b] = [out('ld-eq-plain'), out('ld-eq-0')];
    await quietTrain({ ...one, dataset: equal, outputDir: a });
    await quietTrain({ ...one, dataset: equal, outputDir: b, ldAlpha: 0 });
    assert.ok(maxDifference(readWeights(a), readWeights(b)) <= 1e-7);
  });

  test('use_weighting scales each pair\'s loss by a WPO weight in (0, 1], so the logged loss is below the unweighted one', async () => {
    const [plain, wpo] = [out('wpo-plain'), out('wpo')];
    await quietTrain({ ...one, dataset: PAIRS8, outputDir: plain });
    await quietTrain({ ...one, dataset: PAIRS8, outputDir: wpo, useWeighting: true });
    const [lossPlain, lossWpo] = [readMetrics(plain)[0].loss, readMetrics(wpo)[0].loss];
    assert.ok(lossWpo > 0 && lossWpo < lossPlain, `weighted ${lossWpo} vs unweighted ${lossPlain}`);
  });
});

describe('reference strategies', () => {
  test('precomputed reference log-probs: computed and cached on the first run, read on the second, rebuilt when the reference changes', async () => {
    const refDir = join(scratch, 'moving-ref');
    cpSync(GPT2_REF, refDir, { recursive: true });
    const cacheDir = join(scratch, 'shared-cache');
    const config: Partial<TrainConfig> = {
      ...PLAIN_SGD, model: GPT2, refModel: refDir, dataset: PAIRS8, learningRate: 0.1, beta: 0.5, maxSteps: 2, perDeviceTrainBatchSize: 4,
      saveSteps: 0, precomputeRefLogProbs: true, refCacheDir: cacheDir, evalDataset: FIXTURE_PAIRS, evalStrategy: 'steps', evalSteps: 1,
    };
    const first = await quietTrain({ ...config, outputDir: out('cache') });
    assert.deepEqual(first.referenceCache, { train: 'miss', eval: 'miss' });
    assert.equal(readdirSync(cacheDir).length, 2, 'one cache file per split');
    const second = await quietTrain({ ...config, outputDir: out('cache') });
    assert.deepEqual(second.referenceCache, { train: 'hit', eval: 'hit' });
    assert.ok(sameWeights(readWeights(first.outputDir), readWeights(second.outputDir)), 'the cached values train the same model');
    // A live reference gives the same training up to the round-off of batching the reference pass differently.
    const live = await quietTrain({ ...config, precomputeRefLogProbs: false, outputDir: out('cache-live') });
    assert.ok(maxDifference(readWeights(live.outputDir), readWeights(first.outputDir)) < 1e-5);
    copyFileSync(join(GPT2, 'model.safetensors'), join(refDir, 'model.safetensors')); // the reference changes
    const third = await quietTrain({ ...config, outputDir: out('cache') });
    assert.deepEqual(third.referenceCache, { train: 'miss', eval: 'miss' });
    assert.equal(readdirSync(cacheDir).length, 4);
  });

  test('a reference-free loss (simpo) trains without loading any reference', async () => {
    const r = await quietTrain({ ...PLAIN_SGD, model: GPT2, dataset: PAIRS8, outputDir: out('simpo'), lossType: ['simpo'], learningRate: 0.1, maxSteps: 1, saveSteps: 0 });
    assert.ok(r.log.some((l) => l.includes('reference: none')), r.log.join('\n'));
    assert.equal(r.lastMetrics?.step, 1);
    assert.ok(!existsSync(join(r.outputDir, 'ref_logps_cache')));
  });
});
