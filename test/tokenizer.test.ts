// Tokenizer loading, encode/decode and streaming decode on the committed fixtures (test/fixtures/tokenizer/, written by
// scripts/fixtures/make_tokenizer_fixture.mjs): a byte-level BPE whose byte b has id b and whose k-th merge has id
// 256 + k, so expected ids can be worked out by hand from the merge list. Also the config variants HF files come in
// (AddedToken objects, named templates, chat_template.jinja/json), size limits and the checkpoint copier.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createStreamDecoder, loadTokenizer, requireTokenizer, saveTokenizerFiles, type Tokenizer } from '../src/io/tokenizer.js';

// This file runs as dist/test/tokenizer.test.js; the fixtures stay in the source tree.
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'tokenizer');
const CHATML = join(FIXTURES, 'chatml');
const LLAMA = join(FIXTURES, 'llama-style');
const scratch = mkdtempSync(join(tmpdir(), 'dpo-tokenizer-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function load(dir: string): Tokenizer {
  const tokenizer = loadTokenizer(dir);
  assert.ok(tokenizer !== null, `${dir} should hold a tokenizer`);
  return tokenizer;
}

/** A copy of a fixture directory in scratch space, with tokenizer_config.json edited by `edit`. */
function variant(name: string, from: string, files: string[], edit: (config: Record<string, unknown>) => void): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  for (const file of files) copyFileSync(join(from, file), join(dir, file));
  const config = JSON.parse(readFileSync(join(from, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  edit(config);
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

const chatml = load(CHATML);
const llama = load(LLAMA);

// Texts whose round trip must be exact: ASCII, accents, CJK, Cyrillic, emoji (a ZWJ family, a flag, a skin tone),
// combining marks, control whitespace, and spaces at the edges.
const ROUND_TRIP_TEXTS = [
  'the chosen answer',
  'A café, a résumé and a naïve façade.',
  '日本語のテキスト と 中文',
  'Привет, мир!',
  'emoji 😀 🙂 👩‍👩‍👧 🇫🇷 👍🏽',
  'e\u0301 combining, Å',
  'tabs\tand\nnewlines\r\n  double  spaces ',
  '  leading and trailing  ',
  "it's 42 o'clock; x=3.14 + y",
];

describe('loading a byte-level BPE tokenizer (chatml fixture)', () => {
  test('special tokens and flags come from tokenizer_config.json', () => {
    assert.equal(chatml.vocabSize, 256 + 48 + 3, '256 bytes + 48 merges + 3 added tokens');
    assert.equal(chatml.eosToken, '<|im_end|>');
    assert.equal(chatml.eosTokenId, 306);
    assert.equal(chatml.padToken, '<|endoftext|>');
    assert.equal(chatml.padTokenId, 304);
    assert.equal(chatml.bosToken, null);
    assert.equal(chatml.bosTokenId, null);
    assert.equal(chatml.addBosToken, null);
    assert.deepEqual(chatml.specialPrefixIds, [], 'the ByteLevel post-processor adds no BOS');
    assert.deepEqual(chatml.specialSuffixIds, []);
    assert.ok(chatml.chatTemplate?.startsWith('{% for message in messages %}'));
  });

  test('known ids, derived by hand from the merges', () => {
    // "the": t h e → th (256) → the (257).
    // " chosen": Ġ c h o s e n → e+n (262, rank 6) → Ġ+c (264) → o+s (271) → h+os (278) → hos+en (279) → Ġc+hosen (285).
    // " answer": e+r (259) → Ġ+a (260) → n+s (263) → ns+w (265) → nsw+er (266) → Ġa+nswer (268).
    assert.deepEqual(chatml.encode('the chosen answer'), [257, 285, 268]);
    // "Theory": no merge starts with T, and h+e, e+o, o+r, r+y are not merges → its six bytes.
    // " there": t+h (256) → th+e (257) → Ġ+the (258) → r+e (261).  " café": Ġ+c (264) → Ã+© (é, 272) → a+f (286) → af+Ã© (288).
    assert.deepEqual(chatml.encode('Theory there café'), [84, 104, 101, 111, 114, 121, 258, 261, 264, 288]);
    // 🙂 is F0 9F 99 82: ð+Ł (F0 9F, 300) then the bytes 0x99 and 0x82, so one character spans three tokens.
    assert.deepEqual(chatml.encode('🙂'), [300, 0x99, 0x82]);
  });

  test('decode(encode(text)) is the text, for ASCII, multi-byte UTF-8 and emoji', () => {
    for (const text of ROUND_TRIP_TEXTS) {
      const ids = chatml.encode(text);
      assert.ok(ids.every((id) => id >= 0 && id < chatml.vocabSize), `ids of ${JSON.stringify(text)} are in the vocabulary`);
      assert.equal(chatml.decode(ids), text);
    }
    assert.deepEqual(chatml.encode(''), []);
    assert.equal(chatml.decode([]), '');
  });

  test('special tokens are single ids, and skipSpecialTokens drops them', () => {
    const ids = chatml.encode('<|im_start|>user\nhi<|im_end|>');
    // "user": e+r (259) → u s er.  "\n" is byte 10.
    assert.deepEqual(ids, [305, 117, 115, 259, 10, 104, 105, 306]);
    assert.equal(chatml.decode(ids), '<|im_start|>user\nhi<|im_end|>');
    assert.equal(chatml.decode(ids, { skipSpecialTokens: true }), 'user\nhi');
    assert.equal(chatml.decode([306, 304], { skipSpecialTokens: true }), '');
    assert.ok(chatml.isSpecialId(306) && !chatml.isSpecialId(257));
  });

  test('tokenToId and idToToken use the byte-level symbols', () => {
    assert.equal(chatml.tokenToId('Ġthe'), 258);
    assert.equal(chatml.idToToken(272), 'Ã©');
    assert.equal(chatml.idToToken(306), '<|im_end|>');
    assert.equal(chatml.tokenToId('not-a-token'), null);
    assert.equal(chatml.idToToken(99_999), null);
  });

  test('decode rejects ids outside the vocabulary, naming the position', () => {
    assert.throws(() => chatml.decode([257, 307]), /ids\[1\] = 307 is not a token id .*vocabulary size 307/);
    assert.throws(() => chatml.decode([-1]), /ids\[0\] = -1/);
    assert.throws(() => chatml.decode([1.5]), /ids\[0\] = 1.5/);
  });
});

describe('Llama-style tokenizer (TemplateProcessing adds BOS)', () => {
  test('encode adds BOS exactly as the post-processor says, and only with addSpecialTokens', () => {
    assert.equal(llama.bosToken, '<|begin_of_text|>', 'read from an AddedToken object');
    assert.equal(llama.bosTokenId, 304);
    assert.equal(llama.eosTokenId, 308);
    assert.equal(llama.padToken, '<|end_of_text|>', 'missing from tokenizer_config.json, taken from special_tokens_map.json');
    assert.equal(llama.addBosToken, true);
    assert.deepEqual(llama.specialPrefixIds, [304]);
    assert.deepEqual(llama.specialSuffixIds, []);
    assert.deepEqual(llama.encode('the chosen answer'), [304, 257, 285, 268], 'merges given as "a b" strings load the same');
    assert.deepEqual(llama.encode('the chosen answer', { addSpecialTokens: false }), [257, 285, 268]);
    assert.deepEqual(llama.encode(''), [304], 'HF gives [BOS] for an empty text too');
  });

  test('clean_up_tokenization_spaces is ignored for BPE unless forced, as in transformers 5', () => {
    const ids = llama.encode('yes , really .', { addSpecialTokens: false });
    assert.equal(llama.cleanUpTokenizationSpaces, false, 'the config says true, but the model is BPE');
    assert.equal(llama.decode(ids), 'yes , really .');
    assert.equal(llama.decode(ids, { cleanUpTokenizationSpaces: true }), 'yes, really.', 'an explicit request still cleans');
    const forced = load(variant('forced-cleanup', LLAMA, ['tokenizer.json'], (config) => {
      config.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output = true;
    }));
    assert.equal(forced.decode(ids), 'yes, really.');
  });

  test('the chat template comes from chat_template.jinja', () => {
    assert.ok(llama.chatTemplate?.startsWith('{{ bos_token }}'));
  });

  test('add_bos_token/add_eos_token do not override the post-processor (transformers 5 drops them)', () => {
    const dir = variant('llama-class', LLAMA, ['tokenizer.json'], (config) => {
      Object.assign(config, { tokenizer_class: 'LlamaTokenizerFast', add_bos_token: false, add_eos_token: true });
    });
    const tokenizer = load(dir);
    assert.equal(tokenizer.addBosToken, false);
    assert.equal(tokenizer.addEosToken, true);
    assert.deepEqual(tokenizer.specialPrefixIds, [304]);
    assert.deepEqual(tokenizer.specialSuffixIds, []);
    assert.deepEqual(tokenizer.encode('the'), [304, 257]);
  });
});

describe('config variants and file handling', () => {
  test('a list of named chat templates yields "default", and AddedToken objects work everywhere', () => {
    const dir = variant('named-templates', CHATML, ['tokenizer.json'], (config) => {
      config.chat_template = [{ name: 'default', template: 'D' }, { name: 'tool_use', template: 'T' }];
      config.eos_token = { __type: 'AddedToken', content: '<|im_end|>', special: true };
      config.additional_special_tokens = [{ content: '<|im_start|>' }, '<|im_end|>'];
    });
    const tokenizer = load(dir);
    assert.equal(tokenizer.chatTemplate, 'D');
    assert.deepEqual(tokenizer.chatTemplates, { default: 'D', tool_use: 'T' });
    assert.equal(tokenizer.eosTokenId, 306);
  });

  test('chat_template.json overrides the config template', () => {
    const dir = variant('template-json', CHATML, ['tokenizer.json'], () => {});
    writeFileSync(join(dir, 'chat_template.json'), JSON.stringify({ chat_template: 'from json' }));
    assert.equal(load(dir).chatTemplate, 'from json');
  });

  test('tokenizer.json alone loads, with no template and no special tokens named', () => {
    const dir = join(scratch, 'bare');
    mkdirSync(dir);
    copyFileSync(join(CHATML, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    const tokenizer = load(dir);
    assert.equal(tokenizer.chatTemplate, null);
    assert.equal(tokenizer.eosTokenId, null);
    assert.deepEqual(tokenizer.encode('the'), [257]);
    assert.throws(() => tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }]), /has no chat template/);
  });

  test('no tokenizer.json: loadTokenizer returns null and requireTokenizer says what to do', () => {
    const dir = join(scratch, 'slow-only');
    mkdirSync(dir);
    writeFileSync(join(dir, 'vocab.json'), '{}');
    assert.equal(loadTokenizer(dir), null);
    assert.throws(() => requireTokenizer(dir), /has no tokenizer\.json \(it has vocab\.json: .*save_pretrained.*pre-tokenized/);
    assert.throws(() => loadTokenizer(join(scratch, 'missing')), /is not a directory/);
  });

  test('oversized and malformed files are refused with the file named', () => {
    const big = join(scratch, 'big');
    mkdirSync(big);
    writeFileSync(join(big, 'tokenizer.json'), '');
    truncateSync(join(big, 'tokenizer.json'), (64 << 20) + 1); // sparse: the size check must come before any read
    assert.throws(() => loadTokenizer(big), /big\/tokenizer\.json is 67108865 bytes, over the 67108864-byte limit/);
    const bad = join(scratch, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'tokenizer.json'), '{"model": ');
    assert.throws(() => loadTokenizer(bad), /bad\/tokenizer\.json is not valid JSON/);
    writeFileSync(join(bad, 'tokenizer.json'), '{"version": "1.0"}');
    assert.throws(() => loadTokenizer(bad), /has no "model" object/);
  });

  test('saveTokenizerFiles copies the files that exist, and the copy encodes the same', () => {
    const out = join(scratch, 'checkpoint', 'step-10');
    assert.deepEqual(saveTokenizerFiles(LLAMA, out), ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja']);
    const copy = load(out);
    assert.deepEqual(copy.encode('Theory there café'), llama.encode('Theory there café'));
    assert.equal(copy.chatTemplate, llama.chatTemplate);
  });
});

describe('streaming decoder', () => {
  function stream(tokenizer: Tokenizer, ids: number[], skipSpecialTokens = false): string[] {
    const decoder = createStreamDecoder(tokenizer, { skipSpecialTokens });
    const chunks = ids.map((id) => decoder.push(id));
    chunks.push(decoder.flush());
    return chunks;
  }

  test('a character split over three tokens comes out whole, on its last byte', () => {
    assert.deepEqual(stream(chatml, [104, 105, 32, 300, 0x99, 0x82, 33]), ['h', 'i', ' ', '', '', '🙂', '!', '']);
  });

  test('the chunks add up to the full decode and never hold U+FFFD', () => {
    for (const text of ROUND_TRIP_TEXTS) {
      for (const tokenizer of [chatml, llama]) {
        const ids = tokenizer.encode(text);
        const chunks = stream(tokenizer, ids);
        assert.equal(chunks.join(''), tokenizer.decode(ids, { cleanUpTokenizationSpaces: false }), JSON.stringify(text));
        assert.ok(chunks.every((chunk) => !chunk.includes('\uFFFD')), `no U+FFFD in the chunks of ${JSON.stringify(text)}`);
      }
    }
  });

  test('special tokens stream as text, or not at all with skipSpecialTokens', () => {
    const ids = chatml.encode('<|im_start|>assistant\nOK 😀<|im_end|>');
    assert.equal(stream(chatml, ids).join(''), '<|im_start|>assistant\nOK 😀<|im_end|>');
    assert.equal(stream(chatml, ids, true).join(''), 'assistant\nOK 😀');
  });

  test('flush surfaces an unfinished character, and bad ids are refused', () => {
    assert.deepEqual(stream(chatml, [97, 300]), ['a', '', '\uFFFD']);
    assert.throws(() => createStreamDecoder(chatml).push(1_000), /1000 is not a token id/);
  });
});
