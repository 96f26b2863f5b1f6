// The padding collator's layout: [chosen_0..chosen_{B-1} ; rejected_0..rejected_{B-1}], right padding, targets shifted
// by one with −100 on prompt and padding positions. Then the whole pipeline on a JSONL file with the ChatML fixture:
// the scored targets decode back to exactly the completions.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  IGNORE_INDEX, collatePreferenceBatch, defaultPadTokenId, loadPreferenceDataset, preparePreferenceExamples, type TokenizedExample,
} from '../src/data/index.js';
import { loadTokenizer } from '../src/io/tokenizer.js';

const TOKENIZERS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'tokenizer');
const scratch = mkdtempSync(join(tmpdir(), 'dpo-data-collate-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function pair(index: number, promptIds: number[], chosenIds: number[], rejectedIds: number[]): TokenizedExample {
  return { index, source: `mem.jsonl:${index + 1}`, promptIds, chosenIds, rejectedIds, promptMismatch: false };
}
const X = IGNORE_INDEX;
const PAD = 99;

describe('collatePreferenceBatch', () => {
  const batch = collatePreferenceBatch([pair(7, [1, 2], [3, 4], [5]), pair(9, [6], [7, 8, 9], [10, 11])], { padTokenId: PAD });

  test('rows are chosen_0, chosen_1, rejected_0, rejected_1, each prompt ++ completion, right-padded to the longest', () => {
    assert.deepEqual([batch.B, batch.T], [2, 4]);
    assert.deepEqual([...batch.inputIds], [
      1, 2, 3, 4, //    chosen_0
      6, 7, 8, 9, //    chosen_1
      1, 2, 5, PAD, //  rejected_0
      6, 10, 11, PAD, // rejected_1
    ]);
    assert.deepEqual([...batch.attentionMask], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0]);
  });

  test('position t holds the next token t + 1 when that token is a completion token, else −100', () => {
    assert.deepEqual([...batch.targets], [
      X, 3, 4, X, //   chosen_0: position 0 predicts a prompt token
      7, 8, 9, X, //   chosen_1
      X, 5, X, X, //   rejected_0: the padding predicts nothing
      10, 11, X, X, // rejected_1
    ]);
  });

  test('per-row prompt and scored-completion lengths, and the pairs\' record indices', () => {
    assert.deepEqual([...batch.promptLengths], [2, 1, 2, 1]);
    assert.deepEqual([...batch.completionLengths], [2, 3, 1, 2]);
    assert.deepEqual([...batch.exampleIndices], [7, 9]);
    for (let r = 0; r < 2 * batch.B; r++) {
      const scored = batch.targets.subarray(r * batch.T, (r + 1) * batch.T).filter((t) => t !== X).length;
      assert.equal(scored, batch.completionLengths[r], `row ${r}`);
    }
  });

  test('with an empty prompt the first completion token is not predicted', () => {
    const b = collatePreferenceBatch([pair(0, [], [3, 4, 5], [6, 7])], { padTokenId: 0 });
    assert.deepEqual([...b.targets], [4, 5, X, 7, X, X]);
    assert.deepEqual([...b.completionLengths], [2, 1]);
  });

  test('refused: an empty batch, a bad pad id', () => {
    assert.throws(() => collatePreferenceBatch([], { padTokenId: 0 }), /no examples/);
    assert.throws(() => collatePreferenceBatch([pair(0, [1], [2], [3])], { padTokenId: -1 }), /padTokenId must be a non-negative integer/);
  });
});

describe('the pipeline, file to batch', () => {
  test('standard JSONL with the ChatML tokenizer: the scored targets decode to each completion plus EOS', async () => {
    const tokenizer = loadTokenizer(join(TOKENIZERS, 'chatml'))!;
    const path = join(scratch, 'pairs.jsonl');
    writeFileSync(path, [
      { prompt: 'the model prefers', chosen: ' the chosen answer', rejected: ' the rejected answer' },
      { prompt: 'the loss is', chosen: ' the log sigmoid', rejected: ' frozen' },
    ].map((r) => JSON.stringify(r)).join('\n'));
    const { examples, summary } = preparePreferenceExamples(await loadPreferenceDataset(path), tokenizer);
    assert.equal(summary.kept, 2);
    const padTokenId = defaultPadTokenId(tokenizer);
    assert.equal(padTokenId, tokenizer.padTokenId);
    const batch = collatePreferenceBatch(examples, { padTokenId });
    const scoredText = (r: number) => tokenizer.decode([...batch.targets.subarray(r * batch.T, (r + 1) * batch.T)].filter((t) => t !== X));
    assert.deepEqual([0, 1, 2, 3].map(scoredText), [' the chosen answer<|im_end|>', ' the log sigmoid<|im_end|>', ' the rejected answer<|im_end|>', ' frozen<|im_end|>']);
    const rowText = (r: number) => tokenizer.decode([...batch.inputIds.subarray(r * batch.T, r * batch.T + batch.promptLengths[r])]);
    assert.deepEqual([0, 1, 2, 3].map(rowText), ['the model prefers', 'the loss is', 'the model prefers', 'the loss is']);
  });
});
