// Truncation of tokenized pairs (max_prompt_length with keep_end / keep_start, max_completion_length, max_length),
// the summary counts and line, dropping of pairs left without a scored completion token, and the zero-usable error.
// Pairs are hand-made id lists so that every expected cut can be read off directly.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEFAULT_TRUNCATION, formatTruncationSummary, parsePreferenceRows, preparePreferenceExamples, resolveTruncationOptions, truncateExample, truncateExamples,
  type TokenizedExample,
} from '../src/data/index.js';

function pair(index: number, promptIds: number[], chosenIds: number[], rejectedIds: number[]): TokenizedExample {
  return { index, source: `mem.jsonl:${index + 1}`, promptIds, chosenIds, rejectedIds, promptMismatch: false };
}
const NO_LIMITS = { maxLength: null, maxPromptLength: null, maxCompletionLength: null } as const;
// prompt 1..6, chosen 10..13, rejected 20..21
const EX = pair(0, [1, 2, 3, 4, 5, 6], [10, 11, 12, 13], [20, 21]);
const ids = (e: TokenizedExample | null) => (e === null ? null : [e.promptIds, e.chosenIds, e.rejectedIds]);

describe('truncation rules', () => {
  test('the defaults are TRL DPOConfig\'s: max_length 1024, max_prompt_length 512, no max_completion_length, keep_end', () => {
    assert.deepEqual(resolveTruncationOptions({}), { maxLength: 1024, maxPromptLength: 512, maxCompletionLength: null, truncationMode: 'keep_end' });
    assert.deepEqual(resolveTruncationOptions({ maxLength: undefined }), DEFAULT_TRUNCATION);
  });

  test('max_prompt_length, keep_end: the prompt keeps its last tokens', () => {
    const out = truncateExample(EX, { ...NO_LIMITS, maxPromptLength: 4, truncationMode: 'keep_end' });
    assert.deepEqual(ids(out.example), [[3, 4, 5, 6], [10, 11, 12, 13], [20, 21]]);
    assert.deepEqual([out.promptTruncated, out.completionTruncated, out.dropReason], [true, false, null]);
  });

  test('max_prompt_length, keep_start: the prompt keeps its first tokens', () => {
    const out = truncateExample(EX, { ...NO_LIMITS, maxPromptLength: 4, truncationMode: 'keep_start' });
    assert.deepEqual(ids(out.example), [[1, 2, 3, 4], [10, 11, 12, 13], [20, 21]]);
  });

  test('max_completion_length keeps each completion\'s first tokens', () => {
    const out = truncateExample(EX, { ...NO_LIMITS, maxCompletionLength: 3 });
    assert.deepEqual(ids(out.example), [[1, 2, 3, 4, 5, 6], [10, 11, 12], [20, 21]]);
    assert.deepEqual([out.promptTruncated, out.completionTruncated], [false, true]);
  });

  test('max_length keeps the prompt and cuts the end of each completion independently', () => {
    const out = truncateExample(EX, { ...NO_LIMITS, maxLength: 7 });
    assert.deepEqual(ids(out.example), [[1, 2, 3, 4, 5, 6], [10], [20]]);
    // The prompt is cut first (max_prompt_length), then max_length applies to what is left.
    const both = truncateExample(EX, { ...NO_LIMITS, maxPromptLength: 4, maxLength: 7 });
    assert.deepEqual(ids(both.example), [[3, 4, 5, 6], [10, 11, 12], [20, 21]]);
    assert.deepEqual([both.promptTruncated, both.completionTruncated], [true, true]);
  });

  test('a prompt that fills max_length leaves no room: the pair is dropped, not scored with zero tokens', () => {
    const out = truncateExample(EX, { ...NO_LIMITS, maxLength: 6 });
    assert.deepEqual([out.example, out.dropReason], [null, 'no_room_for_completion']);
  });

  test('an empty completion is dropped; so is a one-token completion after an empty prompt (its token has no predecessor)', () => {
    assert.equal(truncateExample(pair(0, [1], [], [2]), NO_LIMITS).dropReason, 'empty_completion');
    assert.equal(truncateExample(pair(0, [], [5], [6, 7]), NO_LIMITS).dropReason, 'empty_completion');
    assert.deepEqual(ids(truncateExample(pair(0, [], [5, 6], [6, 7]), NO_LIMITS).example), [[], [5, 6], [6, 7]]);
  });

  test('bad options are refused', () => {
    assert.throws(() => resolveTruncationOptions({ maxLength: 0 }), /maxLength must be a positive integer or null/);
    assert.throws(() => resolveTruncationOptions({ maxPromptLength: 2.5 }), /maxPromptLength must be a positive integer/);
    assert.throws(() => resolveTruncationOptions({ truncationMode: 'keep_middle' as 'keep_end' }), /truncationMode must be 'keep_end' or 'keep_start'/);
  });
});

describe('summary', () => {
  const examples = [
    pair(0, [1, 2, 3, 4, 5, 6], [10, 11], [20]), // prompt cut to 4
    pair(1, [1, 2], [10, 11, 12, 13, 14, 15], [20]), // chosen cut to max_length − 2 = 4
    pair(2, [1, 2], [], [20]), // dropped: empty completion
    pair(3, [1, 2, 3], [10], [20]), // untouched
  ];
  const opts = { maxLength: 6, maxPromptLength: 4, truncationMode: 'keep_end' } as const;

  test('counts kept, truncated and dropped pairs, with reasons and locations', () => {
    const { examples: kept, summary } = truncateExamples(examples, opts);
    assert.deepEqual(kept.map((e) => e.index), [0, 1, 3]);
    assert.deepEqual(
      [summary.examples, summary.kept, summary.promptTruncated, summary.completionTruncated, summary.dropped],
      [4, 3, 1, 1, { empty_completion: 1, no_room_for_completion: 0 }],
    );
    assert.deepEqual(summary.droppedExamples, [{ index: 2, source: 'mem.jsonl:3', reason: 'empty_completion' }]);
  });

  test('the printable line', () => {
    const { summary } = truncateExamples(examples, opts);
    assert.equal(formatTruncationSummary(summary),
      'data: 4 pairs, 3 kept; prompt truncated in 1 (max_prompt_length=4, keep_end); ' +
      'completion truncated in 1 (max_length=6, max_completion_length=none); dropped 1 (1 empty completion; first: record 2 at mem.jsonl:3)');
  });

  test('a dataset with no usable pair is an error that gives the reasons', () => {
    const rows = [
      { prompt_input_ids: [1, 2, 3], chosen_input_ids: [4], rejected_input_ids: [5] },
      { prompt_input_ids: [1], chosen_input_ids: [], rejected_input_ids: [5] },
    ].map((fields, i) => ({ index: i, source: `mem.jsonl:${i + 1}`, fields }));
    assert.throws(() => preparePreferenceExamples(parsePreferenceRows(rows, ['mem.jsonl']), null, { maxLength: 3, maxPromptLength: null }), (e: Error) =>
      e.message.startsWith('mem.jsonl: no usable preference pairs (data: 2 pairs, 0 kept;') &&
      e.message.includes('dropped 2 (1 empty completion, 1 prompt fills max_length; first: record 0 at mem.jsonl:1)'));
  });
});
