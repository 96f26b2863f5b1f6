// SFT, then DPO from the SFT model, on a tiny synthetic task with a tiny random Llama: completions of "good" tokens
// (even ids) are preferred to completions of "bad" ones (odd ids). SFT lowers the completion NLL on held-out
// records; DPO (its reference: a frozen copy of the SFT model) then ranks held-out pairs it never saw correctly.
// Also the SFT data shapes: prompt/completion, messages and text, and completion-only versus whole-sequence loss.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Rng } from '../src/index.js';
import { parseSftRow, prepareSftExamples, type SftRecord } from '../src/dpo/sft-data.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { MODEL_FIXTURES, TINY_LLAMA, quietTrain, readMetrics, saveTinyModel, scratchDir, writeJsonl } from './trainer-helpers.js';

const scratch = scratchDir('trainer-sft');
const TOKENIZER_FIXTURES = join(MODEL_FIXTURES, '..', 'tokenizer');
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Prompt: BOS and two ids in 3..19; good completion: three even ids in 20..50 and EOS; bad: three odd ids and EOS. */
function task(count: number, seed: number) {
  const rng = new Rng(seed);
  const draw = (from: number, n: number, step: number) => Array.from({ length: n }, () => from + step * rng.int(16));
  return Array.from({ length: count }, () => ({
    prompt_input_ids: [1, ...draw(3, 2, 1)],
    chosen_input_ids: [...draw(20, 3, 2), 2],
    rejected_input_ids: [...draw(21, 3, 2), 2],
  }));
}

describe('SFT then DPO on a tiny synthetic task', () => {
  test('SFT lowers held-out completion NLL; DPO from the SFT model then ranks ≥ 90% of held-out pairs correctly', async () => {
    const base = await saveTinyModel(join(scratch, 'base'), TINY_LLAMA, 3);
    const sftRows = (pairs: ReturnType<typeof task>) => pairs.map((p) => ({ prompt_input_ids: p.prompt_input_ids, completion_input_ids: p.chosen_input_ids }));
    const trainPairs = task(48, 1);
    const heldOut = task(24, 2);
    const sftOut = join(scratch, 'sft');
    const sft = await quietTrain({
      task: 'sft', lossType: ['sft'], model: base, dataset: writeJsonl(join(scratch, 'sft.jsonl'), sftRows(trainPairs)),
      evalDataset: writeJsonl(join(scratch, 'sft-eval.jsonl'), sftRows(heldOut)), evalStrategy: 'epoch', outputDir: sftOut,
      learningRate: 1e-2, lrSchedulerType: 'constant', numTrainEpochs: 4, perDeviceTrainBatchSize: 8, saveSteps: 0, loggingSteps: 6,
    });
    assert.ok(sft.log.some((l) => l.includes('reference: none')));
    const sftEval = readMetrics(sftOut).filter((r) => 'eval_loss' in r);
    assert.equal(sftEval.length, 4, 'one evaluation per epoch');
    assert.ok(sftEval[3].eval_loss < sftEval[0].eval_loss - 0.3, `SFT eval_loss ${sftEval.map((r) => r.eval_loss.toFixed(3)).join(' → ')}`);
    assert.ok(!('rewards/accuracies' in readMetrics(sftOut)[0]), 'SFT logs no preference metrics');

    const dpoOut = join(scratch, 'dpo');
    await quietTrain({
      model: sftOut, dataset: writeJsonl(join(scratch, 'pairs.jsonl'), trainPairs), evalDataset: writeJsonl(join(scratch, 'held-out.jsonl'), heldOut),
      evalStrategy: 'steps', evalSteps: 6, outputDir: dpoOut, learningRate: 5e-3, lrSchedulerType: 'constant', beta: 0.1, numTrainEpochs: 3,
      perDeviceTrainBatchSize: 8, saveSteps: 0, loggingSteps: 6,
    });
    const dpoEval = readMetrics(dpoOut).filter((r) => 'eval_loss' in r);
    const last = dpoEval[dpoEval.length - 1];
    assert.ok(last['eval_rewards/accuracies'] >= 0.9, `held-out rewards/accuracies ${dpoEval.map((r) => r['eval_rewards/accuracies']).join(' → ')}`);
    assert.ok(last.eval_loss < Math.LN2 - 0.1 && last.eval_loss < dpoEval[0].eval_loss, `held-out eval_loss ${dpoEval.map((r) => r.eval_loss.toFixed(3)).join(' → ')}`);
    assert.ok(last['eval_rewards/margins'] > 0);
  });
});

describe('SFT data shapes', () => {
  const rows = [
    { prompt: [1, 5], completion: [7, 8] },
    { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }] },
    { text: 'whole' },
  ];
  test('prompt/completion ids, messages (the final assistant turn is the completion) and text are recognised', () => {
    const a = parseSftRow(0, 'a:1', { prompt_input_ids: [1, 5], completion_input_ids: [7, 8] });
    assert.deepEqual(a, { index: 0, source: 'a:1', kind: 'tokens', promptIds: [1, 5], completionIds: [7, 8] });
    const b = parseSftRow(1, 'a:2', rows[1]);
    assert.equal(b.kind, 'conversation');
    assert.deepEqual(b.kind === 'conversation' && b.completion, [{ role: 'assistant', content: 'yo' }]);
    assert.equal(parseSftRow(2, 'a:3', rows[2]).kind, 'text');
    assert.throws(() => parseSftRow(3, 'a:4', { messages: [{ role: 'assistant', content: 'x' }, { role: 'user', content: 'y' }] }), /a:4 \(record 3\): "messages" must end with an assistant turn/);
    assert.throws(() => parseSftRow(4, 'a:5', { chosen: 'x' }), /not an SFT record/);
  });
  test('completion_only_loss: the prompt is scored only when it is false', () => {
    const records: SftRecord[] = [{ index: 0, source: 's', kind: 'tokens', promptIds: [1, 5, 6], completionIds: [7, 8] }];
    const only = prepareSftExamples(records, null, { completionOnlyLoss: true }).examples[0];
    assert.deepEqual([only.promptIds, only.chosenIds], [[1, 5, 6], [7, 8]]);
    const all = prepareSftExamples(records, null, { completionOnlyLoss: false }).examples[0];
    assert.deepEqual([all.promptIds, all.chosenIds], [[], [1, 5, 6, 7, 8]]);
  });
});

describe('SFT tokenization with real tokenizers (data/\'s TRL rules)', () => {
  const records = [
    parseSftRow(0, 'a', { messages: [{ role: 'user', content: 'hi there' }, { role: 'assistant', content: 'hello you' }] }),
    parseSftRow(1, 'b', { prompt: 'The sky is', completion: ' blue.' }),
    parseSftRow(2, 'c', { text: 'just text' }),
  ];
  const decoded = (dir: string) => {
    const tokenizer = loadTokenizer(join(TOKENIZER_FIXTURES, dir))!;
    return prepareSftExamples(records, tokenizer, { completionOnlyLoss: true }).examples.map((e) => [tokenizer.decode(e.promptIds), tokenizer.decode(e.chosenIds)]);
  };
  test('chatml: messages through the chat template; EOS after a completion; text is all completion', () => {
    assert.deepEqual(decoded('chatml'), [
      ['<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n', 'hello you<|im_end|>\n'],
      ['The sky is', ' blue.<|im_end|>'],
      ['', 'just text<|im_end|>'],
    ]);
  });
  test('llama-style: BOS before a standard prompt and a text record', () => {
    assert.deepEqual(decoded('llama-style'), [
      ['<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n', 'hello you<|eot_id|>'],
      ['<|begin_of_text|>The sky is', ' blue.<|eot_id|>'],
      ['<|begin_of_text|>', 'just text<|eot_id|>'],
    ]);
  });
});
