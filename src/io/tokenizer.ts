// Hugging Face tokenizers from a model directory: tokenizer.json (run by @huggingface/tokenizers) plus the optional
// tokenizer_config.json, special_tokens_map.json and chat_template.{jinja,json}. encode() matches HF's
// `tokenizer(text)` as transformers 5 computes it: the special tokens come from tokenizer.json's post-processor.
// Also a streaming decoder and a copier for checkpoints.
// Not here: rendering chat templates (chat-template.ts), truncation and collation (data/).
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ChatTemplate, type ChatMessage, type ChatTemplateOptions } from './chat-template.js';

type JsonObject = Record<string, unknown>;

/** Byte limits checked before a file is read: a bigger file is a wrong path or a hostile download. */
export const MAX_TOKENIZER_JSON_BYTES = 64 << 20;
export const MAX_TOKENIZER_CONFIG_BYTES = 16 << 20;
export const MAX_CHAT_TEMPLATE_FILE_BYTES = 2 << 20;

/** The files saveTokenizerFiles copies, in the order HF writes them. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'chat_template.json'];

const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token'] as const;
type SpecialTokenKey = (typeof SPECIAL_TOKEN_KEYS)[number];

export interface EncodeOptions {
  /** Add the special tokens HF's tokenizer(text) adds (e.g. Llama's BOS). Default true, as in HF. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (<|im_end|>, BOS, …) from the text. Default false. */
  skipSpecialTokens?: boolean;
  /** HF's clean_up_tokenization_spaces (" ." → "." …). Default: the tokenizer's cleanUpTokenizationSpaces. */
  cleanUpTokenizationSpaces?: boolean;
}

/** What a model directory holds for its tokenizer, parsed; `source` names the directory in errors. */
export interface TokenizerFiles {
  source: string;
  tokenizerJson: JsonObject;
  config?: JsonObject;
  specialTokensMap?: JsonObject;
  /** chat_template.jinja's text or chat_template.json's chat_template value; overrides the config's template. */
  chatTemplateFile?: unknown;
}

export class Tokenizer {
  readonly source: string;
  /** One past the largest token id, added tokens included: every id encode() returns is below it. */
  readonly vocabSize: number;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly unkToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly unkTokenId: number | null;
  /**
   * tokenizer_config.json's add_bos_token / add_eos_token (null when absent). Informational only: transformers 5
   * drops them when tokenizer.json exists (4.x's LlamaTokenizerFast rebuilt the post-processor from them).
   */
  readonly addBosToken: boolean | null;
  readonly addEosToken: boolean | null;
  /** Ids encode() puts before / after the text when addSpecialTokens is true, e.g. [BOS] and [] for Llama 3. */
  readonly specialPrefixIds: readonly number[];
  readonly specialSuffixIds: readonly number[];
  /** The default chat template (null when the model has none) and every named one (config list form). */
  readonly chatTemplate: string | null;
  readonly chatTemplates: Readonly<Record<string, string>>;
  /** Whether decode() cleans up spaces by default: the config's flag, except for BPE models (as transformers 5). */
  readonly cleanUpTokenizationSpaces: boolean;
  private readonly hf: HfTokenizer;
  private readonly specialIds: ReadonlySet<number>;
  private readonly templateVariables: Record<string, unknown>;
  private readonly parsedTemplates = new Map<string, ChatTemplate>();

  constructor(files: TokenizerFiles) {
    const config = files.config ?? {};
    const map = files.specialTokensMap ?? {};
    this.source = files.source;
    // tokenizer_config.json wins over special_tokens_map.json (the legacy file) for each key it has.
    const special = (key: SpecialTokenKey): string | null =>
      tokenContent(key in config ? config[key] : map[key], `${files.source}: ${key}`);
    const tokens = Object.fromEntries(SPECIAL_TOKEN_KEYS.map((key) => [key, special(key)])) as Record<SpecialTokenKey, string | null>;
    const model = files.tokenizerJson.model;
    if (model === null || typeof model !== 'object' || Array.isArray(model)) {
      throw new Error(`${files.source}/tokenizer.json has no "model" object: it is not a Hugging Face tokenizers file`);
    }
    // transformers 5 skips the clean-up for BPE models, where it deletes real spaces before punctuation.
    const { type: modelType, merges } = model as JsonObject;
    const isBpe = modelType === 'BPE' || (modelType === undefined && merges !== undefined);
    this.cleanUpTokenizationSpaces = config.clean_up_tokenization_spaces === true &&
      (!isBpe || config.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output === true);
    const additional = config.additional_special_tokens ?? map.additional_special_tokens;
    const additionalTokens = Array.isArray(additional)
      ? additional.map((t, i) => tokenContent(t, `${files.source}: additional_special_tokens[${i}]`)).filter((t): t is string => t !== null)
      : [];
    const tokenizerJson = { ...files.tokenizerJson, added_tokens: files.tokenizerJson.added_tokens ?? [] };
    try {
      // The library reads only plain strings from the config, so it gets a cleaned copy.
      this.hf = new HfTokenizer(tokenizerJson, {
        ...tokens, additional_special_tokens: additionalTokens, clean_up_tokenization_spaces: this.cleanUpTokenizationSpaces,
      });
    } catch (err) {
      throw new Error(
        `${files.source}/tokenizer.json could not be loaded by @huggingface/tokenizers: ${messageOf(err)}. ` +
          'Re-save it with a current `tokenizers` (Python: AutoTokenizer.from_pretrained(dir).save_pretrained(dir)).',
      );
    }
    let maxId = -1;
    for (const id of this.hf.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.specialIds = new Set([...this.hf.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));

    [this.bosToken, this.eosToken, this.padToken, this.unkToken] = [tokens.bos_token, tokens.eos_token, tokens.pad_token, tokens.unk_token];
    [this.bosTokenId, this.eosTokenId, this.padTokenId, this.unkTokenId] =
      [tokens.bos_token, tokens.eos_token, tokens.pad_token, tokens.unk_token].map((t) => (t === null ? null : this.tokenToId(t)));
    this.addBosToken = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : null;
    this.addEosToken = typeof config.add_eos_token === 'boolean' ? config.add_eos_token : null;
    [this.specialPrefixIds, this.specialSuffixIds] = this.probePostProcessor();

    const templates = chatTemplatesOf(files.chatTemplateFile ?? config.chat_template ?? null, files.source);
    this.chatTemplates = templates;
    this.chatTemplate = templates.default ?? null;
    // HF passes every special token to the template by name (special_tokens_map), plus the additional ones;
    // bos_token and eos_token travel through their own options.
    this.templateVariables = Object.fromEntries(
      SPECIAL_TOKEN_KEYS.filter((k) => tokens[k] !== null && k !== 'bos_token' && k !== 'eos_token').map((k) => [k, tokens[k]]),
    );
    this.templateVariables.additional_special_tokens = additionalTokens;
  }

  /** Token ids of `text`, as HF's tokenizer(text)["input_ids"] (addSpecialTokens defaults to true). */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`Tokenizer.encode: expected a string, got ${typeof text}`);
    return this.hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /** Text of `ids`; every id must be below vocabSize. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.hf.id_to_token(id) === undefined) {
        throw new RangeError(`Tokenizer.decode: ids[${i}] = ${id} is not a token id of ${this.source} (vocabulary size ${this.vocabSize})`);
      }
    }
    if (ids.length === 0) return '';
    if (opts.skipSpecialTokens && ids.every((id) => this.specialIds.has(id))) return '';
    return this.hf.decode([...ids], {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: opts.cleanUpTokenizationSpaces ?? this.cleanUpTokenizationSpaces,
    });
  }

  tokenToId(token: string): number | null {
    return this.hf.token_to_id(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.hf.id_to_token(id) ?? null;
  }

  /** True for added tokens marked special (the ones skipSpecialTokens drops). */
  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * Renders `messages` with this model's chat template and special tokens. `templateName` picks a named template;
   * otherwise, as in HF, 'tool_use' when tools are given and the model has one, else 'default'.
   */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions & { templateName?: string } = {}): string {
    const hasTools = opts.tools !== undefined && opts.tools !== null && opts.tools.length > 0;
    const name = opts.templateName ?? (hasTools && this.chatTemplates.tool_use !== undefined ? 'tool_use' : 'default');
    const source = this.chatTemplates[name];
    if (source === undefined) {
      const known = Object.keys(this.chatTemplates);
      throw new Error(
        known.length === 0
          ? `${this.source} has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja); ` +
              'pass one explicitly (applyChatTemplate(template, messages)) or use a model with one'
          : `${this.source} has no chat template named '${name}'; it has: ${known.join(', ')}`,
      );
    }
    let parsed = this.parsedTemplates.get(name);
    if (parsed === undefined) {
      parsed = new ChatTemplate(source, `chat template '${name}' of ${this.source}`);
      this.parsedTemplates.set(name, parsed);
    }
    return parsed.render(messages, {
      bosToken: this.bosToken,
      eosToken: this.eosToken,
      ...opts,
      extra: { ...this.templateVariables, ...opts.extra },
    });
  }

  // Finds what the post-processor wraps around a plain text by encoding a probe with and without special tokens.
  private probePostProcessor(): [number[], number[]] {
    const withSpecial = this.hf.encode('a', { add_special_tokens: true }).ids;
    const body = this.hf.encode('a', { add_special_tokens: false }).ids;
    for (let start = 0; start + body.length <= withSpecial.length; start++) {
      if (sameIds(withSpecial.slice(start, start + body.length), body)) {
        return [withSpecial.slice(0, start), withSpecial.slice(start + body.length)];
      }
    }
    throw new Error(`${this.source}: the post-processor does not keep the text's tokens contiguous; this tokenizer is not supported`);
  }
}

/**
 * Loads the tokenizer of a model directory, or returns null when it has no tokenizer.json (then use pre-tokenized
 * data). Files are size-checked before reading; errors name the file and the fix.
 */
export function loadTokenizer(dir: string): Tokenizer | null {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`loadTokenizer: ${dir} is not a directory`);
  const tokenizerJson = readJsonFile(join(dir, 'tokenizer.json'), MAX_TOKENIZER_JSON_BYTES);
  if (tokenizerJson === null) return null;
  const jinja = readTextFile(join(dir, 'chat_template.jinja'), MAX_CHAT_TEMPLATE_FILE_BYTES);
  const templateJson = jinja === null ? readJsonFile(join(dir, 'chat_template.json'), MAX_CHAT_TEMPLATE_FILE_BYTES) : null;
  if (templateJson !== null && templateJson.chat_template === undefined) {
    throw new Error(`${join(dir, 'chat_template.json')} has no "chat_template" key; expected {"chat_template": "..."}`);
  }
  return new Tokenizer({
    source: dir,
    tokenizerJson,
    config: readJsonFile(join(dir, 'tokenizer_config.json'), MAX_TOKENIZER_CONFIG_BYTES) ?? undefined,
    specialTokensMap: readJsonFile(join(dir, 'special_tokens_map.json'), MAX_TOKENIZER_CONFIG_BYTES) ?? undefined,
    chatTemplateFile: jinja ?? templateJson?.chat_template ?? null,
  });
}

/** loadTokenizer for callers that cannot work without one (text datasets, generation). */
export function requireTokenizer(dir: string): Tokenizer {
  const tokenizer = loadTokenizer(dir);
  if (tokenizer !== null) return tokenizer;
  const slowFiles = ['vocab.json', 'merges.txt', 'tokenizer.model'].filter((f) => existsSync(join(dir, f)));
  throw new Error(
    `${dir} has no tokenizer.json` +
      (slowFiles.length > 0 ? ` (it has ${slowFiles.join(', ')}: only the fast-tokenizer format is read)` : '') +
      '. Save one with Python: AutoTokenizer.from_pretrained(src).save_pretrained(dir), or use a pre-tokenized dataset ' +
      '(prompt_input_ids, chosen_input_ids, rejected_input_ids).',
  );
}

/** Copies the tokenizer files that exist in srcDir to outDir (for checkpoints); returns the names copied. */
export function saveTokenizerFiles(srcDir: string, outDir: string): string[] {
  const present = TOKENIZER_FILES.filter((name) => existsSync(join(srcDir, name)));
  if (resolve(srcDir) === resolve(outDir)) return present;
  mkdirSync(outDir, { recursive: true });
  for (const name of present) {
    const partial = join(outDir, `${name}.tmp-${process.pid}`); // a reader never sees a half-copied file
    copyFileSync(join(srcDir, name), partial);
    renameSync(partial, join(outDir, name));
  }
  return present;
}

export interface StreamDecoder {
  /** Adds one generated id; returns the text it completes ('' while a character's bytes are still arriving). */
  push(id: number): string;
  /** Returns what is still held back (an unfinished character decodes as U+FFFD); call once generation stops. */
  flush(): string;
}

/**
 * Incremental decoding for streaming generation. Decodes a short window of recent ids twice (with and without the
 * new id) and emits the difference once it no longer ends in U+FFFD, so a character split over byte-level tokens
 * comes out whole and context-dependent decoders (leading-space rules) stay right. Clean-up of spaces is off: it is
 * a whole-string heuristic, so the chunks add up to decode(ids, {cleanUpTokenizationSpaces: false}).
 */
export function createStreamDecoder(tokenizer: Tokenizer, opts: { skipSpecialTokens?: boolean } = {}): StreamDecoder {
  const ids: number[] = [];
  let prefixOffset = 0; // start of the window
  let readOffset = 0; // ids before this have been emitted
  const decode = (from: number, to: number) =>
    tokenizer.decode(ids.slice(from, to), { skipSpecialTokens: opts.skipSpecialTokens, cleanUpTokenizationSpaces: false });
  const emit = (final: boolean): string => {
    const prefixText = decode(prefixOffset, readOffset);
    const text = decode(prefixOffset, ids.length);
    if (text.length <= prefixText.length || (!final && text.endsWith('\uFFFD'))) return '';
    prefixOffset = readOffset;
    readOffset = ids.length;
    return text.slice(prefixText.length);
  };
  return {
    push(id: number): string {
      tokenizer.decode([id]); // validates the id before it enters the window
      ids.push(id);
      return emit(false);
    },
    flush: () => emit(true),
  };
}

// ------------------------------------------------------------------------------------------------ file helpers

function readTextFile(path: string, maxBytes: number): string | null {
  if (!existsSync(path)) return null;
  const stat = statSync(path);
  if (!stat.isFile()) throw new Error(`${path} is not a regular file`);
  if (stat.size > maxBytes) {
    throw new Error(`${path} is ${stat.size} bytes, over the ${maxBytes}-byte limit for this file; check that it is the right file (not weights or a dataset)`);
  }
  return readFileSync(path, 'utf8');
}

function readJsonFile(path: string, maxBytes: number): JsonObject | null {
  const text = readTextFile(path, maxBytes);
  if (text === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON (${messageOf(err)}); re-download or re-save it`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${path} must hold a JSON object`);
  return value as JsonObject;
}

// A special token in HF files is a string, an AddedToken object ({"content": ...}) or null.
function tokenContent(value: unknown, where: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as JsonObject).content === 'string') return (value as JsonObject).content as string;
  throw new Error(`${where}: expected a token string or {"content": "..."}, got ${JSON.stringify(value)}`);
}

// chat_template is a string, or a list of {name, template} (several named templates), or null.
function chatTemplatesOf(value: unknown, source: string): Record<string, string> {
  if (value === null || value === undefined) return {};
  if (typeof value === 'string') return { default: value };
  if (Array.isArray(value)) {
    const named: Record<string, string> = {};
    for (const entry of value as unknown[]) {
      const { name, template } = (entry ?? {}) as JsonObject;
      if (typeof name !== 'string' || typeof template !== 'string') {
        throw new Error(`${source}: chat_template list entries must be {"name": string, "template": string}, got ${JSON.stringify(entry)}`);
      }
      named[name] = template;
    }
    return named;
  }
  throw new Error(`${source}: chat_template must be a string or a list of {name, template}, got ${typeof value}`);
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
