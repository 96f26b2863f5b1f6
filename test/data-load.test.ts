// Preference data loading and shapes: JSONL / JSON / Parquet / folders (order, locations, size limit), TRL's four
// shapes plus pre-tokenized, implicit-prompt extraction, and the errors a bad record gets (file:line, record index).
// Parquet fixtures: test/fixtures/data/*.parquet, written by test/fixtures/data/make_parquet_fixtures.mjs.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { extractMessagesPrompt, extractTextPrompt, loadPreferenceDataset, readPreferenceRows, type ConversationRecord, type TextRecord } from '../src/data/index.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'data');
const scratch = mkdtempSync(join(tmpdir(), 'dpo-data-load-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let fileCounter = 0;
/** Writes `text` to a fresh scratch file with the given extension and returns its path. */
function scratchFile(ext: string, text: string): string {
  const path = join(scratch, `f${fileCounter++}${ext}`);
  writeFileSync(path, text);
  return path;
}
const jsonl = (...rows: unknown[]) => scratchFile('.jsonl', rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');

const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

describe('file formats', () => {
  test('JSONL: one record per non-blank line, located as file:line (CRLF and a trailing line without newline accepted)', async () => {
    const path = scratchFile('.jsonl', '{"prompt": "p0", "chosen": "c0", "rejected": "r0"}\r\n\r\n{"prompt": "p1", "chosen": "c1", "rejected": "r1"}');
    const ds = await loadPreferenceDataset(path);
    assert.equal(ds.shape, 'standard_explicit');
    assert.deepEqual(ds.records.map((r) => [r.index, r.source]), [[0, `${path}:1`], [1, `${path}:3`]]);
    assert.deepEqual(ds.records[1], { kind: 'text', index: 1, source: `${path}:3`, prompt: 'p1', chosen: 'c1', rejected: 'r1' });
  });

  test('JSON: an array of rows, or {"data": [rows]}, located as file#row', async () => {
    const rows = [{ chosen: 'ab', rejected: 'ac' }, { chosen: 'xy', rejected: 'xz' }];
    for (const text of [JSON.stringify(rows), JSON.stringify({ data: rows })]) {
      const path = scratchFile('.json', text);
      const ds = await loadPreferenceDataset(path);
      assert.equal(ds.shape, 'standard_implicit');
      assert.deepEqual(ds.records.map((r) => r.source), [`${path}#0`, `${path}#1`]);
    }
    await assert.rejects(loadPreferenceDataset(scratchFile('.json', '{"rows": []}')), /must be an array of row objects/);
  });

  test('Parquet, standard explicit: strings read, the extra score_chosen column ignored', async () => {
    const path = join(FIXTURES, 'standard.parquet');
    const { rows } = await readPreferenceRows(path);
    assert.deepEqual(rows.map((r) => Object.keys(r.fields).sort()), [['chosen', 'prompt', 'rejected'], ['chosen', 'prompt', 'rejected']]);
    const ds = await loadPreferenceDataset(path);
    assert.equal(ds.shape, 'standard_explicit');
    assert.deepEqual(ds.records[1], { kind: 'text', index: 1, source: `${path}#1`, prompt: 'the loss is', chosen: ' the log sigmoid', rejected: ' frozen' });
  });

  test('Parquet, conversational implicit: list<struct<content, role>> columns become messages', async () => {
    const path = join(FIXTURES, 'conversational.parquet');
    const ds = await loadPreferenceDataset(path);
    assert.equal(ds.shape, 'conversational_implicit');
    assert.deepEqual(ds.records[0], {
      kind: 'conversation', index: 0, source: `${path}#0`,
      prompt: [{ content: 'what is the policy?', role: 'user' }],
      chosen: [{ content: 'the model that learns', role: 'assistant' }],
      rejected: [{ content: 'a café', role: 'assistant' }],
    });
  });

  test('Parquet, pre-tokenized: list<int32> and list<int64> ids become numbers', async () => {
    const ds = await loadPreferenceDataset(join(FIXTURES, 'pretokenized.parquet'));
    assert.equal(ds.shape, 'pretokenized');
    assert.deepEqual(ds.records.map((r) => (r.kind === 'tokens' ? [r.promptIds, r.chosenIds, r.rejectedIds] : null)), [
      [[257, 32], [268, 306], [97, 98, 306]],
      [[104, 105], [33], [34, 35]],
    ]);
  });

  test('a folder: its .jsonl / .json / .parquet files in name order, indices running on; other and hidden files skipped', async () => {
    const dir = join(scratch, 'folder');
    mkdirSync(dir);
    copyFileSync(join(FIXTURES, 'standard.parquet'), join(dir, 'a-part.parquet'));
    writeFileSync(join(dir, 'b-part.jsonl'), JSON.stringify({ prompt: 'p', chosen: 'c', rejected: 'r' }) + '\n');
    writeFileSync(join(dir, 'README.md'), '# not data\n');
    writeFileSync(join(dir, '.hidden.jsonl'), 'not json\n');
    const ds = await loadPreferenceDataset(dir);
    assert.deepEqual(ds.files, [join(dir, 'a-part.parquet'), join(dir, 'b-part.jsonl')]);
    assert.deepEqual(ds.records.map((r) => [r.index, r.source]), [
      [0, `${join(dir, 'a-part.parquet')}#0`], [1, `${join(dir, 'a-part.parquet')}#1`], [2, `${join(dir, 'b-part.jsonl')}:1`],
    ]);
  });

  test('refused: a folder with no data files, an unknown extension, a file over maxFileBytes, a corrupt Parquet file', async () => {
    const empty = join(scratch, 'empty');
    mkdirSync(empty);
    await assert.rejects(loadPreferenceDataset(empty), /holds no \.jsonl \/ \.json \/ \.parquet files/);
    await assert.rejects(loadPreferenceDataset(scratchFile('.csv', 'a,b\n')), /unsupported dataset file extension '\.csv'/);
    const big = jsonl({ chosen: 'a', rejected: 'b' });
    await assert.rejects(loadPreferenceDataset(big, { maxFileBytes: 10 }), /over the 10-byte limit/);
    await assert.rejects(loadPreferenceDataset(scratchFile('.parquet', 'PAR1 not really')), /could not read Parquet file/);
  });
});

describe('record errors name file:line and the record', () => {
  test('a JSONL line that is not JSON', async () => {
    const path = jsonl({ chosen: 'a', rejected: 'b' }, '{"chosen": "a", "rejected": }');
    await assert.rejects(loadPreferenceDataset(path), (e: Error) => e.message.startsWith(`${path}:2: line is not valid JSON (`));
  });

  test('a JSONL line that is not an object', async () => {
    const path = jsonl('["a", "b"]');
    await assert.rejects(loadPreferenceDataset(path), (e: Error) => e.message.startsWith(`${path}:1: a JSONL line must be one JSON object`));
  });

  test('a missing chosen or rejected field', async () => {
    const path = jsonl({ prompt: 'p', chosen: 'a', rejected: 'b' }, { prompt: 'q', chosen: 'c', rejected: 'd' }, { prompt: 'p', chosen: 'a' });
    await assert.rejects(loadPreferenceDataset(path), (e: Error) =>
      e.message.startsWith(`${path}:3 (record 2): missing field "rejected"`));
    const both = jsonl({ prompt: 'p', answer: 'a' });
    await assert.rejects(loadPreferenceDataset(both), /\(record 0\): missing field "chosen" and "rejected"/);
  });

  test('mixed shapes: the first record of another shape is named, with the first record', async () => {
    const path = jsonl(
      { prompt: 'p', chosen: 'a', rejected: 'b' },
      { prompt: 'q', chosen: 'c', rejected: 'd' },
      { chosen: [user('u'), assistant('a')], rejected: [user('u'), assistant('b')] },
    );
    await assert.rejects(loadPreferenceDataset(path), (e: Error) =>
      e.message.startsWith(`${path}:3 (record 2): record is conversational_implicit but record 0 (${path}:1) is standard_explicit`));
  });

  test('chosen and rejected of different kinds, a non-string non-list value, a malformed message', async () => {
    await assert.rejects(loadPreferenceDataset(jsonl({ chosen: 'a', rejected: [assistant('b')] })), /"chosen" is a string but "rejected" is a message list/);
    await assert.rejects(loadPreferenceDataset(jsonl({ chosen: 3, rejected: 'b' })), /"chosen" must be a string or a list of \{"role", "content"\} messages, got number 3/);
    await assert.rejects(loadPreferenceDataset(jsonl({ chosen: [{ content: 'x' }], rejected: [assistant('b')] })), /"chosen"\[0\] must be a message/);
    await assert.rejects(loadPreferenceDataset(jsonl({ chosen: [{ role: 'user', content: 5 }], rejected: [assistant('b')] })), /"chosen"\[0\]\.content must be a string/);
  });

  test('pre-tokenized: all three id columns required, ids are non-negative integers', async () => {
    const path = jsonl({ prompt_input_ids: [1], chosen_input_ids: [2] });
    await assert.rejects(loadPreferenceDataset(path), (e: Error) => e.message.startsWith(`${path}:1 (record 0): pre-tokenized record lacks "rejected_input_ids"`));
    await assert.rejects(loadPreferenceDataset(jsonl({ prompt_input_ids: [1], chosen_input_ids: [2.5], rejected_input_ids: [3] })),
      /"chosen_input_ids"\[0\] is number 2\.5; token ids are non-negative integers/);
    await assert.rejects(loadPreferenceDataset(jsonl({ prompt_input_ids: [1], chosen_input_ids: [2], rejected_input_ids: [-1] })), /"rejected_input_ids"\[0\] is number -1/);
  });

  test('pre-tokenized columns win over text columns in the same record', async () => {
    const ds = await loadPreferenceDataset(jsonl({ prompt: 'p', chosen: 'c', rejected: 'r', prompt_input_ids: [1], chosen_input_ids: [2], rejected_input_ids: [3] }));
    assert.equal(ds.shape, 'pretokenized');
  });
});

describe('shapes and implicit prompts', () => {
  test('each of the four TRL shapes is detected', async () => {
    const cases: [unknown, string][] = [
      [{ prompt: 'p', chosen: 'a', rejected: 'b' }, 'standard_explicit'],
      [{ chosen: 'pa', rejected: 'pb' }, 'standard_implicit'],
      [{ prompt: [user('u')], chosen: [assistant('a')], rejected: [assistant('b')] }, 'conversational_explicit'],
      [{ chosen: [user('u'), assistant('a')], rejected: [user('u'), assistant('b')] }, 'conversational_implicit'],
    ];
    for (const [row, shape] of cases) assert.equal((await loadPreferenceDataset(jsonl(row))).shape, shape);
  });

  test('a prompt of the other kind than the completions is ignored and the prompt extracted (TRL maybe_extract_prompt)', async () => {
    const ds = await loadPreferenceDataset(jsonl({ prompt: 'u', chosen: [user('u'), assistant('a')], rejected: [user('u'), assistant('b')] }));
    assert.equal(ds.shape, 'conversational_implicit');
    assert.deepEqual((ds.records[0] as ConversationRecord).prompt, [user('u')]);
  });

  test('text: the common prefix is the prompt, and a space before the first difference goes to the completions', () => {
    assert.deepEqual(extractTextPrompt('The sky is blue.', 'The sky is green.'), { prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' });
    assert.deepEqual(extractTextPrompt('abcX', 'abcY'), { prompt: 'abc', chosen: 'X', rejected: 'Y' });
    assert.deepEqual(extractTextPrompt('yes', 'no'), { prompt: '', chosen: 'yes', rejected: 'no' });
    // TRL's Python reads chosen[-1] here and would move the cut to -1; we keep the whole strings as completions.
    assert.deepEqual(extractTextPrompt('a ', 'b '), { prompt: '', chosen: 'a ', rejected: 'b ' });
  });

  test('text: when one string is a prefix of the other, TRL stops one character early so both completions are non-empty', () => {
    assert.deepEqual(extractTextPrompt('abc', 'abcd'), { prompt: 'ab', chosen: 'c', rejected: 'cd' });
    assert.deepEqual(extractTextPrompt('same', 'same'), { prompt: 'sam', chosen: 'e', rejected: 'e' });
  });

  test('messages: the shared leading messages (deep equality, extra keys included) are the prompt', async () => {
    const turn1 = [user('hi'), assistant('hello'), user('and then?')];
    assert.deepEqual(extractMessagesPrompt([...turn1, assistant('A')], [...turn1, assistant('B')]),
      { prompt: turn1, chosen: [assistant('A')], rejected: [assistant('B')] });
    const named = { role: 'user', content: 'hi', name: 'x' };
    assert.deepEqual(extractMessagesPrompt([named, assistant('A')], [{ ...named, name: 'y' }, assistant('A')]).prompt, []);
    const ds = await loadPreferenceDataset(jsonl({ chosen: [...turn1, assistant('A')], rejected: [...turn1, assistant('B')] }));
    assert.deepEqual((ds.records[0] as ConversationRecord).prompt, turn1);
  });

  test('an implicit text record keeps the extracted parts', async () => {
    const ds = await loadPreferenceDataset(jsonl({ chosen: 'The sky is blue.', rejected: 'The sky is green.' }));
    const record = ds.records[0] as TextRecord;
    assert.deepEqual([record.prompt, record.chosen, record.rejected], ['The sky is', ' blue.', ' green.']);
  });
});
