// Preference data (layer 6): TRL dataset shapes from JSONL / JSON / Parquet, tokenization by TRL's rules, truncation
// with a report, and the padding collator that builds one [chosen ; rejected] batch.
export * from './load.js';
export * from './shapes.js';
export * from './tokenize.js';
export * from './truncate.js';
export * from './collate.js';
export * from './dataset.js';
