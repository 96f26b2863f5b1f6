// Tokenization of preference records by TRL's rules, on the committed fixture tokenizers (test/fixtures/tokenizer/):
// ChatML (Qwen2-like: no BOS, EOS <|im_end|>) and llama-style (post-processor adds <|begin_of_text|>). Expected ids
// come from the tokenizer's own encode() of the expected strings, and the rendered strings are asserted exactly.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  parsePreferenceRows, preparePreferenceExamples, renderConversation, tokenizeRecord,
  type ConversationRecord, type PreferenceDataset, type PreferenceRecord,
} from '../src/data/index.js';
import { loadTokenizer, Tokenizer } from '../src/io/tokenizer.js';

const TOKENIZERS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'tokenizer');
const chatml = loadTokenizer(join(TOKENIZERS, 'chatml'))!;
const llama = loadTokenizer(join(TOKENIZERS, 'llama-style'))!;
const BOS = llama.bosTokenId!;

/** The ChatML fixture with another chat template (null: none). */
function chatmlWithTemplate(template: string | null): Tokenizer {
  const read = (name: string) => JSON.parse(readFileSync(join(TOKENIZERS, 'chatml', name), 'utf8')) as Record<string, unknown>;
  const config = read('tokenizer_config.json');
  delete config.chat_template;
  return new Tokenizer({ source: 'chatml-variant', tokenizerJson: read('tokenizer.json'), config, chatTemplateFile: template ?? undefined });
}

/** Records as the loader makes them, located at mem.jsonl:<line>. */
function dataset(...rows: Record<string, unknown>[]): PreferenceDataset {
  return parsePreferenceRows(rows.map((fields, i) => ({ index: i, source: `mem.jsonl:${i + 1}`, fields })), ['mem.jsonl']);
}
const only = (...rows: Record<string, unknown>[]): PreferenceRecord => dataset(...rows).records[0];
const plain = (tokenizer: Tokenizer, text: string) => tokenizer.encode(text, { addSpecialTokens: false });

const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });
const QUESTION = [user('what is the policy?')];
const CHATML_PROMPT = '<|im_start|>user\nwhat is the policy?<|im_end|>\n<|im_start|>assistant\n';

describe('standard shapes', () => {
  test('explicit prompt, ChatML (no BOS token): prompt as encoded, EOS appended to each completion', () => {
    const ex = tokenizeRecord(only({ prompt: 'the model prefers', chosen: ' the chosen answer', rejected: ' the rejected answer' }), chatml);
    assert.equal(chatml.bosTokenId, null);
    assert.deepEqual(ex.promptIds, plain(chatml, 'the model prefers'));
    assert.deepEqual(ex.chosenIds, [...plain(chatml, ' the chosen answer'), chatml.eosTokenId]);
    assert.deepEqual(ex.rejectedIds, plain(chatml, ' the rejected answer<|im_end|>'));
  });

  test('implicit prompt: the extracted prefix is the prompt, the space goes with the completion', () => {
    const ex = tokenizeRecord(only({ chosen: 'the loss is the log sigmoid', rejected: 'the loss is the margin' }), chatml);
    assert.deepEqual(ex.promptIds, plain(chatml, 'the loss is the'));
    assert.deepEqual(ex.chosenIds, plain(chatml, ' log sigmoid<|im_end|>'));
    assert.deepEqual(ex.rejectedIds, plain(chatml, ' margin<|im_end|>'));
  });

  test('llama-style: BOS before the prompt exactly once, as the post-processor would add it', () => {
    assert.deepEqual(llama.specialPrefixIds, [BOS]);
    const ex = tokenizeRecord(only({ prompt: 'the model prefers', chosen: ' the answer', rejected: ' the loss' }), llama);
    assert.deepEqual(ex.promptIds, llama.encode('the model prefers'));
    assert.deepEqual(ex.promptIds, [BOS, ...plain(llama, 'the model prefers')]);
    assert.deepEqual(ex.chosenIds, [...plain(llama, ' the answer'), llama.eosTokenId]);
  });

  test('a prompt that already starts with the BOS text gets no second BOS', () => {
    const ex = tokenizeRecord(only({ prompt: '<|begin_of_text|>the model', chosen: ' a', rejected: ' b' }), llama);
    assert.deepEqual(ex.promptIds, [BOS, ...plain(llama, 'the model')]);
    assert.equal(ex.promptIds.filter((id) => id === BOS).length, 1);
  });

  test('a completion that already ends with EOS gets no second EOS; an empty completion becomes [EOS]', () => {
    const eos = chatml.eosTokenId!;
    const ex = tokenizeRecord(only({ prompt: 'the', chosen: ' answer<|im_end|>', rejected: '' }), chatml);
    assert.deepEqual(ex.chosenIds, [...plain(chatml, ' answer'), eos]);
    assert.equal(ex.chosenIds.filter((id) => id === eos).length, 1);
    assert.deepEqual(ex.rejectedIds, [eos]);
  });
});

describe('conversational shapes', () => {
  test('explicit prompt, ChatML: exact renderings; completion = the conversation tokens after the prompt tokens', () => {
    const record = only({ prompt: QUESTION, chosen: [assistant('the model that learns')], rejected: [assistant('a café')] }) as ConversationRecord;
    const rendered = renderConversation(record, chatml);
    assert.equal(rendered.prompt, CHATML_PROMPT);
    assert.equal(rendered.promptChosen, CHATML_PROMPT + 'the model that learns<|im_end|>\n');
    assert.equal(rendered.promptRejected, CHATML_PROMPT + 'a café<|im_end|>\n');
    const ex = tokenizeRecord(record, chatml);
    assert.deepEqual(ex.promptIds, plain(chatml, CHATML_PROMPT));
    assert.deepEqual(ex.chosenIds, plain(chatml, 'the model that learns<|im_end|>\n'));
    assert.deepEqual([...ex.promptIds, ...ex.rejectedIds], plain(chatml, rendered.promptRejected));
    assert.equal(ex.promptMismatch, false);
  });

  test('implicit prompt: the shared messages are rendered as the prompt (multi-turn)', () => {
    const shared = [user('hi'), assistant('the answer'), user('and the loss?')];
    const ex = tokenizeRecord(only({ chosen: [...shared, assistant('log sigmoid')], rejected: [...shared, assistant('the margin')] }), chatml);
    const prompt = '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nthe answer<|im_end|>\n<|im_start|>user\nand the loss?<|im_end|>\n<|im_start|>assistant\n';
    assert.deepEqual(ex.promptIds, plain(chatml, prompt));
    assert.deepEqual(ex.chosenIds, plain(chatml, 'log sigmoid<|im_end|>\n'));
    assert.deepEqual(ex.rejectedIds, plain(chatml, 'the margin<|im_end|>\n'));
  });

  test('llama-style: the template writes BOS and tokenizing without special tokens keeps it single; no EOS appended', () => {
    const record = only({ prompt: QUESTION, chosen: [assistant(' the model ')], rejected: [assistant('a café')] }) as ConversationRecord;
    const header = (role: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n`;
    const prompt = `<|begin_of_text|>${header('user')}what is the policy?<|eot_id|>${header('assistant')}`;
    const rendered = renderConversation(record, llama);
    assert.equal(rendered.prompt, prompt);
    assert.equal(rendered.promptChosen, prompt + 'the model<|eot_id|>'); // the template trims content
    const ex = tokenizeRecord(record, llama);
    assert.deepEqual(ex.promptIds, plain(llama, prompt));
    assert.equal(ex.promptIds[0], BOS);
    assert.equal([...ex.promptIds, ...ex.chosenIds].filter((id) => id === BOS).length, 1);
    assert.deepEqual(ex.chosenIds, plain(llama, 'the model<|eot_id|>'));
    assert.equal(ex.chosenIds.filter((id) => id === llama.eosTokenId).length, 1);
  });

  test('an empty completion message list gives no completion tokens (the pair is dropped later)', () => {
    const ex = tokenizeRecord(only({ prompt: QUESTION, chosen: [], rejected: [assistant('a')] }), chatml);
    assert.deepEqual(ex.chosenIds, []);
  });
});

// A Qwen3-like template whose generation prompt opens an empty think block that a finished assistant turn lacks, so
// the prompt's rendering is not a prefix of the conversation's.
const THINK_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' }}{% endif %}";

describe('prompt / conversation mismatch and template failures', () => {
  const thinking = chatmlWithTemplate(THINK_TEMPLATE);
  const rows = [
    { prompt: QUESTION, chosen: [assistant('the answer')], rejected: [assistant('the loss')] },
    { prompt: QUESTION, chosen: [assistant('the model that learns')], rejected: [assistant('a café')] },
  ];

  test('the prompt tokens must be a prefix of the conversation tokens: else an error naming the record', () => {
    assert.throws(() => preparePreferenceExamples(dataset(...rows), thinking), (e: Error) =>
      e.message.startsWith('mem.jsonl:1 (record 0): the tokens of the prompt rendered with add_generation_prompt=true are not a prefix of the tokens of prompt + chosen') &&
      e.message.includes('allowPromptMismatch'));
  });

  test('allowPromptMismatch: the completion is the conversation text after what it shares with the prompt, tokenized alone', () => {
    const { examples, summary, summaryLine } = preparePreferenceExamples(dataset(...rows), thinking, { allowPromptMismatch: true });
    const record = dataset(...rows).records[1] as ConversationRecord;
    const rendered = renderConversation(record, thinking);
    assert.equal(rendered.prompt, CHATML_PROMPT + '<think>\n\n</think>\n\n');
    assert.deepEqual(examples[1].promptIds, plain(thinking, rendered.prompt));
    assert.deepEqual(examples[1].chosenIds, plain(thinking, 'the model that learns<|im_end|>\n'));
    assert.deepEqual(examples[1].rejectedIds, plain(thinking, 'a café<|im_end|>\n'));
    assert.equal(summary.promptMismatches, 2);
    assert.match(summaryLine, /2 with completions tokenized apart \(allowPromptMismatch\)/);
  });

  test('a prompt rendering that is a string prefix can still fail as tokens: BPE merges " " + "the" across the cut', () => {
    const spaced = chatmlWithTemplate(
      "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}",
    );
    const ds = dataset({ prompt: QUESTION, chosen: [assistant('the answer')], rejected: [assistant('a café')] });
    assert.throws(() => preparePreferenceExamples(ds, spaced), (e: Error) =>
      e.message.includes('prompt has 32 "Ġ", conversation has 258 "Ġthe"') && e.message.includes('prompt "hat is the policy?\\nassistant: "'));
    const [ex] = preparePreferenceExamples(ds, spaced, { allowPromptMismatch: true }).examples;
    assert.deepEqual(ex.promptIds, plain(spaced, 'user: what is the policy?\nassistant: '));
    assert.deepEqual(ex.chosenIds, plain(spaced, 'the answer\n'));
  });

  test('a chat template that raises names the record and keeps the template\'s message', () => {
    const strict = chatmlWithTemplate(
      "{% for message in messages %}{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" +
      "{{ message['role'] + ':\\n' + message['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant:\\n' }}{% endif %}",
    );
    const ds = dataset(rows[0], { prompt: [{ role: 'system', content: 'be brief' }, ...QUESTION], chosen: [assistant('a')], rejected: [assistant('b')] });
    assert.throws(() => preparePreferenceExamples(ds, strict), (e: Error) =>
      e.message.startsWith('mem.jsonl:2 (record 1): the chat template failed to render the prompt:') && e.message.includes('System role not supported'));
  });

  test('a conversational dataset with a tokenizer that has no chat template', () => {
    assert.throws(() => preparePreferenceExamples(dataset(rows[0]), chatmlWithTemplate(null)), /mem\.jsonl:1 \(record 0\): the dataset is conversational but chatml-variant has no chat template/);
  });

  test('a text dataset without a tokenizer', () => {
    assert.throws(() => preparePreferenceExamples(dataset({ prompt: 'p', chosen: 'a', rejected: 'b' }), null), /record 0\): a text dataset needs a tokenizer/);
  });
});

describe('pre-tokenized records', () => {
  const ids = (prompt: number[], chosen: number[], rejected: number[]) => ({ prompt_input_ids: prompt, chosen_input_ids: chosen, rejected_input_ids: rejected });

  test('used as given: no BOS or EOS added', () => {
    const ex = tokenizeRecord(only(ids([5, 6], [7], [8, 9])), llama);
    assert.deepEqual([ex.promptIds, ex.chosenIds, ex.rejectedIds], [[5, 6], [7], [8, 9]]);
  });

  test('an id outside the vocabulary is an error naming the record, the column and the position', () => {
    const ds = dataset(ids([1], [2], [3]), ids([1], [2, chatml.vocabSize], [3]));
    assert.throws(() => preparePreferenceExamples(ds, chatml), (e: Error) =>
      e.message === `mem.jsonl:2 (record 1): chosen_input_ids[1] = ${chatml.vocabSize} is outside the vocabulary (size ${chatml.vocabSize}); the data was tokenized for another model`);
    // Without a tokenizer, the model's vocabulary size is the bound.
    assert.throws(() => preparePreferenceExamples(dataset(ids([1], [2], [30])), null, { vocabSize: 30 }), /rejected_input_ids\[0\] = 30 is outside the vocabulary \(size 30\)/);
    assert.equal(preparePreferenceExamples(dataset(ids([1], [2], [30])), null).examples.length, 1);
  });
});
