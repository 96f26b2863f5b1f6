// The trainer: `dpo train` and `dpo sft` as one top-to-bottom loop. Load the policy and the data, pick the reference
// strategy, then per optimizer step: forward and backward each micro-batch (scaled for exact accumulation), clip,
// step, sync the reference (TR-DPO), log, evaluate and checkpoint; finally save the model into the output folder.
// The math lives in pure helpers (forward, losses, step-loss, schedule, metrics); this file only wires them together.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { collatePreferenceBatch, type TokenizedExample } from '../data/index.js';
import { backward, zeroGrad } from '../engine/autograd.js';
import { Rng } from '../engine/random.js';
import { memoryStats, resetPeakMemory } from '../engine/storage.js';
import { noGrad, scope, type Tensor } from '../engine/tensor.js';
import type { JsonObject } from '../io/json.js';
import { loadPretrained } from '../io/pretrained.js';
import { checkpointProblem, findLatestCheckpoint, loadCheckpoint, saveCheckpoint, type LoadCheckpointTargets } from './checkpoint.js';
import { forwardPairs, type PairForward } from './forward.js';
import { computeLoss, type LossOutput, type RunningMean } from './losses/index.js';
import { MetricsWindow, memoryMetrics, type BatchStats } from './metrics.js';
import { clipGradNorm, createOptimizer } from './optim.js';
import { createProgress, type ProgressStream } from './progress.js';
import { buildReference, syncReference, withReferenceState, type BuiltReference, type DataSplit } from './reference.js';
import { MetricsLog, prepareOutputDir, saveFinalModel, writeTrainingArgs } from './run-files.js';
import { learningRateAt, warmupStepsFrom } from './schedule.js';
import { microBatchObjective, nllCoefficient, stepPairLosses } from './step-loss.js';
import { loadTrainData, planRun, scoredChosenTokens, shuffledOrder, stepMicroBatches } from './train-data.js';
import { TrainConfigError, lossOptionsOf, resolveTrainConfig, trainingArgsJson, type TrainConfig } from './trainer-config.js';

export interface TrainHooks {
  /** Receives the run's messages (data summary, reference, evaluation, checkpoints). Default: above the progress bar. */
  log?: (line: string) => void;
  /** Where the progress bar or lines go (default process.stderr). */
  progress?: ProgressStream;
}

export interface TrainResult {
  /** Optimizer steps completed (the run's global step). */
  steps: number;
  outputDir: string;
  /** The last metrics.jsonl record of the training (not eval) kind. */
  lastMetrics: Record<string, number> | null;
  /** Precomputed reference only: per split, whether the log-probs came from the cache. */
  referenceCache: BuiltReference['cache'];
}

/** A non-finite loss or gradient: the message names the step, the batch's example indices and the values. */
export class TrainingDivergedError extends Error {
  override name = 'TrainingDivergedError';
}

const fmt = (values: ArrayLike<number>) => `[${Array.from(values, (v) => Number(v.toPrecision(6))).join(', ')}]`;

export async function train(input: Partial<TrainConfig>, hooks: TrainHooks = {}): Promise<TrainResult> {
  const c = resolveTrainConfig(input);
  const progress = createProgress(hooks.progress ?? process.stderr);
  const log = hooks.log ?? ((line: string) => progress.message(line));

  // ---- the output folder, the policy and the data
  const resumeDir = resolveResume(c, log);
  prepareOutputDir(c.outputDir, { overwrite: c.overwriteOutputDir, resuming: resumeDir !== null });
  const policy = loadPretrained(c.model);
  const tokenizerFrom = existsSync(join(c.model, 'tokenizer.json')) ? c.model : undefined;
  let built: BuiltReference | null = null;
  try {
    const data = await loadTrainData(c, policy);
    data.summaryLines.forEach(log);
    const n = data.train.length;
    const chosenOnly = c.lossType.every((t) => t === 'sft'); // SFT reads only the chosen rows
    const lossOptions = lossOptionsOf(c);
    const nllCoef = nllCoefficient(c.lossType, c.lossWeights, lossOptions);
    const layout = { prefixSharing: c.prefixSharing, paddingFree: c.paddingFree }; // how each batch's rows are run

    // ---- the reference: a frozen model, precomputed log-probs, or none
    built = buildReference(c, data, policy.model.vocabSize, log);
    const reference = built.reference;
    if (c.syncRefModel && reference.model === null) throw new TrainConfigError('sync_ref_model: TR-DPO needs a reference model, but no loss of --loss-type reads one');

    // ---- optimizer, schedule and the run's state
    const params = policy.model.parameters();
    const baseOptimizer = createOptimizer([...policy.model.namedParameters()], { type: c.optim, weightDecay: c.weightDecay, beta1: c.adamBeta1, beta2: c.adamBeta2, eps: c.adamEpsilon });
    const optimizer = c.syncRefModel && reference.model ? withReferenceState(baseOptimizer, reference.model) : baseOptimizer;
    const plan = planRun(n, c);
    const schedule = { type: c.lrSchedulerType, baseLr: c.learningRate, warmupSteps: warmupStepsFrom(c.warmupSteps, c.warmupRatio, plan.totalSteps), totalSteps: plan.totalSteps };
    const rng = new Rng(c.seed);
    const metricsLog = new MetricsLog(c.outputDir);
    let { step, epoch, consumed, order, numTokens, bco, history } = startPosition(resumeDir, { model: policy.model, optimizer }, {
      n, rng, metricsLog, log, totalSteps: plan.totalSteps, mismatch: (trained) => `${trained} examples, this dataset has ${n}; resume with the same data`,
    });
    writeTrainingArgs(c.outputDir, trainingArgsJson(c));
    log(`training: ${n} examples, ${plan.totalSteps} steps of ${plan.pairsPerStep} (${c.perDeviceTrainBatchSize} × ${c.gradientAccumulationSteps}), reference: ${reference.kind}`);

    // One batch through the policy, the reference and the loss.
    const lossOf = (examples: readonly TokenizedExample[], split: DataSplit) => {
      const batch = collatePreferenceBatch(examples, { padTokenId: data.padTokenId });
      const pol = forwardPairs(policy.model, batch, { ldAlpha: c.ldAlpha, useWeighting: c.useWeighting, chosenOnly, layout });
      const ref = reference.logps(split, batch);
      const lp = { chosen: pol.chosen, rejected: pol.rejected, refChosen: ref?.chosen ?? null, refRejected: ref?.rejected ?? null, chosenLength: pol.chosenLength, rejectedLength: pol.rejectedLength };
      const out = computeLoss(c.lossType, c.lossWeights, lp, lossOptions, { bcoRunningMean: bco, ...(pol.pairWeights ? { pairWeights: pol.pairWeights } : {}) });
      return { pol, ref, out };
    };
    const evaluate = (examples: readonly TokenizedExample[]) => {
      const w = new MetricsWindow(!chosenOnly);
      for (let start = 0; start < examples.length; start += c.perDeviceEvalBatchSize) {
        noGrad(() => scope(() => {
          const r = lossOf(examples.slice(start, start + c.perDeviceEvalBatchSize), 'eval');
          w.add(batchStats(r.out.losses, r.out, r.pol));
        }));
      }
      return w.summary('eval_');
    };

    // ---- the loop: one optimizer step per iteration
    let lastCheckpoint = resumeDir;
    let lastMetrics: Record<string, number> | null = null;
    let window = new MetricsWindow(!chosenOnly);
    let windowTokens = 0;
    let windowStart = performance.now();
    resetPeakMemory();
    while (step < plan.totalSteps) {
      // This step's pairs: the next micro-batches of the epoch's shuffled order.
      const micro = stepMicroBatches(n, consumed, c).map((positions) => positions.map((p) => data.train[order[p]]));
      const stepPairs = micro.reduce((k, m) => k + m.length, 0);
      const stepChosenTokens = micro.flat().reduce((k, e) => k + scoredChosenTokens(e), 0);
      const stepMetrics = new MetricsWindow(!chosenOnly);
      zeroGrad(params);
      for (const examples of micro) {
        scope(() => {
          const r = lossOf(examples, 'train');
          const share = { pairs: examples.length, chosenTokens: examples.reduce((k, e) => k + scoredChosenTokens(e), 0), stepPairs, stepChosenTokens };
          const losses = stepPairLosses(r.out.losses, r.pol.chosen, r.pol.pairWeights, nllCoef, share); // (B) the step's per-pair losses
          checkFiniteLoss(step + 1, examples, losses, r, lastCheckpoint);
          backward(microBatchObjective(losses, stepPairs)); // Σ_b ℓ_b / N: the micro-batches add up to ∇ mean loss
          const stats = batchStats(losses, r.out, r.pol);
          window.add(stats);
          stepMetrics.add(stats);
          numTokens += r.pol.numTokens;
          windowTokens += r.pol.numTokens;
          bco = r.out.bcoRunningMean ?? bco;
        });
      }
      const gradNorm = clipGradNorm(params, c.maxGradNorm);
      checkFiniteGradNorm(gradNorm, step + 1, micro.flat(), policy.model.namedParameters(), lastCheckpoint);
      const lr = learningRateAt(step, schedule);
      optimizer.step(lr);
      step++;
      consumed += micro.length;
      const epochEnded = consumed * c.perDeviceTrainBatchSize >= n;
      if (epochEnded) [epoch, consumed, order] = [epoch + 1, 0, shuffledOrder(n, rng)];
      if (c.syncRefModel && reference.model && step % c.refModelSyncSteps === 0) syncReference(reference.model, policy.model, c.refModelMixupAlpha);

      // Log, evaluate, checkpoint.
      const epochs = epoch + (consumed * c.perDeviceTrainBatchSize) / n;
      const now = performance.now();
      const stepSummary = stepMetrics.summary();
      const fields = { step, totalSteps: plan.totalSteps, loss: stepSummary.loss, accuracy: stepSummary['rewards/accuracies'], tokensPerSecond: (windowTokens * 1000) / Math.max(1e-9, now - windowStart) };
      progress.step(fields);
      if (step % c.loggingSteps === 0 || step === plan.totalSteps) {
        lastMetrics = {
          ...window.summary(), grad_norm: gradNorm, learning_rate: lr, num_tokens: numTokens,
          tokens_per_second: fields.tokensPerSecond, ...memoryMetrics(memoryStats().peakLiveBytes), epoch: epochs, step,
        };
        metricsLog.append(lastMetrics);
        history.push(lastMetrics);
        progress.logged({ ...fields, loss: lastMetrics.loss, accuracy: lastMetrics['rewards/accuracies'] });
        [window, windowTokens, windowStart] = [new MetricsWindow(!chosenOnly), 0, performance.now()];
      }
      const evalDue = c.evalStrategy === 'steps' ? step % (c.evalSteps ?? c.loggingSteps) === 0 : c.evalStrategy === 'epoch' && epochEnded;
      if (evalDue && data.eval) {
        const record: Record<string, number> = { ...evaluate(data.eval), epoch: epochs, step };
        metricsLog.append(record);
        history.push(record);
        log(`eval at step ${step}: loss ${record.eval_loss.toFixed(4)}${chosenOnly ? '' : `, rewards/accuracies ${record['eval_rewards/accuracies'].toFixed(3)}`}`);
      }
      if (c.saveSteps > 0 && (step % c.saveSteps === 0 || step === plan.totalSteps)) {
        lastCheckpoint = await saveCheckpoint(c.outputDir, step, {
          model: policy.model, modelConfig: policy.config, tokenizerFrom, optimizer, saveTotalLimit: c.saveTotalLimit,
          trainerState: {
            globalStep: step, epoch: epochs, dataPosition: { epoch, batchIndex: consumed, order }, rngState: rng.getState(), logHistory: history,
            lossState: { num_tokens: numTokens, ...(bco ? { bco_running_mean: { ...bco } } : {}) }, schedulerState: { ...schedule },
          },
        });
      }
    }
    progress.done();

    // ---- the final model, in HF layout, directly in the output folder
    await saveFinalModel(policy.model, c.outputDir, { config: policy.config, tokenizerFrom });
    log(`saved the model after ${step} steps to ${c.outputDir}`);
    return { steps: step, outputDir: c.outputDir, lastMetrics, referenceCache: built.cache };
  } finally {
    progress.done();
    built?.reference.dispose();
    policy.model.dispose();
  }
}

/** Where a run stands between optimizer steps: what a checkpoint keeps besides the weights and the moments. */
export interface RunPosition {
  /** Optimizer steps taken. */
  step: number;
  /** Completed passes over the data. */
  epoch: number;
  /** Micro-batches of this epoch already used. */
  consumed: number;
  /** This epoch's item order. */
  order: number[];
  /** Real tokens the policy has read (TRL's num_tokens). */
  numTokens: number;
  /** bco_pair's running reward mean. */
  bco: RunningMean | undefined;
  history: JsonObject[];
  /** The checkpoint's loss state as saved (empty for a fresh run), for counters a caller keeps itself. */
  lossState: JsonObject;
}

/**
 * A fresh run over n items (its first shuffle drawn from rng), or, with resumeDir, the position that checkpoint
 * saved, with its weights and optimizer moments loaded into `targets`, rng's state restored and metrics.jsonl cut
 * back to its step. `mismatch(trained)` ends the error for a checkpoint trained on a different number of items.
 */
export function startPosition(resumeDir: string | null, targets: LoadCheckpointTargets, o: {
  n: number; rng: Rng; metricsLog: MetricsLog; log: (line: string) => void; totalSteps: number; mismatch: (trained: number) => string;
}): RunPosition {
  if (resumeDir === null) return { step: 0, epoch: 0, consumed: 0, order: shuffledOrder(o.n, o.rng), numTokens: 0, bco: undefined, history: [], lossState: {} };
  const s = loadCheckpoint(resumeDir, targets);
  if (s.dataPosition.order.length !== o.n) throw new TrainConfigError(`resume_from_checkpoint: ${resumeDir} was trained on ${o.mismatch(s.dataPosition.order.length)}`);
  o.rng.setState(s.rngState);
  o.metricsLog.truncateAfter(s.globalStep);
  o.log(`resuming from ${resumeDir} at step ${s.globalStep} of ${o.totalSteps}`);
  const lossState = s.lossState ?? {};
  return {
    step: s.globalStep, epoch: s.dataPosition.epoch, consumed: s.dataPosition.batchIndex, order: s.dataPosition.order,
    numTokens: Number(lossState.num_tokens ?? 0), bco: lossState.bco_running_mean as RunningMean | undefined, history: s.logHistory ?? [], lossState,
  };
}

/** The checkpoint to resume from: a checkpoint-N directory, or the newest complete one for 'latest'. */
export function resolveResume(c: Pick<TrainConfig, 'resumeFromCheckpoint' | 'outputDir'>, log: (line: string) => void): string | null {
  const wanted = c.resumeFromCheckpoint;
  if (wanted === null) return null;
  if (wanted === 'latest') {
    const dir = findLatestCheckpoint(c.outputDir, { warn: log });
    if (dir === null) throw new TrainConfigError(`resume_from_checkpoint: no complete checkpoint-N in ${c.outputDir}; start without --resume-from-checkpoint`);
    return dir;
  }
  const problem = checkpointProblem(wanted);
  if (problem !== null) throw new TrainConfigError(`resume_from_checkpoint: ${wanted} is not a usable checkpoint: ${problem}`);
  return wanted;
}

/** What the metrics read of one batch: the (step-scaled) per-pair losses, rewards, log-probs and logit totals. */
function batchStats(losses: Tensor, out: LossOutput, pol: PairForward): BatchStats {
  return {
    losses: losses.data, chosenRewards: out.chosenRewards.data, rejectedRewards: out.rejectedRewards.data,
    chosenLogps: pol.chosen.data, rejectedLogps: pol.rejected.data,
    chosenLogitSum: pol.chosenLogitSum, chosenLogitEntries: pol.chosenLogitEntries,
    rejectedLogitSum: pol.rejectedLogitSum, rejectedLogitEntries: pol.rejectedLogitEntries,
  };
}

function stoppedAt(lastCheckpoint: string | null): string {
  return lastCheckpoint === null
    ? 'No checkpoint was saved before it; lower --learning-rate or set --max-grad-norm and start again.'
    : `The last good checkpoint is ${lastCheckpoint}; resume from it with a lower --learning-rate or a --max-grad-norm.`;
}

function checkFiniteLoss(step: number, examples: readonly TokenizedExample[], losses: Tensor, r: { pol: PairForward; ref: { chosen: Tensor; rejected: Tensor } | null }, lastCheckpoint: string | null): void {
  const bad = Array.from(losses.data, (v, i) => (Number.isFinite(v) ? -1 : i)).filter((i) => i >= 0);
  if (bad.length === 0) return;
  const pick = (t: Tensor) => bad.map((i) => t.data[i]);
  throw new TrainingDivergedError(
    `step ${step}: the loss is not finite for example(s) ${bad.map((i) => examples[i].index).join(', ')} of the batch [${examples.map((e) => e.index).join(', ')}]: ` +
    `loss ${fmt(pick(losses))}, policy logps chosen ${fmt(pick(r.pol.chosen))} rejected ${fmt(pick(r.pol.rejected))}` +
    (r.ref ? `, reference logps chosen ${fmt(pick(r.ref.chosen))} rejected ${fmt(pick(r.ref.rejected))}` : '') + `. Training stopped. ${stoppedAt(lastCheckpoint)}`,
  );
}

/** Throws TrainingDivergedError naming the step, the batch and the first non-finite gradient entries, unless gradNorm is finite. */
export function checkFiniteGradNorm(gradNorm: number, step: number, examples: readonly Pick<TokenizedExample, 'index'>[], named: Iterable<[string, Tensor]>, lastCheckpoint: string | null): void {
  if (Number.isFinite(gradNorm)) return;
  const offending: string[] = [];
  for (const [name, p] of named) {
    const g = p.grad?.data;
    const i = g ? Array.prototype.findIndex.call(g, (v: number) => !Number.isFinite(v)) : -1;
    if (g && i >= 0 && offending.length < 5) offending.push(`${name}[${i}] = ${g[i]}`);
  }
  throw new TrainingDivergedError(
    `step ${step}: the gradient norm is not finite for the batch [${examples.map((e) => e.index).join(', ')}]: ${offending.join(', ')}. Training stopped. ${stoppedAt(lastCheckpoint)}`,
  );
}
