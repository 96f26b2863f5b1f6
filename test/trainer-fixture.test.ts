// One plain SGD step of `dpo train` (sigmoid loss, the whole dataset as one batch) against float64 PyTorch on GPT-2,
// Llama and Qwen2 (test/fixtures/trainer, scripts/fixtures/make_trainer_fixtures.py): the saved weights are
// w − lr·∇(mean loss), and the step-1 metrics carry TRL's values. Llama's reference is a frozen copy of the policy.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { assertClose } from './helpers.js';
import { FIXTURE_PAIRS, MODEL_FIXTURES, PLAIN_SGD, TRAINER_FIXTURES, quietTrain, readMetrics, readWeights, scratchDir } from './trainer-helpers.js';

interface ModelExpected {
  ref_model: string | null;
  metrics: Record<string, number>;
  update_digest: Record<string, { sum: number; abs_sum: number }>;
  update_full: Record<string, { shape: number[]; data: number[] }>;
}
const expected: { beta: number; learning_rate: number; models: Record<string, ModelExpected> } = JSON.parse(readFileSync(join(TRAINER_FIXTURES, 'expected.json'), 'utf8'));
const scratch = scratchDir('trainer-fixture');
after(() => rmSync(scratch, { recursive: true, force: true }));

for (const [name, want] of Object.entries(expected.models)) {
  test(`${name}: one SGD step on the whole dataset saves w − lr·∇(mean sigmoid loss), as float64 PyTorch`, async () => {
    const out = join(scratch, name);
    const model = join(MODEL_FIXTURES, name);
    await quietTrain({
      ...PLAIN_SGD, model, refModel: want.ref_model === null ? null : join(TRAINER_FIXTURES, want.ref_model), dataset: FIXTURE_PAIRS,
      outputDir: out, learningRate: expected.learning_rate, beta: expected.beta, maxSteps: 1, perDeviceTrainBatchSize: 6, saveSteps: 0,
    });
    const before = readWeights(model);
    const afterStep = readWeights(out);
    assert.deepEqual([...afterStep.keys()].sort(), [...before.keys()].sort());
    for (const [param, digest] of Object.entries(want.update_digest)) {
      const w0 = before.get(param)!;
      const w1 = afterStep.get(param)!;
      let sum = 0;
      let absSum = 0;
      for (let i = 0; i < w0.length; i++) {
        sum += w1[i] - w0[i];
        absSum += Math.abs(w1[i] - w0[i]);
      }
      // float32 gradients and the rounding of w_new: relative to the update's size.
      assertClose([sum, absSum], [digest.sum, digest.abs_sum], { atol: 2e-5 * digest.abs_sum + 1e-7, rtol: 0 }, `${name} ${param}: Σ Δ and Σ |Δ|`);
    }
    for (const [param, record] of Object.entries(want.update_full)) {
      const w0 = before.get(param)!;
      const delta = Array.from(afterStep.get(param)!, (v, i) => v - w0[i]);
      assertClose(delta, record.data, { atol: 2e-6, rtol: 2e-4 }, `${name} ${param}: Δ`);
    }
    const [logged] = readMetrics(out);
    for (const [key, value] of Object.entries(want.metrics)) {
      assertClose([logged[key]], [value], { atol: 1e-5, rtol: 1e-5 }, `${name} metrics.jsonl ${key}`);
    }
    assert.equal(logged.step, 1);
    assert.equal(logged.learning_rate, expected.learning_rate);
    assert.equal(logged.epoch, 1);
  });
}
