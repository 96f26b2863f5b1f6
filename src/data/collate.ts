// Padding collator: B preference pairs become one batch for a single forward pass over 2B sequences, chosen rows
// first, then rejected rows in the same order. Pure arrays, no tensors: the trainer wraps them.
// Legend: B pairs, T = the longest prompt + completion in the batch; row r < B is chosen_r, row B + r is rejected_r.
// Not here: packing several sequences into one row.
import type { TokenizedExample } from './tokenize.js';

/** The label of a position whose next token is not scored (PyTorch's cross-entropy ignore_index). */
export const IGNORE_INDEX = -100;

export interface PreferenceBatch {
  /** Number of pairs; the batch has 2B rows. */
  B: number;
  /** Row length: the longest prompt + completion among the 2B sequences. */
  T: number;
  /** (2B, T) [chosen_0..chosen_{B-1}; rejected_0..rejected_{B-1}], each prompt ++ completion, right-padded with padTokenId. */
  inputIds: Int32Array;
  /** (2B, T) 1 on real tokens, 0 on padding. */
  attentionMask: Uint8Array;
  /**
   * (2B, T) position t predicts token t + 1: targets[r, t] = inputIds[r, t + 1] when t + 1 holds a completion token,
   * else IGNORE_INDEX (prompt, padding, and the last column). Sum log p(targets) over non-ignored positions to get a
   * sequence's log-probability.
   */
  targets: Int32Array;
  /** (2B) prompt tokens per row (each pair's prompt appears in its chosen and its rejected row). */
  promptLengths: Int32Array;
  /** (2B) scored completion tokens per row: the number of targets that are not IGNORE_INDEX. */
  completionLengths: Int32Array;
  /** (B) each pair's record index in the dataset. */
  exampleIndices: Int32Array;
}

export interface CollateOptions {
  /** Id written into padding positions (masked out; TRL uses the pad token, else EOS). */
  padTokenId: number;
}

export function collatePreferenceBatch(examples: readonly TokenizedExample[], opts: CollateOptions): PreferenceBatch {
  const B = examples.length;
  if (B === 0) throw new RangeError('collatePreferenceBatch: no examples; a batch needs at least one pair');
  if (!Number.isSafeInteger(opts.padTokenId) || opts.padTokenId < 0) {
    throw new RangeError(`collatePreferenceBatch: padTokenId must be a non-negative integer, got ${opts.padTokenId}`);
  }
  const rows: { prompt: number[]; completion: number[] }[] = [
    ...examples.map((e) => ({ prompt: e.promptIds, completion: e.chosenIds })),
    ...examples.map((e) => ({ prompt: e.promptIds, completion: e.rejectedIds })),
  ];
  const T = Math.max(...rows.map((row) => row.prompt.length + row.completion.length));
  const inputIds = new Int32Array(2 * B * T).fill(opts.padTokenId);
  const attentionMask = new Uint8Array(2 * B * T);
  const targets = new Int32Array(2 * B * T).fill(IGNORE_INDEX);
  const promptLengths = new Int32Array(2 * B);
  const completionLengths = new Int32Array(2 * B);
  rows.forEach(({ prompt, completion }, r) => {
    const base = r * T;
    const length = prompt.length + completion.length;
    inputIds.set(prompt, base);
    inputIds.set(completion, base + prompt.length);
    attentionMask.fill(1, base, base + length);
    // The token at position p (p ≥ prompt.length, p ≥ 1) is a completion token, predicted at position p − 1.
    for (let p = Math.max(prompt.length, 1); p < length; p++) targets[base + p - 1] = inputIds[base + p];
    promptLengths[r] = prompt.length;
    completionLengths[r] = Math.max(0, length - Math.max(prompt.length, 1));
  });
  return { B, T, inputIds, attentionMask, targets, promptLengths, completionLengths, exampleIndices: Int32Array.from(examples, (e) => e.index) };
}
