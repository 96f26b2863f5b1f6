// Truncation of tokenized preference pairs to TRL's max_prompt_length / max_completion_length / max_length, with a
// summary of what was cut or dropped and why (truncateExample states the rules). Pure functions over id lists.
import type { TokenizedExample } from './tokenize.js';

export type TruncationMode = 'keep_end' | 'keep_start';

export interface TruncationOptions {
  /** TRL max_length: most tokens in prompt + completion, per sequence. Default 1024; null = no limit. */
  maxLength?: number | null;
  /** TRL max_prompt_length: most prompt tokens. Default 512; null = no limit. */
  maxPromptLength?: number | null;
  /** TRL max_completion_length: most tokens per completion (EOS included). Default null = no limit. */
  maxCompletionLength?: number | null;
  /** TRL truncation_mode: which end of an over-long prompt is kept. Default 'keep_end' (the part nearest the answer). */
  truncationMode?: TruncationMode;
}

/** TRL's DPOConfig defaults. */
export const DEFAULT_TRUNCATION: Readonly<Required<TruncationOptions>> = {
  maxLength: 1024,
  maxPromptLength: 512,
  maxCompletionLength: null,
  truncationMode: 'keep_end',
};

/**
 * Why a pair was dropped. empty_completion: a completion had no token to score before any length limit (an empty
 * message list, an empty pre-tokenized list, or a one-token completion after an empty prompt: the first token of a
 * sequence is never predicted). no_room_for_completion: the (truncated) prompt fills maxLength.
 */
export type DropReason = 'empty_completion' | 'no_room_for_completion';

export interface DroppedExample {
  index: number;
  source: string;
  reason: DropReason;
}

export interface TruncationSummary {
  options: Required<TruncationOptions>;
  /** Pairs in, pairs kept. */
  examples: number;
  kept: number;
  /** Kept pairs whose prompt was cut (rule 1), and whose chosen or rejected completion was cut (rules 2–3). */
  promptTruncated: number;
  completionTruncated: number;
  /** Kept conversational pairs whose completions were tokenized apart under allowPromptMismatch. */
  promptMismatches: number;
  dropped: Record<DropReason, number>;
  /** The first MAX_LISTED_DROPS dropped pairs, to point at. */
  droppedExamples: DroppedExample[];
}

export const MAX_LISTED_DROPS = 10;

export interface TruncationOutcome {
  /** The truncated pair, or null when it was dropped. */
  example: TokenizedExample | null;
  promptTruncated: boolean;
  completionTruncated: boolean;
  dropReason: DropReason | null;
}

/** Checks the options and fills in TRL's defaults. */
export function resolveTruncationOptions(opts: TruncationOptions = {}): Required<TruncationOptions> {
  const resolved = { ...DEFAULT_TRUNCATION, ...stripUndefined(opts) };
  for (const key of ['maxLength', 'maxPromptLength', 'maxCompletionLength'] as const) {
    const v = resolved[key];
    if (v !== null && !(Number.isSafeInteger(v) && v >= 1)) throw new RangeError(`truncation: ${key} must be a positive integer or null (no limit), got ${v}`);
  }
  if (resolved.truncationMode !== 'keep_end' && resolved.truncationMode !== 'keep_start') {
    throw new RangeError(`truncation: truncationMode must be 'keep_end' or 'keep_start', got ${JSON.stringify(resolved.truncationMode)}`);
  }
  return resolved;
}

/**
 * The rules, in order; chosen and rejected are cut independently:
 *   1. a prompt longer than maxPromptLength keeps its last tokens (keep_end) or its first (keep_start);
 *   2. a completion longer than maxCompletionLength keeps its first tokens;
 *   3. a prompt + completion longer than maxLength keeps the whole prompt and cuts the completion's end;
 *   4. a pair where either completion is left with no scored token is dropped, never scored with zero tokens.
 */
export function truncateExample(example: TokenizedExample, opts: TruncationOptions = {}): TruncationOutcome {
  const { maxLength, maxPromptLength, maxCompletionLength, truncationMode } = resolveTruncationOptions(opts);
  let promptIds = example.promptIds;
  if (maxPromptLength !== null && promptIds.length > maxPromptLength) {
    promptIds = truncationMode === 'keep_end' ? promptIds.slice(promptIds.length - maxPromptLength) : promptIds.slice(0, maxPromptLength);
  }
  const promptTruncated = promptIds.length < example.promptIds.length;
  // A completion token is scored when some token precedes it (position t predicts t + 1).
  const scored = (completionLength: number) => completionLength - (promptIds.length === 0 ? 1 : 0);
  if (scored(example.chosenIds.length) <= 0 || scored(example.rejectedIds.length) <= 0) {
    return { example: null, promptTruncated, completionTruncated: false, dropReason: 'empty_completion' };
  }
  const room = maxLength === null ? Infinity : maxLength - promptIds.length;
  const cut = (ids: number[]) => ids.slice(0, Math.max(0, Math.min(maxCompletionLength ?? Infinity, room)));
  const chosenIds = cut(example.chosenIds);
  const rejectedIds = cut(example.rejectedIds);
  const completionTruncated = chosenIds.length < example.chosenIds.length || rejectedIds.length < example.rejectedIds.length;
  if (scored(chosenIds.length) <= 0 || scored(rejectedIds.length) <= 0) {
    return { example: null, promptTruncated, completionTruncated, dropReason: 'no_room_for_completion' };
  }
  return { example: { ...example, promptIds, chosenIds, rejectedIds }, promptTruncated, completionTruncated, dropReason: null };
}

/** Truncates every pair and counts what happened. Zero kept pairs is returned, not thrown: the caller decides. */
export function truncateExamples(examples: readonly TokenizedExample[], opts: TruncationOptions = {}): { examples: TokenizedExample[]; summary: TruncationSummary } {
  const options = resolveTruncationOptions(opts);
  const kept: TokenizedExample[] = [];
  const summary: TruncationSummary = {
    options, examples: examples.length, kept: 0, promptTruncated: 0, completionTruncated: 0, promptMismatches: 0,
    dropped: { empty_completion: 0, no_room_for_completion: 0 }, droppedExamples: [],
  };
  for (const example of examples) {
    const outcome = truncateExample(example, options);
    if (outcome.example === null) {
      const reason = outcome.dropReason ?? 'empty_completion';
      summary.dropped[reason]++;
      if (summary.droppedExamples.length < MAX_LISTED_DROPS) summary.droppedExamples.push({ index: example.index, source: example.source, reason });
      continue;
    }
    kept.push(outcome.example);
    if (outcome.promptTruncated) summary.promptTruncated++;
    if (outcome.completionTruncated) summary.completionTruncated++;
    if (outcome.example.promptMismatch) summary.promptMismatches++;
  }
  summary.kept = kept.length;
  return { examples: kept, summary };
}

const REASON_TEXT: Record<DropReason, string> = {
  empty_completion: 'empty completion',
  no_room_for_completion: 'prompt fills max_length',
};

/** One printable line, e.g. "data: 10 pairs, 9 kept; prompt truncated in 2 (max_prompt_length=512, keep_end); …". */
export function formatTruncationSummary(s: TruncationSummary): string {
  const o = s.options;
  const limit = (v: number | null) => (v === null ? 'none' : String(v));
  const parts = [`data: ${s.examples} pairs, ${s.kept} kept`];
  parts.push(`prompt truncated in ${s.promptTruncated} (max_prompt_length=${limit(o.maxPromptLength)}, ${o.truncationMode})`);
  parts.push(`completion truncated in ${s.completionTruncated} (max_length=${limit(o.maxLength)}, max_completion_length=${limit(o.maxCompletionLength)})`);
  const droppedTotal = s.dropped.empty_completion + s.dropped.no_room_for_completion;
  if (droppedTotal > 0) {
    const reasons = (Object.keys(s.dropped) as DropReason[]).filter((r) => s.dropped[r] > 0).map((r) => `${s.dropped[r]} ${REASON_TEXT[r]}`);
    const first = s.droppedExamples[0];
    parts.push(`dropped ${droppedTotal} (${reasons.join(', ')}; first: record ${first.index} at ${first.source})`);
  } else {
    parts.push('dropped 0');
  }
  if (s.promptMismatches > 0) parts.push(`${s.promptMismatches} with completions tokenized apart (allowPromptMismatch)`);
  return parts.join('; ');
}

function stripUndefined(opts: TruncationOptions): TruncationOptions {
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
}
