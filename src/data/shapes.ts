// TRL's preference dataset shapes (standard or conversational, explicit or implicit prompt, plus pre-tokenized):
// what each row means, checked per record, with an implicit prompt extracted as TRL's extract_prompt does.
// Not here: chat templates and tokenization (tokenize.ts).
import type { ChatMessage } from '../io/chat-template.js';
import { isJsonObject } from '../io/json.js';
import { PreferenceDataError, type RawRow } from './load.js';

/**
 *   standard_explicit        {prompt: str, chosen: str, rejected: str}
 *   standard_implicit        {chosen: str, rejected: str}                  prompt = their common prefix
 *   conversational_explicit  {prompt: [msg], chosen: [msg], rejected: [msg]}
 *   conversational_implicit  {chosen: [msg], rejected: [msg]}              prompt = their common leading messages
 *   pretokenized             {prompt_input_ids: [int], chosen_input_ids: [int], rejected_input_ids: [int]}
 * A message is {role: str, content: str | [parts] | null, …}. Other columns are ignored (load.ts PREFERENCE_COLUMNS).
 */
export type DatasetShape = 'standard_explicit' | 'standard_implicit' | 'conversational_explicit' | 'conversational_implicit' | 'pretokenized';

interface RecordBase {
  /** Position in the input (files in name order, rows in file order), 0-based. */
  index: number;
  /** file:line (JSONL, 1-based) or file#row (JSON array, Parquet; 0-based). */
  source: string;
}

/** A standard-shape pair; for the implicit shape, `prompt` is the extracted common prefix. */
export interface TextRecord extends RecordBase {
  kind: 'text';
  prompt: string;
  chosen: string;
  rejected: string;
}

/** A conversational pair: the prompt messages, then each completion's messages. */
export interface ConversationRecord extends RecordBase {
  kind: 'conversation';
  prompt: ChatMessage[];
  chosen: ChatMessage[];
  rejected: ChatMessage[];
}

/** A pre-tokenized pair, used as given (no BOS/EOS added). */
export interface TokenRecord extends RecordBase {
  kind: 'tokens';
  promptIds: number[];
  chosenIds: number[];
  rejectedIds: number[];
}

export type PreferenceRecord = TextRecord | ConversationRecord | TokenRecord;

export interface PreferenceDataset {
  shape: DatasetShape;
  records: PreferenceRecord[];
  /** The files read, in order. */
  files: string[];
}

const TOKEN_COLUMNS = ['prompt_input_ids', 'chosen_input_ids', 'rejected_input_ids'] as const;

/**
 * Reads one row as a preference record. Any *_input_ids column makes the row pre-tokenized (then all three are
 * required and the text columns are ignored). Otherwise chosen and rejected are required, both strings or both
 * message lists; a prompt of the same kind makes it explicit. A prompt of the other kind is ignored and the prompt
 * is extracted, as TRL's maybe_extract_prompt does (some datasets carry an informational prompt column).
 */
export function parsePreferenceRow(row: RawRow): { shape: DatasetShape; record: PreferenceRecord } {
  const { index, source, fields } = row;
  const fail = (detail: string): never => {
    throw new PreferenceDataError(index, source, detail);
  };
  if (TOKEN_COLUMNS.some((c) => fields[c] !== undefined)) {
    const missing = TOKEN_COLUMNS.filter((c) => fields[c] === undefined);
    if (missing.length > 0) fail(`pre-tokenized record lacks ${missing.map((c) => `"${c}"`).join(' and ')}; give all of ${TOKEN_COLUMNS.join(', ')}`);
    const [promptIds, chosenIds, rejectedIds] = TOKEN_COLUMNS.map((c) => tokenIds(fields[c], c, fail));
    return { shape: 'pretokenized', record: { kind: 'tokens', index, source, promptIds, chosenIds, rejectedIds } };
  }
  const missing = (['chosen', 'rejected'] as const).filter((c) => fields[c] === undefined);
  if (missing.length > 0) {
    fail(`missing field ${missing.map((c) => `"${c}"`).join(' and ')}; a preference record needs "chosen" and "rejected" ` +
      '(strings or message lists), with an optional "prompt", or the *_input_ids columns');
  }
  const chosenKind = kindOf(fields.chosen, 'chosen', fail);
  const rejectedKind = kindOf(fields.rejected, 'rejected', fail);
  if (chosenKind !== rejectedKind) fail(`"chosen" is ${describeKind(chosenKind)} but "rejected" is ${describeKind(rejectedKind)}; both must be the same kind`);
  const promptKind = fields.prompt === undefined ? null : kindOf(fields.prompt, 'prompt', fail);
  const explicit = promptKind === chosenKind;

  if (chosenKind === 'text') {
    const [chosen, rejected] = [fields.chosen as string, fields.rejected as string];
    if (explicit) return { shape: 'standard_explicit', record: { kind: 'text', index, source, prompt: fields.prompt as string, chosen, rejected } };
    return { shape: 'standard_implicit', record: { kind: 'text', index, source, ...extractTextPrompt(chosen, rejected) } };
  }
  const [chosen, rejected] = [messages(fields.chosen, 'chosen', fail), messages(fields.rejected, 'rejected', fail)];
  if (explicit) {
    const prompt = messages(fields.prompt, 'prompt', fail);
    return { shape: 'conversational_explicit', record: { kind: 'conversation', index, source, prompt, chosen, rejected } };
  }
  return { shape: 'conversational_implicit', record: { kind: 'conversation', index, source, ...extractMessagesPrompt(chosen, rejected) } };
}

/** Parses every row; all records must share one shape, and there must be at least one. */
export function parsePreferenceRows(rows: readonly RawRow[], files: string[]): PreferenceDataset {
  if (rows.length === 0) throw new Error(`${files.join(', ')}: the dataset has no records`);
  const records: PreferenceRecord[] = [];
  let shape: DatasetShape | null = null;
  for (const row of rows) {
    const parsed = parsePreferenceRow(row);
    if (shape !== null && parsed.shape !== shape) {
      const first = records[0];
      throw new PreferenceDataError(row.index, row.source,
        `record is ${parsed.shape} but record ${first.index} (${first.source}) is ${shape}; one dataset must use one shape ` +
        '(convert the records, or split them into separate datasets)');
    }
    shape = parsed.shape;
    records.push(parsed.record);
  }
  return { shape: shape ?? 'standard_explicit', records, files };
}

/**
 * TRL's extract_prompt on strings: the prompt is the common prefix of chosen and rejected. When the first differing
 * character follows a space, that space moves to the completions ("The sky is" + " blue." / " green."). When one
 * string is a prefix of the other, TRL's loop stops one character early, so both completions keep ≥ 1 character.
 */
export function extractTextPrompt(chosen: string, rejected: string): { prompt: string; chosen: string; rejected: string } {
  const cut = commonPrefixCut(chosen.length, rejected.length, (i) => chosen[i] === rejected[i], (i) => chosen[i] === ' ');
  return { prompt: chosen.slice(0, cut), chosen: chosen.slice(cut), rejected: rejected.slice(cut) };
}

/** TRL's extract_prompt on message lists: the prompt is the leading messages both share (deep equality). */
export function extractMessagesPrompt(chosen: ChatMessage[], rejected: ChatMessage[]): { prompt: ChatMessage[]; chosen: ChatMessage[]; rejected: ChatMessage[] } {
  const cut = commonPrefixCut(chosen.length, rejected.length, (i) => jsonEqual(chosen[i], rejected[i]), () => false);
  return { prompt: chosen.slice(0, cut), chosen: chosen.slice(cut), rejected: rejected.slice(cut) };
}

// The split point of TRL's loop `for idx in range(min(len)): if c[idx] != r[idx]: (step back over a space) break`.
// TRL steps back with c[idx - 1] even at idx = 0 (Python's c[-1]); here the space rule needs idx > 0.
function commonPrefixCut(lenA: number, lenB: number, same: (i: number) => boolean, isSpace: (i: number) => boolean): number {
  const n = Math.min(lenA, lenB);
  for (let i = 0; i < n; i++) {
    if (!same(i)) return i > 0 && isSpace(i - 1) ? i - 1 : i;
  }
  return Math.max(n - 1, 0);
}

type ValueKind = 'text' | 'messages';

function kindOf(value: unknown, field: string, fail: (detail: string) => never): ValueKind {
  if (typeof value === 'string') return 'text';
  if (Array.isArray(value)) return 'messages';
  return fail(`"${field}" must be a string or a list of {"role", "content"} messages, got ${describeValue(value)}`);
}

function describeKind(kind: ValueKind): string {
  return kind === 'text' ? 'a string' : 'a message list';
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'bigint') return `the integer ${value} (beyond 2^53)`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

// Checks each message as TRL's is_conversational expects ({role, content}); content may be a string, a list of
// parts ({type: 'text', text}) or null (a tool call). Other keys pass through to the chat template.
function messages(value: unknown, field: string, fail: (detail: string) => never): ChatMessage[] {
  const list = value as unknown[];
  return list.map((m, i) => {
    if (!isJsonObject(m) || typeof m.role !== 'string' || !('content' in m)) {
      return fail(`"${field}"[${i}] must be a message {"role": string, "content": …}, got ${JSON.stringify(m)?.slice(0, 80)}`);
    }
    const content = m.content;
    if (!(typeof content === 'string' || content === null || Array.isArray(content))) {
      return fail(`"${field}"[${i}].content must be a string, a list of parts or null, got ${describeValue(content)}`);
    }
    return m as ChatMessage;
  });
}

function tokenIds(value: unknown, field: string, fail: (detail: string) => never): number[] {
  if (!Array.isArray(value)) return fail(`"${field}" must be a list of token ids, got ${describeValue(value)}`);
  value.forEach((id, i) => {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      fail(`"${field}"[${i}] is ${describeValue(id)}; token ids are non-negative integers`);
    }
  });
  return value as number[];
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (!isJsonObject(a) || !isJsonObject(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => k in b && jsonEqual(a[k], b[k]));
}
