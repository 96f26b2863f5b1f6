// SFT datasets for `dpo sft`: TRL's language-modeling shapes read from JSONL / JSON / Parquet and tokenized with
// data/'s preference rules, so that one example is a TokenizedExample whose chosen (= rejected) completion is the
// part the loss covers. Shapes: {prompt, completion} (strings or message lists), {messages} (the final assistant
// turn is the completion), {text} (the whole sequence), and pre-tokenized {prompt_input_ids, completion_input_ids}
// or {input_ids}. Not here: batching (data/collate) or the loss (losses/sft).
import { extname } from 'node:path';
import { readFileSync } from 'node:fs';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { PreferenceDataError, listDataFiles } from '../data/load.js';
import { tokenizeRecord, type TokenizedExample } from '../data/tokenize.js';
import { formatTruncationSummary, truncateExamples, type TruncationOptions } from '../data/truncate.js';
import type { ChatMessage } from '../io/chat-template.js';
import { FormatError, isJsonObject, parseJsonText, type JsonObject } from '../io/json.js';
import type { Tokenizer } from '../io/tokenizer.js';

/** The columns an SFT row may use; others are ignored. */
export const SFT_COLUMNS = ['prompt', 'completion', 'messages', 'text', 'prompt_input_ids', 'completion_input_ids', 'input_ids'] as const;

interface Located { index: number; source: string }
export type SftRecord = Located & (
  | { kind: 'prompt_completion'; prompt: string; completion: string }
  | { kind: 'conversation'; prompt: ChatMessage[]; completion: ChatMessage[] }
  | { kind: 'text'; text: string }
  | { kind: 'tokens'; promptIds: number[]; completionIds: number[] }
);

export interface SftPrepareOptions extends TruncationOptions {
  /** true (TRL's default): the loss covers the completion only; false: the prompt too. */
  completionOnlyLoss: boolean;
  allowPromptMismatch?: boolean;
  vocabSize?: number;
}

/** Reads every row of a file or folder and checks its shape; errors name the record and its file:line. */
export async function loadSftDataset(path: string): Promise<SftRecord[]> {
  const records: SftRecord[] = [];
  for (const file of listDataFiles(path)) {
    for (const { source, fields } of await readRows(file)) records.push(parseSftRow(records.length, source, fields));
  }
  if (records.length === 0) throw new Error(`${path}: the SFT dataset has no records`);
  return records;
}

/** One row as an SftRecord. */
export function parseSftRow(index: number, source: string, f: JsonObject): SftRecord {
  const fail = (detail: string): never => {
    throw new PreferenceDataError(index, source, detail);
  };
  const at = { index, source };
  if (f.input_ids !== undefined) return { ...at, kind: 'tokens', promptIds: [], completionIds: ids(f.input_ids, 'input_ids', fail) };
  if (f.prompt_input_ids !== undefined || f.completion_input_ids !== undefined) {
    return { ...at, kind: 'tokens', promptIds: ids(f.prompt_input_ids, 'prompt_input_ids', fail), completionIds: ids(f.completion_input_ids, 'completion_input_ids', fail) };
  }
  if (typeof f.text === 'string') return { ...at, kind: 'text', text: f.text };
  if (Array.isArray(f.messages)) {
    const messages = f.messages.map((m, i) => message(m, `messages[${i}]`, fail));
    const last = messages[messages.length - 1];
    if (last?.role !== 'assistant') fail('"messages" must end with an assistant turn: it is the completion the loss covers');
    return { ...at, kind: 'conversation', prompt: messages.slice(0, -1), completion: [last] };
  }
  if (typeof f.prompt === 'string' && typeof f.completion === 'string') return { ...at, kind: 'prompt_completion', prompt: f.prompt, completion: f.completion };
  if (Array.isArray(f.prompt) && Array.isArray(f.completion)) {
    return { ...at, kind: 'conversation', prompt: f.prompt.map((m, i) => message(m, `prompt[${i}]`, fail)), completion: f.completion.map((m, i) => message(m, `completion[${i}]`, fail)) };
  }
  return fail(`not an SFT record: expected {"prompt", "completion"} (both strings or both message lists), {"messages": [...]}, {"text"}, ` +
    `or pre-tokenized {"prompt_input_ids", "completion_input_ids"} / {"input_ids"}; found the keys ${JSON.stringify(Object.keys(f))}`);
}

/**
 * Tokenizes (data/'s TRL rules: BOS before a standard prompt, EOS after a completion; chat template for messages),
 * truncates, and returns TokenizedExamples whose chosenIds and rejectedIds are both the completion. With
 * completionOnlyLoss false the prompt moves into the completion, so every token after the first is scored.
 */
export function prepareSftExamples(records: readonly SftRecord[], tokenizer: Tokenizer | null, o: SftPrepareOptions): { examples: TokenizedExample[]; summaryLine: string } {
  const tokenized = records.map((r): TokenizedExample => {
    const base = { index: r.index, source: r.source, promptMismatch: false };
    let ex: TokenizedExample;
    if (r.kind === 'tokens') {
      ex = tokenizeRecord({ ...base, kind: 'tokens', promptIds: r.promptIds, chosenIds: r.completionIds, rejectedIds: r.completionIds }, tokenizer, o);
    } else if (r.kind === 'text') {
      // The whole text is the completion: the prompt is only the tokenizer's prefix (BOS), so every token is scored.
      ex = tokenizeRecord({ ...base, kind: 'text', prompt: '', chosen: r.text, rejected: r.text }, tokenizer, o);
    } else if (r.kind === 'prompt_completion') {
      ex = tokenizeRecord({ ...base, kind: 'text', prompt: r.prompt, chosen: r.completion, rejected: r.completion }, tokenizer, o);
    } else {
      ex = tokenizeRecord({ ...base, kind: 'conversation', prompt: r.prompt, chosen: r.completion, rejected: r.completion }, tokenizer, o);
    }
    if (o.completionOnlyLoss) return ex;
    const whole = [...ex.promptIds, ...ex.chosenIds];
    return { ...ex, promptIds: [], chosenIds: whole, rejectedIds: whole };
  });
  const { examples, summary } = truncateExamples(tokenized, o);
  const summaryLine = formatTruncationSummary(summary).replace(/pairs/, 'examples');
  if (examples.length === 0) throw new Error(`SFT dataset: no usable examples (${summaryLine}); raise --max-length or check that completions are not empty`);
  return { examples, summaryLine };
}

// ------------------------------------------------------------------------------------------------ reading rows
async function readRows(file: string): Promise<{ source: string; fields: JsonObject }[]> {
  const ext = extname(file).toLowerCase();
  const pick = (o: JsonObject) => Object.fromEntries(SFT_COLUMNS.filter((k) => o[k] !== undefined && o[k] !== null).map((k) => [k, o[k]]));
  if (ext === '.parquet') {
    const rows = await parquetReadObjects({ file: await asyncBufferFromFile(file) });
    return rows.map((row, i) => ({ source: `${file}#${i}`, fields: pick(fromParquet(row) as JsonObject) }));
  }
  const text = readFileSync(file, 'utf8');
  if (ext === '.json') {
    const parsed = parseJsonText(text, file, 'JSON dataset');
    const items = Array.isArray(parsed) ? parsed : isJsonObject(parsed) && Array.isArray(parsed.data) ? parsed.data : null;
    if (items === null) throw new FormatError(file, 'a .json dataset must be an array of row objects (or {"data": [rows]})');
    return items.map((item: unknown, i: number) => {
      if (!isJsonObject(item)) throw new FormatError(`${file}#${i}`, 'each row must be a JSON object');
      return { source: `${file}#${i}`, fields: pick(item) };
    });
  }
  const rows: { source: string; fields: JsonObject }[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const value = parseJsonText(line, `${file}:${i + 1}`, 'JSONL line');
    if (!isJsonObject(value)) throw new FormatError(`${file}:${i + 1}`, 'each JSONL line must be one JSON object');
    rows.push({ source: `${file}:${i + 1}`, fields: pick(value) });
  });
  return rows;
}

// hyparquet gives INT64 as bigint and may give typed arrays: make rows JSON-like.
function fromParquet(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (isTypedArray(v)) return Array.from(v, fromParquet);
  if (Array.isArray(v)) return v.map(fromParquet);
  if (isJsonObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromParquet(x)]));
  return v;
}

function isTypedArray(v: unknown): v is ArrayLike<number | bigint> {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

function ids(v: unknown, field: string, fail: (detail: string) => never): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
    return fail(`"${field}" must be a list of non-negative integer token ids`);
  }
  return v as number[];
}

function message(m: unknown, where: string, fail: (detail: string) => never): ChatMessage {
  if (!isJsonObject(m) || typeof m.role !== 'string' || !('content' in m)) return fail(`"${where}" must be a message {"role": string, "content": …}`);
  return m as ChatMessage;
}
