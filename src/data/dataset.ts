// The data pipeline end to end: load a preference dataset from disk (JSONL / JSON / Parquet / folder), then turn it
// into truncated token-id pairs ready for collatePreferenceBatch, with a summary of what was cut. Thin wiring over
// load.ts, shapes.ts, tokenize.ts and truncate.ts; a dataset with no usable pair is an error.
import type { Tokenizer } from '../io/tokenizer.js';
import { readPreferenceRows, type ReadRowsOptions } from './load.js';
import { parsePreferenceRows, type PreferenceDataset } from './shapes.js';
import { tokenizeRecord, type TokenizedExample, type TokenizeOptions } from './tokenize.js';
import { formatTruncationSummary, truncateExamples, type TruncationOptions, type TruncationSummary } from './truncate.js';

/** Reads `path` (a file or a folder of files, in name order) and checks every record's shape. */
export async function loadPreferenceDataset(path: string, opts: ReadRowsOptions = {}): Promise<PreferenceDataset> {
  const { rows, files } = await readPreferenceRows(path, opts);
  return parsePreferenceRows(rows, files);
}

export interface PrepareOptions extends TokenizeOptions, TruncationOptions {}

export interface PreparedPreferenceData {
  /** The kept pairs, in input order. */
  examples: TokenizedExample[];
  summary: TruncationSummary;
  /** formatTruncationSummary(summary), for the log. */
  summaryLine: string;
}

/**
 * Tokenizes (TRL's rules, tokenize.ts) and truncates (truncate.ts) every record. `tokenizer` may be null for a
 * pre-tokenized dataset. Throws when no pair survives, naming the reasons.
 */
export function preparePreferenceExamples(dataset: PreferenceDataset, tokenizer: Tokenizer | null, opts: PrepareOptions = {}): PreparedPreferenceData {
  const tokenized = dataset.records.map((record) => tokenizeRecord(record, tokenizer, opts));
  const { examples, summary } = truncateExamples(tokenized, opts);
  const summaryLine = formatTruncationSummary(summary);
  if (examples.length === 0) {
    throw new Error(
      `${dataset.files.join(', ')}: no usable preference pairs (${summaryLine}). ` +
        'Raise maxLength (--max-length) or lower maxPromptLength (--max-prompt-length), or check that completions are not empty',
    );
  }
  return { examples, summary, summaryLine };
}

/** The padding id for collation: the tokenizer's pad token, else EOS (as TRL sets pad_token = eos_token), else 0. */
export function defaultPadTokenId(tokenizer: Tokenizer | null): number {
  return tokenizer?.padTokenId ?? tokenizer?.eosTokenId ?? 0;
}
