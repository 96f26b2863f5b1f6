// DPO evaluation: the policy (and reference) log-probs of every preference pair, the loss and its implicit rewards,
// reduced to TRL's evaluate() metrics (eval_loss, eval_rewards/*, eval_logps/*, eval_logits/*) plus per-example rows
// in input order. Everything runs under noGrad, one padded [chosen; rejected] batch at a time.
// Not here: reading or tokenizing the dataset (data/), writing files (cli/eval.ts).
import { collatePreferenceBatch } from '../data/collate.js';
import type { TokenizedExample } from '../data/tokenize.js';
import { noGrad, scope } from '../engine/tensor.js';
import type { CausalLM } from '../models/types.js';
import { computeLoss, defaultLossOptions, lossSpecs, type LossOptions, type LossType } from './losses/index.js';
import { concatenatedLogps, type PairLogps } from './logps.js';

/** The metric names of TRL's DPOTrainer.evaluate(), in its order, plus eval_num_examples. */
export const EVAL_METRIC_KEYS = [
  'eval_loss',
  'eval_rewards/chosen',
  'eval_rewards/rejected',
  'eval_rewards/accuracies',
  'eval_rewards/margins',
  'eval_logps/chosen',
  'eval_logps/rejected',
  'eval_logits/chosen',
  'eval_logits/rejected',
  'eval_num_examples',
] as const;

export type DpoEvalMetrics = Record<(typeof EVAL_METRIC_KEYS)[number], number>;

/** One evaluated pair. ref_* are null when no loss reads a reference (simpo, cpo, orpo, sft). */
export interface DpoEvalRow {
  /** The record's index in the dataset (0-based input order). */
  index: number;
  chosen_logps: number;
  rejected_logps: number;
  ref_chosen_logps: number | null;
  ref_rejected_logps: number | null;
  chosen_rewards: number;
  rejected_rewards: number;
  loss: number;
}

export interface EvaluateDpoOptions {
  model: CausalLM;
  /** The reference model; null makes the model its own reference (TRL's copy of the policy when ref_model is None). */
  refModel: CausalLM | null;
  /** Tokenized, truncated pairs (data/preparePreferenceExamples), in input order. */
  examples: readonly TokenizedExample[];
  /** Loss types (default ['sigmoid']) and their weights (default all 1), as TRL's loss_type and loss_weights. */
  lossTypes?: readonly LossType[];
  lossWeights?: readonly number[] | null;
  /** β, label smoothing, …; unset ones take TRL's defaults (defaultLossOptions). */
  lossOptions?: Partial<LossOptions>;
  /** Pairs per forward pass (TRL's per_device_eval_batch_size, default 8). */
  batchSize?: number;
  /** Id in padding positions (masked, so it does not change any result). Default 0. */
  padTokenId?: number;
  /** Completion rows per LM-head chunk (see logps.ts). */
  chunkRows?: number;
  /** Called after each batch with the pairs done so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface DpoEvalResult {
  metrics: DpoEvalMetrics;
  /** One row per example, in input order. */
  rows: DpoEvalRow[];
}

/** Running sums behind TRL's logits/chosen and logits/rejected (means over completion positions × vocabulary). */
interface LogitTotals {
  chosenSum: number;
  chosenEntries: number;
  rejectedSum: number;
  rejectedEntries: number;
}

/**
 * Evaluates `model` on `examples`. Every metric is a mean over examples (TRL averages per-batch means, which is the
 * same when all batches are full), and eval_logits/* are means over every completion position and vocabulary entry
 * of the whole set, so the batch size does not change the results, except for losses whose per-pair value depends
 * on the batch by definition: aot and aot_unpaired sort across the batch, bco_pair's δ is the batch's mean reward
 * (no state carries across evaluation batches), and sft/cpo/orpo's NLL is a token mean over the batch.
 */
export function evaluateDpo(o: EvaluateDpoOptions): DpoEvalResult {
  const types = o.lossTypes ?? ['sigmoid'];
  const options: LossOptions = { ...defaultLossOptions, ...o.lossOptions };
  const batchSize = o.batchSize ?? 8;
  if (!(Number.isSafeInteger(batchSize) && batchSize >= 1)) throw new RangeError(`evaluateDpo: batchSize must be a positive integer, got ${batchSize}`);
  if (o.examples.length === 0) throw new RangeError('evaluateDpo: no examples to evaluate');
  const useReference = types.some((t) => lossSpecs[t].needsReference);
  const rows: DpoEvalRow[] = [];
  const logits: LogitTotals = { chosenSum: 0, chosenEntries: 0, rejectedSum: 0, rejectedEntries: 0 };
  for (let start = 0; start < o.examples.length; start += batchSize) {
    const examples = o.examples.slice(start, start + batchSize);
    noGrad(() => scope(() => {
      const batch = collatePreferenceBatch(examples, { padTokenId: o.padTokenId ?? 0 });
      const policy = concatenatedLogps(o.model, batch, { chunkRows: o.chunkRows });
      const reference = !useReference ? null : o.refModel ? concatenatedLogps(o.refModel, batch, { chunkRows: o.chunkRows }) : policy;
      const out = computeLoss(types, o.lossWeights ?? null, {
        chosen: policy.chosen,
        rejected: policy.rejected,
        refChosen: reference?.chosen ?? null,
        refRejected: reference?.rejected ?? null,
        chosenLength: policy.chosenLength,
        rejectedLength: policy.rejectedLength,
      }, options);
      addLogitTotals(logits, policy);
      const [loss, cr, rr] = [out.losses.data, out.chosenRewards.data, out.rejectedRewards.data];
      examples.forEach((ex, i) => rows.push({
        index: ex.index,
        chosen_logps: policy.chosen.data[i],
        rejected_logps: policy.rejected.data[i],
        ref_chosen_logps: reference ? reference.chosen.data[i] : null,
        ref_rejected_logps: reference ? reference.rejected.data[i] : null,
        chosen_rewards: cr[i],
        rejected_rewards: rr[i],
        loss: loss[i],
      }));
    }));
    o.onProgress?.(rows.length, o.examples.length);
  }
  return { metrics: summarizeEval(rows, logits), rows };
}

function addLogitTotals(totals: LogitTotals, lp: PairLogps): void {
  const { logitSums, counts, vocabSize } = lp.rows;
  const b = counts.length / 2;
  for (let i = 0; i < b; i++) {
    totals.chosenSum += logitSums[i];
    totals.chosenEntries += counts[i] * vocabSize;
    totals.rejectedSum += logitSums[b + i];
    totals.rejectedEntries += counts[b + i] * vocabSize;
  }
}

/** TRL's metrics from the per-example rows: means over examples; accuracy counts chosen_rewards > rejected_rewards. */
function summarizeEval(rows: readonly DpoEvalRow[], logits: LogitTotals): DpoEvalMetrics {
  const mean = (f: (r: DpoEvalRow) => number) => rows.reduce((acc, r) => acc + f(r), 0) / rows.length;
  return {
    'eval_loss': mean((r) => r.loss),
    'eval_rewards/chosen': mean((r) => r.chosen_rewards),
    'eval_rewards/rejected': mean((r) => r.rejected_rewards),
    'eval_rewards/accuracies': mean((r) => (r.chosen_rewards > r.rejected_rewards ? 1 : 0)),
    'eval_rewards/margins': mean((r) => r.chosen_rewards - r.rejected_rewards),
    'eval_logps/chosen': mean((r) => r.chosen_logps),
    'eval_logps/rejected': mean((r) => r.rejected_logps),
    'eval_logits/chosen': logits.chosenSum / logits.chosenEntries,
    'eval_logits/rejected': logits.rejectedSum / logits.rejectedEntries,
    'eval_num_examples': rows.length,
  };
}
