// The trainer's data: the training and evaluation sets tokenized for the policy (preference pairs for `dpo train`,
// SFT records for `dpo sft`), checked against the model's context length, and the seeded per-epoch order of the
// examples. The plan of a run (steps per epoch, total steps) is here too, as pure functions.
// Not here: collation (data/collate) or the loop (trainer.ts).
import { defaultPadTokenId, listDataFiles, loadPreferenceDataset, preparePreferenceExamples, type TokenizedExample } from '../data/index.js';
import type { Rng } from '../engine/random.js';
import type { Pretrained } from '../io/pretrained.js';
import { loadSftDataset, prepareSftExamples } from './sft-data.js';
import { TrainConfigError, type TrainConfig } from './trainer-config.js';

export interface TrainData {
  train: TokenizedExample[];
  /** null without --eval-dataset. */
  eval: TokenizedExample[] | null;
  trainFiles: string[];
  evalFiles: string[] | null;
  padTokenId: number;
  /** One line per set: what was kept, cut and dropped. */
  summaryLines: string[];
}

/** Reads, tokenizes and truncates one dataset for the task. */
async function prepare(path: string, c: TrainConfig, policy: Pretrained): Promise<{ examples: TokenizedExample[]; summaryLine: string }> {
  const opts = {
    maxLength: c.maxLength, maxPromptLength: c.maxPromptLength, maxCompletionLength: c.maxCompletionLength,
    truncationMode: c.truncationMode, allowPromptMismatch: c.allowPromptMismatch, vocabSize: policy.model.vocabSize,
  };
  if (c.task === 'sft') return prepareSftExamples(await loadSftDataset(path), policy.tokenizer, { ...opts, completionOnlyLoss: c.completionOnlyLoss });
  return preparePreferenceExamples(await loadPreferenceDataset(path), policy.tokenizer, opts);
}

export async function loadTrainData(c: TrainConfig, policy: Pretrained): Promise<TrainData> {
  const train = await prepare(c.dataset, c, policy);
  const evalSet = c.evalDataset === null ? null : await prepare(c.evalDataset, c, policy);
  for (const [name, set] of [['dataset', train.examples], ['eval_dataset', evalSet?.examples ?? []]] as const) {
    const longest = Math.max(0, ...set.map((e) => e.promptIds.length + Math.max(e.chosenIds.length, e.rejectedIds.length)));
    if (longest > policy.model.maxPositions) {
      throw new TrainConfigError(`${name}: a prompt + completion of ${longest} tokens exceeds the model's ${policy.model.maxPositions} positions; pass --max-length ${policy.model.maxPositions} or less`);
    }
  }
  return {
    train: train.examples,
    eval: evalSet?.examples ?? null,
    trainFiles: listDataFiles(c.dataset),
    evalFiles: c.evalDataset === null ? null : listDataFiles(c.evalDataset),
    padTokenId: defaultPadTokenId(policy.tokenizer),
    summaryLines: [`train ${train.summaryLine}`, ...(evalSet ? [`eval ${evalSet.summaryLine}`] : [])],
  };
}

export interface RunPlan {
  /** Pairs per optimizer step: per_device_train_batch_size × gradient_accumulation_steps. */
  pairsPerStep: number;
  /** Optimizer steps per pass over the data; the last step of an epoch takes the remainder. */
  stepsPerEpoch: number;
  /** max_steps when > 0, else ⌈num_train_epochs × stepsPerEpoch⌉. */
  totalSteps: number;
}

export function planRun(examples: number, c: Pick<TrainConfig, 'perDeviceTrainBatchSize' | 'gradientAccumulationSteps' | 'maxSteps' | 'numTrainEpochs'>): RunPlan {
  const pairsPerStep = c.perDeviceTrainBatchSize * c.gradientAccumulationSteps;
  const stepsPerEpoch = Math.ceil(examples / pairsPerStep);
  const totalSteps = c.maxSteps > 0 ? c.maxSteps : Math.max(1, Math.ceil(c.numTrainEpochs * stepsPerEpoch));
  return { pairsPerStep, stepsPerEpoch, totalSteps };
}

/** A uniformly random permutation of 0..n−1 (Fisher–Yates), drawn from rng: one per epoch. */
export function shuffledOrder(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * The micro-batches (positions into the epoch's order) of the step that starts after `consumed` micro-batches of
 * the epoch: up to gradient_accumulation_steps batches of per_device_train_batch_size, never past the epoch's end.
 */
export function stepMicroBatches(examples: number, consumed: number, c: Pick<TrainConfig, 'perDeviceTrainBatchSize' | 'gradientAccumulationSteps'>): number[][] {
  const bs = c.perDeviceTrainBatchSize;
  const batches: number[][] = [];
  for (let k = 0; k < c.gradientAccumulationSteps; k++) {
    const start = (consumed + k) * bs;
    if (start >= examples) break;
    batches.push(Array.from({ length: Math.min(bs, examples - start) }, (_, i) => start + i));
  }
  return batches;
}

/** Scored tokens of an example's chosen completion (the first token of a sequence is never predicted). */
export function scoredChosenTokens(e: TokenizedExample): number {
  return e.chosenIds.length - (e.promptIds.length === 0 ? 1 : 0);
}
