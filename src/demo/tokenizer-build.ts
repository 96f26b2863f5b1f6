// The demo's tokenizer, built from the grammar's vocabulary: a Hugging Face tokenizer.json with a WordLevel model
// (one token per word or punctuation mark, so every sentiment word is a single token), a Lowercase normalizer and
// the Whitespace pre-tokenizer, plus <|endoftext|> (BOS, EOS and padding, as GPT-2) and <|unk|>. Loaded back with
// io/tokenizer.ts like any HF tokenizer. Not here: the words themselves (corpus.ts).
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { grammarVocabulary } from './corpus.js';

export const END_OF_TEXT = '<|endoftext|>';
export const UNKNOWN = '<|unk|>';

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** tokenizer.json's object: id 0 is <|endoftext|>, 1 is <|unk|>, then the words in sorted order. */
export function buildTokenizerJson(words: readonly string[] = grammarVocabulary()): Record<string, unknown> {
  const vocab: Record<string, number> = { [END_OF_TEXT]: 0, [UNKNOWN]: 1 };
  for (const w of words) {
    if (Object.hasOwn(vocab, w)) throw new Error(`buildTokenizerJson: the word "${w}" is listed twice`);
    vocab[w] = Object.keys(vocab).length;
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, END_OF_TEXT), special(1, UNKNOWN)],
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' }, // \w+|[^\w\s]+
    post_processor: null, // text is encoded as is; the trainer adds BOS before a prompt and EOS after a completion
    decoder: null, // tokens are joined by spaces; clean_up_tokenization_spaces then removes the space before . , !
    model: { type: 'WordLevel', vocab, unk_token: UNKNOWN },
  };
}

/** tokenizer_config.json: the special tokens by name, as transformers reads them. */
export function buildTokenizerConfig(maxLength: number): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: END_OF_TEXT,
    eos_token: END_OF_TEXT,
    unk_token: UNKNOWN,
    clean_up_tokenization_spaces: true,
    model_max_length: maxLength,
  };
}

/** Writes tokenizer.json and tokenizer_config.json into `dir` (which must exist); returns the vocabulary size. */
export function writeDemoTokenizer(dir: string, maxLength: number): number {
  const json = buildTokenizerJson();
  writeFileAtomic(join(dir, 'tokenizer.json'), JSON.stringify(json) + '\n');
  writeFileAtomic(join(dir, 'tokenizer_config.json'), JSON.stringify(buildTokenizerConfig(maxLength), null, 2) + '\n');
  return Object.keys((json.model as { vocab: object }).vocab).length;
}
