// Token ids of preference records, by TRL's rules.
//   conversational: render prompt (add_generation_prompt) and prompt+completion with the chat template, tokenize both
//     without special tokens (the template holds them), and take the completion as the tokens after the prompt's;
//   standard: tokenize prompt and completions apart, BOS once before the prompt, EOS once after each completion;
//   pre-tokenized: used as given. All ids are checked against the vocabulary. Not here: truncation (truncate.ts).
import type { Tokenizer } from '../io/tokenizer.js';
import { PreferenceDataError } from './load.js';
import type { ConversationRecord, PreferenceRecord, TextRecord } from './shapes.js';

/** One preference pair as token ids; the sequences scored are promptIds+chosenIds and promptIds+rejectedIds. */
export interface TokenizedExample {
  index: number;
  source: string;
  promptIds: number[];
  chosenIds: number[];
  rejectedIds: number[];
  /** True when allowPromptMismatch let a conversational example through with separately tokenized completions. */
  promptMismatch: boolean;
}

export interface TokenizeOptions {
  /**
   * Conversational records: when the prompt's tokens are not a prefix of the whole conversation's tokens, tokenize
   * the completion's text on its own instead of raising. Default false (TRL only warns; we make it a choice).
   */
  allowPromptMismatch?: boolean;
  /** Every id must be below this (pass the model's vocab_size). Default: the tokenizer's vocabSize, when there is one. */
  vocabSize?: number;
}

/** The strings a conversational record renders to, before tokenization. */
export interface RenderedConversation {
  /** The prompt messages with add_generation_prompt=true. */
  prompt: string;
  /** The prompt and chosen messages as one conversation (add_generation_prompt=false); '' when chosen is empty. */
  promptChosen: string;
  promptRejected: string;
}

/** Tokenizes one record; errors name the record's index and location. */
export function tokenizeRecord(record: PreferenceRecord, tokenizer: Tokenizer | null, opts: TokenizeOptions = {}): TokenizedExample {
  const vocabSize = opts.vocabSize ?? tokenizer?.vocabSize;
  let example: TokenizedExample;
  if (record.kind === 'tokens') {
    example = { index: record.index, source: record.source, promptIds: record.promptIds, chosenIds: record.chosenIds, rejectedIds: record.rejectedIds, promptMismatch: false };
  } else {
    if (tokenizer === null) {
      throw new PreferenceDataError(record.index, record.source, 'a text dataset needs a tokenizer (tokenizer.json in the model folder), or give pre-tokenized *_input_ids columns');
    }
    example = record.kind === 'text' ? tokenizeText(record, tokenizer) : tokenizeConversation(record, tokenizer, opts.allowPromptMismatch ?? false);
  }
  if (vocabSize !== undefined) checkVocabulary(example, vocabSize);
  return example;
}

/** Renders a conversational record with the tokenizer's chat template; a template error names the record. */
export function renderConversation(record: ConversationRecord, tokenizer: Tokenizer): RenderedConversation {
  if (tokenizer.chatTemplate === null) {
    throw new PreferenceDataError(record.index, record.source,
      `the dataset is conversational but ${tokenizer.source} has no chat template; use a model with one, or convert the data to the standard (text) shape`);
  }
  const render = (messages: ConversationRecord['prompt'], addGenerationPrompt: boolean, what: string): string => {
    try {
      return tokenizer.applyChatTemplate(messages, { addGenerationPrompt });
    } catch (e) {
      throw new PreferenceDataError(record.index, record.source, `the chat template failed to render ${what}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const prompt = render(record.prompt, true, 'the prompt');
  const whole = (completion: ConversationRecord['chosen'], what: string): string =>
    completion.length === 0 ? '' : render([...record.prompt, ...completion], false, `the prompt + ${what}`);
  return { prompt, promptChosen: whole(record.chosen, 'chosen'), promptRejected: whole(record.rejected, 'rejected') };
}

/**
 * The ids put before a standard prompt: [BOS] when the tokenizer has a BOS token, else whatever its post-processor
 * prepends (usually nothing). TRL's add_bos_token_if_needed: added only when the prompt does not already start so.
 */
export function promptPrefixIds(tokenizer: Tokenizer): readonly number[] {
  return tokenizer.bosTokenId !== null ? [tokenizer.bosTokenId] : tokenizer.specialPrefixIds;
}

function tokenizeText(record: TextRecord, tokenizer: Tokenizer): TokenizedExample {
  const prefix = promptPrefixIds(tokenizer);
  let promptIds = tokenizer.encode(record.prompt, { addSpecialTokens: false });
  if (!startsWith(promptIds, prefix)) promptIds = [...prefix, ...promptIds];
  // TRL's add_eos_token_if_needed: EOS after each completion unless it already ends with it (skipped without an EOS).
  const completion = (text: string): number[] => {
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    const eos = tokenizer.eosTokenId;
    if (eos !== null && ids[ids.length - 1] !== eos) ids.push(eos);
    return ids;
  };
  return { index: record.index, source: record.source, promptIds, chosenIds: completion(record.chosen), rejectedIds: completion(record.rejected), promptMismatch: false };
}

/**
 * HF's apply_chat_template(tokenize=True): rendered text tokenized without special tokens, so a template that writes
 * {{ bos_token }} yields one BOS and a template without it yields none; no EOS is appended (the template's
 * end-of-turn tokens end the completion). With allowPromptMismatch, a completion whose conversation tokens do not
 * start with the prompt tokens is the conversation text after its longest common prefix with the prompt text.
 */
function tokenizeConversation(record: ConversationRecord, tokenizer: Tokenizer, allowPromptMismatch: boolean): TokenizedExample {
  const rendered = renderConversation(record, tokenizer);
  const encode = (text: string) => tokenizer.encode(text, { addSpecialTokens: false }); // no second BOS: the template has it
  const promptIds = encode(rendered.prompt);
  let promptMismatch = false;
  const completion = (whole: string, what: string): number[] => {
    if (whole === '') return []; // no completion messages: dropped later as an empty completion
    const wholeIds = encode(whole);
    if (startsWith(wholeIds, promptIds)) return wholeIds.slice(promptIds.length);
    if (!allowPromptMismatch) {
      throw new PreferenceDataError(record.index, record.source, mismatchMessage(rendered.prompt, whole, promptIds, wholeIds, what, tokenizer));
    }
    // Fallback: the completion is the conversation's text after the part it shares with the prompt's text.
    promptMismatch = true;
    return encode(whole.slice(commonPrefixLength(rendered.prompt, whole)));
  };
  const chosenIds = completion(rendered.promptChosen, 'chosen');
  const rejectedIds = completion(rendered.promptRejected, 'rejected');
  return { index: record.index, source: record.source, promptIds, chosenIds, rejectedIds, promptMismatch };
}

function mismatchMessage(prompt: string, whole: string, promptIds: number[], wholeIds: number[], what: string, tokenizer: Tokenizer): string {
  let k = 0;
  while (k < promptIds.length && promptIds[k] === wholeIds[k]) k++;
  const at = commonPrefixLength(prompt, whole);
  const snippet = (s: string) => JSON.stringify(s.slice(Math.max(0, at - 30), at + 30));
  const token = (ids: number[]) => (k < ids.length ? `${ids[k]} ${JSON.stringify(tokenizer.idToToken(ids[k]))}` : 'the end');
  return (
    `the tokens of the prompt rendered with add_generation_prompt=true are not a prefix of the tokens of prompt + ${what} ` +
    `rendered by the chat template (token ${k}: prompt has ${token(promptIds)}, conversation has ${token(wholeIds)}; ` +
    `text near character ${at}: prompt ${snippet(prompt)}, conversation ${snippet(whole)}). ` +
    'The completion cannot be cut off at the prompt. Fix the chat template, or set allowPromptMismatch ' +
    '(--allow-prompt-mismatch) to tokenize the completion text separately'
  );
}

function checkVocabulary(example: TokenizedExample, vocabSize: number): void {
  for (const [field, ids] of [['prompt_input_ids', example.promptIds], ['chosen_input_ids', example.chosenIds], ['rejected_input_ids', example.rejectedIds]] as const) {
    const i = ids.findIndex((id) => id >= vocabSize);
    if (i >= 0) {
      throw new PreferenceDataError(example.index, example.source,
        `${field}[${i}] = ${ids[i]} is outside the vocabulary (size ${vocabSize}); the data was tokenized for another model`);
    }
  }
}

function startsWith(ids: readonly number[], prefix: readonly number[]): boolean {
  return prefix.length <= ids.length && prefix.every((id, i) => ids[i] === id);
}

function commonPrefixLength(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}
