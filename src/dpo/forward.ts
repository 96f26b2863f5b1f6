// One model's pass over one collated batch, as the trainer and the reference strategies need it: per-pair sequence
// log-probs and lengths (with LD-DPO's length desensitisation when ldAlpha is set), TRL's logit sums, WPO's pair
// weights when asked, and the number of real tokens run. With chosenOnly (the sft loss alone) only the B chosen rows
// are run. With prefixSharing or paddingFree the batch is run in its packed layout (data/pack.ts): the same results
// from fewer tokens. Gradients flow when the caller records them. Not here: the losses or the optimizer.
// Legend: B pairs, R = 2B rows (B with chosenOnly), T tokens, N completion tokens.
import { IGNORE_INDEX, type PreferenceBatch } from '../data/collate.js';
import { packPreferenceBatch, type PackedBatch } from '../data/pack.js';
import { tensor, zeros, type Tensor } from '../engine/tensor.js';
import type { CausalLM } from '../models/types.js';
import { ldDpoLogps, ldDpoSharedLengths, wpoTokenLogNormalizer, wpoWeights } from './losses/index.js';
import { sequenceLogps, splitPairs, type ConcatenatedBatch } from './logps.js';

export interface ForwardPairsOptions {
  /** LD-DPO's α (TRL: ld_alpha): tokens past the shorter completion of a pair count α; null is plain summing. */
  ldAlpha: number | null;
  /** WPO (TRL: use_weighting): also return the detached pair weights. */
  useWeighting: boolean;
  /** Run only the chosen rows (the sft loss reads nothing else); rejected values are then zeros. */
  chosenOnly: boolean;
  chunkRows?: number;
  /** How the rows are laid out for the forward pass (default: the padded batch as it is). */
  layout?: BatchLayout;
}

/**
 * Two layouts that run fewer tokens for the same log-probs (data/pack.ts). prefixSharing: the prompt is computed once
 * for both completions. paddingFree (TRL: padding_free): several sequences per row instead of padding each one.
 */
export interface BatchLayout {
  prefixSharing: boolean;
  paddingFree: boolean;
}

export const paddedLayout: Readonly<BatchLayout> = Object.freeze({ prefixSharing: false, paddingFree: false });

export interface PairForward {
  /** (B) Σ log π(y_w), Σ log π(y_l); carry the gradient when grad is enabled. */
  chosen: Tensor;
  rejected: Tensor;
  /** (B) completion lengths as floats. */
  chosenLength: Tensor;
  rejectedLength: Tensor;
  /** (B) WPO weights (detached), or null. */
  pairWeights: Tensor | null;
  /** Σ raw logits over completion positions × vocabulary, and the number of such entries, per side. */
  chosenLogitSum: number;
  chosenLogitEntries: number;
  rejectedLogitSum: number;
  rejectedLogitEntries: number;
  /** Real (unpadded) tokens in the rows that were run. */
  numTokens: number;
}

/** The first B rows (the chosen sequences) of a [chosen; rejected] batch. */
function chosenRows(batch: PreferenceBatch): ConcatenatedBatch {
  const n = batch.B * batch.T;
  return { T: batch.T, inputIds: batch.inputIds.subarray(0, n), attentionMask: batch.attentionMask.subarray(0, n), targets: batch.targets.subarray(0, n) };
}

export function forwardPairs(model: CausalLM, batch: PreferenceBatch, o: ForwardPairsOptions): PairForward {
  const rowsBatch = o.chosenOnly ? chosenRows(batch) : batch;
  let numTokens = 0;
  for (const m of rowsBatch.attentionMask) numTokens += m;
  // WPO needs log Σ_v π(v)² at every completion position, from the logits chunks as they pass.
  let normalizer: Float64Array | null = null;
  const onChunkLogits = o.useWeighting ? (logits: Tensor, start: number) => normalizer!.set(wpoTokenLogNormalizer(logits).data, start) : undefined;
  if (o.useWeighting) {
    let n = 0;
    for (const t of rowsBatch.targets) if (t !== IGNORE_INDEX) n++;
    normalizer = new Float64Array(n);
  }
  const layout = o.layout ?? paddedLayout;
  const input: ConcatenatedBatch | PackedBatch = layout.prefixSharing || layout.paddingFree ? packPreferenceBatch(batch, { ...layout, chosenOnly: o.chosenOnly }) : rowsBatch;
  const rows = sequenceLogps(model, input, { chunkRows: o.chunkRows, onChunkLogits });
  const r = rows.counts.length;
  const vocab = rows.vocabSize;
  if (o.chosenOnly) {
    let chosenLogitSum = 0;
    let tokens = 0;
    for (let i = 0; i < r; i++) {
      chosenLogitSum += rows.logitSums[i];
      tokens += rows.counts[i];
    }
    const dtype = rows.sums.dtype;
    return {
      chosen: rows.sums, rejected: zeros([r], dtype), chosenLength: tensor(rows.counts, [r], dtype), rejectedLength: zeros([r], dtype),
      pairWeights: null, chosenLogitSum, chosenLogitEntries: tokens * vocab, rejectedLogitSum: 0, rejectedLogitEntries: 0, numTokens,
    };
  }
  const sums = o.ldAlpha === null ? rows.sums : ldDpoLogps(rows.tokenLogps, rows.tokenRow, ldDpoSharedLengths(rows.counts), o.ldAlpha);
  const pairs = splitPairs({ ...rows, sums });
  const b = r / 2;
  const side = (from: number) => {
    let total = 0;
    let tokens = 0;
    for (let i = from; i < from + b; i++) {
      total += rows.logitSums[i];
      tokens += rows.counts[i];
    }
    return [total, tokens * vocab];
  };
  const [chosenLogitSum, chosenLogitEntries] = side(0);
  const [rejectedLogitSum, rejectedLogitEntries] = side(b);
  const pairWeights = normalizer === null ? null : wpoWeights(rows.tokenLogps, tensor(normalizer, [normalizer.length], rows.tokenLogps.dtype), rows.tokenRow, r);
  return {
    chosen: pairs.chosen, rejected: pairs.rejected, chosenLength: pairs.chosenLength, rejectedLength: pairs.rejectedLength,
    pairWeights, chosenLogitSum, chosenLogitEntries, rejectedLogitSum, rejectedLogitEntries, numTokens,
  };
}
