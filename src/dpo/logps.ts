// Sequence log-probs for DPO: one forward pass over the concatenated [chosen; rejected] batch (or its packed layout,
// data/pack.ts), then the LM head applied only at the scored positions, in chunks of rows, each chunk fused into
// log-softmax + gather. Returns the per-sequence sums, token counts and length averages the losses need, the per-token
// log-probs for analysis, and the logit sums behind TRL's logits/chosen and logits/rejected. Not the losses (losses/)
// nor batching (data/).
// Legend: B pairs, R = 2B sequences (rows of the padded batch), T tokens, C hidden size, V vocabulary, N completion
// tokens in the batch.
import { ShapeError } from '../engine/errors.js';
import { IGNORE_INDEX, type PreferenceBatch } from '../data/collate.js';
import type { PackedBatch, ScoredTokens } from '../data/pack.js';
import { concat, gather, logSoftmaxGather, matmul, reshape, scatterAdd, slice, sum, div, maximum } from '../engine/ops/index.js';
import { isGradEnabled, noGrad, scope, tensor, zeros, type Tensor } from '../engine/tensor.js';
import type { CausalLM, ForwardOptions } from '../models/types.js';

export { IGNORE_INDEX };

/** Completion rows per LM-head chunk: bounds the transient (rows, V) logits when no gradient is recorded. */
export const DEFAULT_CHUNK_ROWS = 256;

/**
 * What sequenceLogps reads of a collated batch (data/'s PreferenceBatch): (2B, T) inputIds, attentionMask and
 * next-token targets (IGNORE_INDEX off the completions), pair i at rows i and B + i.
 */
export type ConcatenatedBatch = Pick<PreferenceBatch, 'T' | 'inputIds' | 'attentionMask' | 'targets'>;

export interface LogpsOptions {
  /** Completion rows per LM-head chunk (default DEFAULT_CHUNK_ROWS). */
  chunkRows?: number;
  /**
   * Called with each chunk's (rows, V) logits and the range [start, end) of completion tokens it covers, before the
   * chunk is freed: for statistics that need the whole distribution (WPO's wpoTokenLogNormalizer). Under grad, the
   * callback must not record ops on them (wrap it in noGrad).
   */
  onChunkLogits?: (logits: Tensor, start: number, end: number) => void;
}

/** Per-row results over the R = 2B rows (sequences: chosen_i at i, rejected_i at B + i, whatever the layout). */
export interface RowLogps {
  /** (R) Σ log π(token) over each row's completion tokens; carries the gradient when grad is enabled. */
  sums: Tensor;
  /** (R) completion tokens per row. */
  counts: Int32Array;
  /** (N) log π of each completion token, ordered by row then position; carries the gradient too. */
  tokenLogps: Tensor;
  /** (N) the row of each completion token. */
  tokenRow: Int32Array;
  /** (N) the position t whose logits score it: the token itself is inputIds[row, t + 1] of the padded batch. */
  tokenPosition: Int32Array;
  /** (R) Σ over completion positions and the whole vocabulary of the raw logits (float64, not differentiated). */
  logitSums: Float64Array;
  vocabSize: number;
}

/** The same results split into pairs, as losses/ and metrics use them. */
export interface PairLogps {
  /** (B) Σ log π(y_w) and Σ log π(y_l). */
  chosen: Tensor;
  rejected: Tensor;
  /** (B) completion lengths |y_w| and |y_l| as float tensors. */
  chosenLength: Tensor;
  rejectedLength: Tensor;
  /** (B) length-averaged log-probs Σ log π / |y| (0 for an empty completion). */
  chosenAverage: Tensor;
  rejectedAverage: Tensor;
  /**
   * TRL's logits/chosen and logits/rejected: the mean raw logit over every (completion position, vocabulary entry)
   * of the chosen (rejected) half of the batch (NaN when it has no completion token).
   */
  meanChosenLogits: number;
  meanRejectedLogits: number;
  /** The per-row details the pair results were made from. */
  rows: RowLogps;
}

/** The scored entries of a padded batch: row-major flat indices (r·T + t), target ids, rows and positions. */
function completionPositions(targets: Int32Array, t: number): ScoredTokens {
  const flat: number[] = [];
  for (let i = 0; i < targets.length; i++) if (targets[i] !== IGNORE_INDEX) flat.push(i);
  return {
    index: Int32Array.from(flat),
    target: Int32Array.from(flat, (i) => targets[i]),
    sequence: Int32Array.from(flat, (i) => Math.floor(i / t)),
    position: Int32Array.from(flat, (i) => i % t),
  };
}

const isPacked = (batch: ConcatenatedBatch | PackedBatch): batch is PackedBatch => 'segments' in batch;

/**
 * Per-token log-probs of the completion tokens of every sequence of `batch`, and their per-sequence sums. A padded
 * batch's rows are its sequences; a packed batch (data/pack.ts) lists its scored tokens with their sequence, and
 * gives the same results in the same order (one hidden state may score two tokens under prefix sharing).
 *
 * Memory: the (rows, T, V) logits are never built. Hidden rows of the N scored positions are gathered into (N, C)
 * and the head runs on chunks of `chunkRows` rows: logits (rows, V) = h·Wᵀ, then the fused log-softmax-gather.
 * Under noGrad each chunk's logits are freed before the next, so the peak is chunkRows·V floats. With grad enabled
 * the engine keeps every chunk's logits for the backward pass (logSoftmaxGather's gradient reads them), so training
 * holds N·V floats (4·N·V bytes): prompt and padding positions cost nothing, but chunking then bounds only the
 * transient work. Recomputing the logits in the backward pass (a fused head) would remove that; see DESIGN.md.
 */
export function sequenceLogps(model: CausalLM, batch: ConcatenatedBatch | PackedBatch, opts: LogpsOptions = {}): RowLogps {
  if (isPacked(batch)) {
    const ids = tensor(batch.inputIds, [batch.rows, batch.T], 'int32');
    return scoreTokens(model, ids, { segments: batch.segments, positions: batch.positions }, batch.scored, batch.sequences, opts);
  }
  const t = batch.T;
  const rows = t > 0 ? batch.inputIds.length / t : 0;
  if (!Number.isInteger(rows) || rows === 0 || batch.targets.length !== rows * t || batch.attentionMask.length !== rows * t) {
    throw new ShapeError('sequenceLogps', `inputIds (${batch.inputIds.length}), targets (${batch.targets.length}) and attentionMask (${batch.attentionMask.length}) must each hold 2B·T values for T = ${t}`);
  }
  const ids = tensor(batch.inputIds, [rows, t], 'int32');
  return scoreTokens(model, ids, { attentionMask: batch.attentionMask }, completionPositions(batch.targets, t), rows, opts);
}

/** One forward over ids (rows, T), then the chunked head at the scored entries, summed per sequence (S of them). */
function scoreTokens(model: CausalLM, ids: Tensor, forward: ForwardOptions, scored: ScoredTokens, sequences: number, opts: LogpsOptions): RowLogps {
  const [rows, t] = ids.shape;
  const chunkRows = Math.max(1, Math.floor(opts.chunkRows ?? DEFAULT_CHUNK_ROWS));
  const weight = model.lmHeadWeight; // (V, C)
  const [v, c] = weight.shape;
  const n = scored.index.length;
  const counts = new Int32Array(sequences);
  for (const s of scored.sequence) counts[s]++;
  const logitSums = new Float64Array(sequences);

  const hidden = model.forward(ids, forward); // (rows, T, C)
  const picked = gather(reshape(hidden, [rows * t, c]), tensor(scored.index, [n], 'int32')); // (N, C)
  const chunks: Tensor[] = [];
  for (let start = 0; start < n; start += chunkRows) {
    const end = Math.min(n, start + chunkRows);
    const chunk = () => {
      const h = slice(picked, [start, 0], [end, c]); // (rows, C)
      const logits = matmul(h, weight, { transB: true }); // (rows, V)
      opts.onChunkLogits?.(logits, start, end);
      noGrad(() => scope(() => {
        const perRow = sum(logits, 1).floatData(); // (rows) Σ_V logits
        for (let i = 0; i < end - start; i++) logitSums[scored.sequence[start + i]] += perRow[i];
      }));
      return logSoftmaxGather(logits, tensor(scored.target.subarray(start, end), [end - start], 'int32')); // (rows)
    };
    // With grad the chunk's tensors belong to the autograd graph; without, free them now.
    chunks.push(isGradEnabled() ? chunk() : scope(chunk));
  }
  const tokenLogps = chunks.length === 0 ? zeros([0], weight.dtype) : chunks.length === 1 ? chunks[0] : concat(chunks, 0); // (N)
  // Segment sum by sequence: scatter-add the (N, 1) log-probs into (S, 1) zeros.
  const sums = reshape(scatterAdd(zeros([sequences, 1], weight.dtype), tensor(scored.sequence, [n], 'int32'), reshape(tokenLogps, [n, 1])), [sequences]);
  return { sums, counts, tokenLogps, tokenRow: scored.sequence, tokenPosition: scored.position, logitSums, vocabSize: v };
}

/** Splits per-row results over [chosen; rejected] into per-pair tensors and TRL's mean-logit metrics. */
export function splitPairs(rows: RowLogps): PairLogps {
  const r = rows.counts.length;
  if (r % 2 !== 0) throw new ShapeError('splitPairs', `a concatenated batch has an even number of rows (2B), got ${r}`);
  const b = r / 2;
  const dtype = rows.sums.dtype;
  const lengths = tensor(rows.counts, [r], dtype);
  const averages = div(rows.sums, maximum(lengths, tensor([1], [1], dtype)));
  const half = (x: Tensor, first: boolean) => (first ? slice(x, [0], [b]) : slice(x, [b], [r]));
  const meanLogits = (from: number, to: number) => {
    let total = 0;
    let tokens = 0;
    for (let i = from; i < to; i++) {
      total += rows.logitSums[i];
      tokens += rows.counts[i];
    }
    return tokens === 0 ? NaN : total / (tokens * rows.vocabSize);
  };
  return {
    chosen: half(rows.sums, true),
    rejected: half(rows.sums, false),
    chosenLength: half(lengths, true),
    rejectedLength: half(lengths, false),
    chosenAverage: half(averages, true),
    rejectedAverage: half(averages, false),
    meanChosenLogits: meanLogits(0, b),
    meanRejectedLogits: meanLogits(b, r),
    rows,
  };
}

/** sequenceLogps then splitPairs: the one call a trainer or evaluator makes per model and batch. */
export function concatenatedLogps(model: CausalLM, batch: ConcatenatedBatch | PackedBatch, opts: LogpsOptions = {}): PairLogps {
  return splitPairs(sequenceLogps(model, batch, opts));
}

/**
 * Per-token implicit rewards β·(log π(token) − log π_ref(token)) for analysis (Rafailov et al. 2024, "From r to Q*":
 * DPO's β·log-ratio acts as a per-token credit). policy and reference are the tokenLogps of the same batch.
 */
export function tokenRewards(policy: ArrayLike<number>, reference: ArrayLike<number>, beta: number): Float64Array {
  if (policy.length !== reference.length) throw new ShapeError('tokenRewards', `policy has ${policy.length} token log-probs, reference ${reference.length}; compute both on the same batch`);
  return Float64Array.from(policy, (p, i) => beta * (p - reference[i]));
}
