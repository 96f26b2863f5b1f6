// Online DPO with AI feedback (OAIF: Guo et al. 2024, "Direct Language Model Alignment from Online AI Feedback",
// arXiv 2402.04792, Algorithm 1). Per optimizer step, for each prompt of the step: sample two completions from the
// CURRENT policy, ask the judge which is better, and take one step of a direct alignment loss (any loss of the
// registry: sigmoid = DPO, ipo, hinge, …) on those pairs against the frozen reference. Because the pairs come from
// π_θ itself, the data is on-policy at every step (the paper's fix for DPO's off-policy, offline data).
// Logs TRL's OnlineDPOTrainer metrics (objective/kl, objective/entropy, objective/non_score_reward,
// objective/rlhf_reward and objective/scores with a scoring judge, rewards/*, logps/*, val/contain_eos_token) plus
// judge counts and the time split between generating, judging and training. Checkpoints resume bit-exactly.
// Not here: the judges (judges.ts, http-judge.ts, …) or the losses (dpo/losses).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { collatePreferenceBatch, type TokenizedExample } from '../data/index.js';
import { backward, zeroGrad } from '../engine/autograd.js';
import { Rng } from '../engine/random.js';
import { memoryStats, resetPeakMemory } from '../engine/storage.js';
import { noGrad, scope } from '../engine/tensor.js';
import { generationDefaults, loadPretrained, type Pretrained } from '../io/pretrained.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { saveCheckpoint } from '../dpo/checkpoint.js';
import { writeFileAtomic } from '../io/atomic.js';
import { forwardPairs } from '../dpo/forward.js';
import { computeLoss, needsReference } from '../dpo/losses/index.js';
import { MetricsWindow, memoryMetrics } from '../dpo/metrics.js';
import { clipGradNorm, createOptimizer } from '../dpo/optim.js';
import { createProgress, type ProgressStream } from '../dpo/progress.js';
import { syncReference, withReferenceState } from '../dpo/reference.js';
import { MetricsLog, prepareOutputDir, saveFinalModel, writeTrainingArgs } from '../dpo/run-files.js';
import { learningRateAt, warmupStepsFrom } from '../dpo/schedule.js';
import { microBatchObjective, nllCoefficient, stepPairLosses } from '../dpo/step-loss.js';
import { planRun, scoredChosenTokens, shuffledOrder, stepMicroBatches } from '../dpo/train-data.js';
import { TrainConfigError, lossOptionsOf, resolveTrainConfig, snakeCase, trainingArgsJson, type TrainConfig } from '../dpo/trainer-config.js';
import { checkFiniteGradNorm, resolveResume, startPosition, TrainingDivergedError } from '../dpo/trainer.js';
import type { Judge, Preference } from './judges.js';
import { loadPrompts, type PromptItem } from './prompts.js';
import { sampledPair, samplePolicy, type PolicySample } from './sample.js';

/** The sampling options of OnlineDPOConfig (TRL's names in snake_case in online_args.json). */
export interface OnlineOptions {
  /** New tokens per completion at most (TRL: max_new_tokens, 64). */
  maxNewTokens: number;
  /** Sampling temperature (TRL: temperature, 0.9). */
  temperature: number;
  /** Top-k filter (0: off). */
  topK: number;
  /** Nucleus filter (1: off). */
  topP: number;
  /** Subtracted from the score of a completion that did not end with EOS (TRL: missing_eos_penalty); scoring judges only. */
  missingEosPenalty: number | null;
  /** Prompt rows per generate() call (default: all of a micro-batch's 2·B rows at once). */
  generationBatchSize: number | null;
}

export const defaultOnlineOptions: Readonly<OnlineOptions> = Object.freeze({
  maxNewTokens: 64, temperature: 0.9, topK: 0, topP: 1, missingEosPenalty: null, generationBatchSize: null,
});

/** The TRL-style defaults of OnlineDPOConfig where they differ from DPOConfig's. */
export const onlineTrainDefaults: Partial<TrainConfig> = { learningRate: 5e-7, maxPromptLength: 512 };

export const ONLINE_ARGS_FILE = 'online_args.json';

export interface OnlineHooks {
  log?: (line: string) => void;
  progress?: ProgressStream;
}

/** Seconds spent per phase over the whole run (this process). */
export interface PhaseTimes {
  generate: number;
  /** Waiting for the judge after generation finished (judging overlapped with generation is not counted). */
  judge: number;
  train: number;
}

export interface OnlineResult {
  steps: number;
  outputDir: string;
  lastMetrics: Record<string, number> | null;
  /** Pairs trained on, and judge outcomes that gave no label. */
  labelled: number;
  ties: number;
  skipped: number;
  times: PhaseTimes;
}

/** One prompt's two samples and what the judge made of them. */
export interface JudgedPair {
  prompt: PromptItem;
  samples: [PolicySample, PolicySample];
  /** Scores after the missing-EOS penalty, with a scoring judge; null with a pairwise one. */
  scores: [number, number] | null;
  /** 0 or 1: the chosen sample; null: no label (tie or skipped). */
  winner: 0 | 1 | null;
  outcome: 'labelled' | 'tie' | 'skipped';
  reason?: string;
}

/** Checks the online options; throws TrainConfigError naming the first bad one by its TRL name. */
export function resolveOnlineOptions(input: Partial<OnlineOptions>): OnlineOptions {
  const o: OnlineOptions = { ...defaultOnlineOptions };
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(defaultOnlineOptions, key)) throw new TrainConfigError(`${snakeCase(key)}: unknown online option; they are ${Object.keys(defaultOnlineOptions).map(snakeCase).join(', ')}`);
  }
  Object.assign(o, Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)));
  const check = (key: keyof OnlineOptions, ok: boolean, expected: string) => {
    if (!ok) throw new TrainConfigError(`${snakeCase(key)}: must be ${expected}, got ${JSON.stringify(o[key])}`);
  };
  check('maxNewTokens', Number.isSafeInteger(o.maxNewTokens) && o.maxNewTokens >= 1, 'a positive integer');
  check('temperature', Number.isFinite(o.temperature) && o.temperature > 0, 'a number > 0 (online DPO samples; 0 would give two equal greedy completions)');
  check('topK', Number.isSafeInteger(o.topK) && o.topK >= 0, 'an integer ≥ 0');
  check('topP', Number.isFinite(o.topP) && o.topP > 0 && o.topP <= 1, 'in (0, 1]');
  check('missingEosPenalty', o.missingEosPenalty === null || Number.isFinite(o.missingEosPenalty), 'a number or null');
  check('generationBatchSize', o.generationBatchSize === null || (Number.isSafeInteger(o.generationBatchSize) && o.generationBatchSize >= 1), 'a positive integer or null');
  return o;
}

/**
 * Labels one prompt's two samples. A scoring judge scores both (the missing-EOS penalty applied), and the higher
 * score is chosen; equal scores are a tie. A pairwise judge is asked prefer(prompt, a, b). Ties and skipped
 * comparisons give no label: those prompts are left out of the step and counted (TRL would break a tie towards
 * the first sample; a tie carries no preference, so we do not train on it).
 */
export async function judgePair(judge: Judge, prompt: PromptItem, samples: [PolicySample, PolicySample], missingEosPenalty: number | null, promptIndex: number): Promise<JudgedPair> {
  const [a, b] = samples;
  try {
    if (judge.score) {
      const raw = await Promise.all([judge.score(prompt.text, a.text), judge.score(prompt.text, b.text)]);
      const scores = raw.map((s, k) => {
        if (!Number.isFinite(s)) throw new Error(`the judge returned ${s} for sample ${k}`);
        return missingEosPenalty !== null && !samples[k].containsEos ? s - missingEosPenalty : s;
      }) as [number, number];
      if (scores[0] === scores[1]) return { prompt, samples, scores, winner: null, outcome: 'tie' };
      return { prompt, samples, scores, winner: scores[0] > scores[1] ? 0 : 1, outcome: 'labelled' };
    }
    const p: Preference = await judge.prefer(prompt.text, a.text, b.text);
    if (p.status === 'skipped') return { prompt, samples, scores: null, winner: null, outcome: 'skipped', reason: p.reason };
    return { prompt, samples, scores: null, winner: p.winner, outcome: p.winner === null ? 'tie' : 'labelled' };
  } catch (err) {
    throw new Error(`judge '${judge.name}' failed on prompt index ${promptIndex} (${prompt.source}): ${(err as Error).message}`, { cause: err });
  }
}

/** The step's online metrics over its labelled pairs, with TRL's names. */
interface OnlineWindow {
  samples: number;
  eos: number;
  entropy: number; // Σ −log π(y) of the samples (all of them, labelled or not)
  kl: number; // Σ over the trained samples of log π(y) − log π_ref(y)
  klSamples: number;
  scores: number; // Σ score of the trained samples (scoring judges)
  rlhf: number; // Σ (score − β·kl) of the trained samples
  scored: number;
  labelled: number;
  ties: number;
  skipped: number;
  generate: number;
  judge: number;
  train: number;
}
const emptyWindow = (): OnlineWindow => ({ samples: 0, eos: 0, entropy: 0, kl: 0, klSamples: 0, scores: 0, rlhf: 0, scored: 0, labelled: 0, ties: 0, skipped: 0, generate: 0, judge: 0, train: 0 });

function windowSummary(w: OnlineWindow, beta: number): Record<string, number> {
  const out: Record<string, number> = {};
  if (w.klSamples > 0) {
    out['objective/kl'] = w.kl / w.klSamples;
    out['objective/non_score_reward'] = (-beta * w.kl) / w.klSamples;
  }
  if (w.samples > 0) {
    out['objective/entropy'] = w.entropy / w.samples;
    out['val/contain_eos_token'] = w.eos / w.samples;
  }
  if (w.scored > 0) {
    out['objective/scores'] = w.scores / w.scored;
    out['objective/rlhf_reward'] = w.rlhf / w.scored;
  }
  const total = w.generate + w.judge + w.train;
  Object.assign(out, {
    'judge/labelled': w.labelled, 'judge/ties': w.ties, 'judge/skipped': w.skipped,
    'time/generate_s': w.generate, 'time/judge_s': w.judge, 'time/train_s': w.train,
    'time/generate_fraction': total > 0 ? w.generate / total : 0, 'time/judge_fraction': total > 0 ? w.judge / total : 0, 'time/train_fraction': total > 0 ? w.train / total : 0,
  });
  return out;
}

const seconds = (start: number) => (performance.now() - start) / 1000;
/** Lets the event loop run (HTTP judge requests go out) between synchronous generation batches. */
const yieldToEventLoop = () => new Promise<void>((wake) => setTimeout(wake, 0));

/**
 * Online DPO. `input` is a TrainConfig whose `dataset` is a prompt-only file (src/online/prompts.ts); the loss,
 * optimizer, schedule, logging, checkpoint and resume options mean what they mean for `dpo train`.
 */
export async function trainOnline(input: Partial<TrainConfig>, onlineInput: Partial<OnlineOptions>, judge: Judge, hooks: OnlineHooks = {}): Promise<OnlineResult> {
  const c = resolveTrainConfig({ ...onlineTrainDefaults, ...input });
  const o = resolveOnlineOptions(onlineInput);
  if (c.task !== 'dpo') throw new TrainConfigError(`task: online DPO trains preference losses, got '${c.task}'`);
  if (c.precomputeRefLogProbs) throw new TrainConfigError('precompute_ref_log_probs: online DPO scores fresh samples at every step, so reference log-probs cannot be precomputed; drop the option');
  if (c.evalStrategy !== 'no') throw new TrainConfigError(`eval_strategy: online DPO has no preference eval set; use --eval-strategy no and measure with dpo winrate or dpo eval`);
  if (c.useWeighting) throw new TrainConfigError('use_weighting: WPO re-weights off-policy pairs; online pairs are on-policy already, so it is not supported here');
  const progress = createProgress(hooks.progress ?? process.stderr);
  const log = hooks.log ?? ((line: string) => progress.message(line));

  const resumeDir = resolveResume(c, log);
  prepareOutputDir(c.outputDir, { overwrite: c.overwriteOutputDir, resuming: resumeDir !== null });
  const policy = loadPretrained(c.model);
  const tokenizerFrom = existsSync(join(c.model, 'tokenizer.json')) ? c.model : undefined;
  let refModel: Pretrained | null = null;
  try {
    const tokenizer = requireTokenizerOf(policy, c.model);
    const gen = generationDefaults(policy);
    const eosTokenIds = [...(typeof gen.eosTokenIds === 'number' ? [gen.eosTokenIds] : gen.eosTokenIds ?? [])];
    if (eosTokenIds.length === 0) log(`warning: ${c.model} names no EOS token; every completion runs to max_new_tokens and val/contain_eos_token stays 0`);
    const padTokenId = gen.padTokenId ?? eosTokenIds[0] ?? 0;
    const prompts = await loadPrompts(c.dataset, tokenizer, { maxPromptLength: c.maxPromptLength });
    const longest = Math.max(...prompts.map((p) => p.ids.length)) + o.maxNewTokens;
    if (longest > policy.model.maxPositions) {
      throw new TrainConfigError(`max_new_tokens: the longest prompt (${longest - o.maxNewTokens} tokens) + ${o.maxNewTokens} new tokens exceeds the model's ${policy.model.maxPositions} positions; lower --max-new-tokens or --max-prompt-length`);
    }
    const n = prompts.length;
    const lossOptions = lossOptionsOf(c);
    const nllCoef = nllCoefficient(c.lossType, c.lossWeights, lossOptions);
    const usesReference = c.lossType.some(needsReference);
    if (usesReference) {
      refModel = loadPretrained(c.refModel ?? c.model);
      if (refModel.model.vocabSize !== policy.model.vocabSize) throw new TrainConfigError(`ref_model: ${c.refModel} has vocab_size ${refModel.model.vocabSize}, the policy ${policy.model.vocabSize}; they must share the tokenizer`);
    }
    if (c.syncRefModel && refModel === null) throw new TrainConfigError('sync_ref_model: TR-DPO needs a reference model, but no loss of --loss-type reads one');
    log(`online DPO: ${n} prompts from ${c.dataset}, judge ${judge.name}, loss ${c.lossType.join('+')}, β ${c.beta}, 2 samples per prompt at temperature ${o.temperature}, ≤ ${o.maxNewTokens} new tokens`);

    const params = policy.model.parameters();
    const baseOptimizer = createOptimizer([...policy.model.namedParameters()], { type: c.optim, weightDecay: c.weightDecay, beta1: c.adamBeta1, beta2: c.adamBeta2, eps: c.adamEpsilon });
    const optimizer = c.syncRefModel && refModel ? withReferenceState(baseOptimizer, refModel.model) : baseOptimizer;
    const plan = planRun(n, c);
    const schedule = { type: c.lrSchedulerType, baseLr: c.learningRate, warmupSteps: warmupStepsFrom(c.warmupSteps, c.warmupRatio, plan.totalSteps), totalSteps: plan.totalSteps };
    const rng = new Rng(c.seed); // the shuffle and the sampling share one seeded stream, saved in checkpoints
    const metricsLog = new MetricsLog(c.outputDir);
    const start = startPosition(resumeDir, { model: policy.model, optimizer }, {
      n, rng, metricsLog, log, totalSteps: plan.totalSteps, mismatch: (trained) => `${trained} prompts, this file has ${n}; resume with the same prompts`,
    });
    let { step, epoch, consumed, order, numTokens, bco } = start;
    const history = start.history;
    const totals = { labelled: 0, ties: 0, skipped: 0 };
    for (const k of ['labelled', 'ties', 'skipped'] as const) totals[k] = Number(start.lossState[`judge_${k}`] ?? 0);
    writeTrainingArgs(c.outputDir, trainingArgsJson(c));
    const onlineArgs = Object.fromEntries(Object.entries(o).map(([k, v]) => [snakeCase(k), v]));
    writeFileAtomic(join(c.outputDir, ONLINE_ARGS_FILE), JSON.stringify({ ...onlineArgs, judge: judge.name }, null, 2) + '\n');

    const times: PhaseTimes = { generate: 0, judge: 0, train: 0 };
    let window = new MetricsWindow(true);
    let online = emptyWindow();
    let windowTokens = 0;
    let windowStart = performance.now();
    let lastMetrics: Record<string, number> | null = null;
    let lastCheckpoint = resumeDir;
    resetPeakMemory();
    while (step < plan.totalSteps) {
      const micro = stepMicroBatches(n, consumed, c).map((positions) => positions.map((p) => order[p]));
      // 1. Sample and judge every micro-batch of the step with the current policy. A micro-batch's judge calls run
      //    while the next one is generated (all with the same weights, so the data stays exactly on-policy).
      const judged: Promise<JudgedPair[]>[] = [];
      let t = performance.now();
      for (const indices of micro) {
        const batchPrompts = indices.map((i) => prompts[i]);
        const samples = samplePolicy(policy.model, tokenizer, batchPrompts, 2, {
          maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, topP: o.topP,
          batchSize: o.generationBatchSize ?? 2 * batchPrompts.length, rng, eosTokenIds, padTokenId,
        });
        for (const pair of samples) {
          online.samples += 2;
          for (const s of pair) {
            online.eos += s.containsEos ? 1 : 0;
            online.entropy -= s.logp;
          }
        }
        judged.push(Promise.all(batchPrompts.map((p, k) => judgePair(judge, p, [samples[k][0], samples[k][1]], o.missingEosPenalty, indices[k]))));
        await yieldToEventLoop();
      }
      online.generate += seconds(t);
      times.generate += seconds(t);
      t = performance.now();
      const labelledMicro: TokenizedExample[][] = [];
      const scoresMicro: [number, number][][] = [];
      for (const batch of await Promise.all(judged)) {
        const examples: TokenizedExample[] = [];
        const scores: [number, number][] = [];
        for (const j of batch) {
          if (j.outcome === 'tie') online.ties++;
          if (j.outcome === 'skipped') online.skipped++;
          if (j.winner === null) continue;
          online.labelled++;
          const [w, l] = j.winner === 0 ? [j.samples[0], j.samples[1]] : [j.samples[1], j.samples[0]];
          examples.push(sampledPair(j.prompt.index, j.prompt.source, j.prompt, w, l));
          if (j.scores) scores.push(j.winner === 0 ? j.scores : [j.scores[1], j.scores[0]]);
        }
        if (examples.length > 0) {
          labelledMicro.push(examples);
          scoresMicro.push(scores);
        }
      }
      online.judge += seconds(t);
      times.judge += seconds(t);

      // 2. One optimizer step on the step's labelled pairs (exact accumulation over its micro-batches).
      t = performance.now();
      const stepPairs = labelledMicro.reduce((k, m) => k + m.length, 0);
      const stepChosenTokens = labelledMicro.flat().reduce((k, e) => k + scoredChosenTokens(e), 0);
      let gradNorm = 0;
      const lr = learningRateAt(step, schedule);
      zeroGrad(params);
      if (stepPairs > 0) {
        labelledMicro.forEach((examples, m) => {
          scope(() => {
            const batch = collatePreferenceBatch(examples, { padTokenId });
            const pol = forwardPairs(policy.model, batch, { ldAlpha: c.ldAlpha, useWeighting: false, chosenOnly: false });
            const ref = refModel ? noGrad(() => forwardPairs(refModel!.model, batch, { ldAlpha: c.ldAlpha, useWeighting: false, chosenOnly: false })) : null;
            const lp = { chosen: pol.chosen, rejected: pol.rejected, refChosen: ref?.chosen ?? null, refRejected: ref?.rejected ?? null, chosenLength: pol.chosenLength, rejectedLength: pol.rejectedLength };
            const out = computeLoss(c.lossType, c.lossWeights, lp, lossOptions, { bcoRunningMean: bco });
            const share = { pairs: examples.length, chosenTokens: examples.reduce((k, e) => k + scoredChosenTokens(e), 0), stepPairs, stepChosenTokens };
            const losses = stepPairLosses(out.losses, pol.chosen, null, nllCoef, share);
            const bad = Array.from(losses.data).findIndex((v) => !Number.isFinite(v));
            if (bad >= 0) throw new TrainingDivergedError(`step ${step + 1}: the loss is not finite for the pair of prompt ${examples[bad].index}. Training stopped. ${lastCheckpoint ? `The last good checkpoint is ${lastCheckpoint}.` : 'No checkpoint was saved before it.'} Lower --learning-rate or set --max-grad-norm.`);
            backward(microBatchObjective(losses, stepPairs));
            window.add({
              losses: losses.data, chosenRewards: out.chosenRewards.data, rejectedRewards: out.rejectedRewards.data, chosenLogps: pol.chosen.data, rejectedLogps: pol.rejected.data,
              chosenLogitSum: pol.chosenLogitSum, chosenLogitEntries: pol.chosenLogitEntries, rejectedLogitSum: pol.rejectedLogitSum, rejectedLogitEntries: pol.rejectedLogitEntries,
            });
            // KL of the sampled completions: Σ_t log π(y_t) − log π_ref(y_t), per sample (TRL's objective/kl).
            for (let i = 0; i < examples.length; i++) {
              for (const [side, k] of [[0, 0], [1, 1]] as const) {
                const logp = (side === 0 ? pol.chosen : pol.rejected).data[i];
                const refLogp = ref ? (side === 0 ? ref.chosen : ref.rejected).data[i] : logp;
                const kl = logp - refLogp;
                online.kl += kl;
                online.klSamples++;
                const sc = scoresMicro[m][i];
                if (sc) {
                  online.scores += sc[k];
                  online.rlhf += sc[k] - c.beta * kl;
                  online.scored++;
                }
              }
            }
            numTokens += pol.numTokens;
            windowTokens += pol.numTokens;
            bco = out.bcoRunningMean ?? bco;
          });
        });
        gradNorm = clipGradNorm(params, c.maxGradNorm);
        checkFiniteGradNorm(gradNorm, step + 1, labelledMicro.flat(), policy.model.namedParameters(), lastCheckpoint);
        optimizer.step(lr);
      } else {
        log(`step ${step + 1}: the judge labelled none of the ${micro.flat().length} prompt(s) (ties ${online.ties}, skipped ${online.skipped} so far); no update`);
      }
      online.train += seconds(t);
      times.train += seconds(t);
      step++;
      consumed += micro.length;
      const epochEnded = consumed * c.perDeviceTrainBatchSize >= n;
      if (epochEnded) [epoch, consumed, order] = [epoch + 1, 0, shuffledOrder(n, rng)];
      if (c.syncRefModel && refModel && step % c.refModelSyncSteps === 0) syncReference(refModel.model, policy.model, c.refModelMixupAlpha);

      const epochs = epoch + (consumed * c.perDeviceTrainBatchSize) / n;
      const trained = window.size > 0 ? window.summary() : {}; // the window's DPO metrics; none before a labelled pair
      const fields = { step, totalSteps: plan.totalSteps, loss: trained.loss ?? NaN, accuracy: trained['rewards/accuracies'] ?? NaN, tokensPerSecond: (windowTokens * 1000) / Math.max(1e-9, performance.now() - windowStart) };
      progress.step(fields);
      if (step % c.loggingSteps === 0 || step === plan.totalSteps) {
        totals.labelled += online.labelled;
        totals.ties += online.ties;
        totals.skipped += online.skipped;
        lastMetrics = {
          ...trained, ...windowSummary(online, c.beta), beta: c.beta, grad_norm: gradNorm, learning_rate: lr, num_tokens: numTokens,
          tokens_per_second: fields.tokensPerSecond, ...memoryMetrics(memoryStats().peakLiveBytes), epoch: epochs, step,
        };
        metricsLog.append(lastMetrics);
        history.push(lastMetrics);
        progress.logged({ ...fields, loss: lastMetrics.loss ?? NaN, accuracy: lastMetrics['rewards/accuracies'] ?? NaN });
        [window, online, windowTokens, windowStart] = [new MetricsWindow(true), emptyWindow(), 0, performance.now()];
      }
      if (c.saveSteps > 0 && (step % c.saveSteps === 0 || step === plan.totalSteps)) {
        lastCheckpoint = await saveCheckpoint(c.outputDir, step, {
          model: policy.model, modelConfig: policy.config, tokenizerFrom, optimizer, saveTotalLimit: c.saveTotalLimit,
          trainerState: {
            globalStep: step, epoch: epochs, dataPosition: { epoch, batchIndex: consumed, order }, rngState: rng.getState(), logHistory: history,
            lossState: { num_tokens: numTokens, judge_labelled: totals.labelled, judge_ties: totals.ties, judge_skipped: totals.skipped, ...(bco ? { bco_running_mean: { ...bco } } : {}) },
            schedulerState: { ...schedule },
          },
        });
      }
    }
    progress.done();
    await saveFinalModel(policy.model, c.outputDir, { config: policy.config, tokenizerFrom });
    const total = times.generate + times.judge + times.train;
    const pct = (x: number) => `${((100 * x) / Math.max(total, 1e-9)).toFixed(0)}%`;
    log(`saved the model after ${step} steps to ${c.outputDir}; judge: ${totals.labelled} labelled, ${totals.ties} ties, ${totals.skipped} skipped; ` +
      `time: generate ${times.generate.toFixed(1)} s (${pct(times.generate)}), judge wait ${times.judge.toFixed(1)} s (${pct(times.judge)}), train ${times.train.toFixed(1)} s (${pct(times.train)})`);
    return { steps: step, outputDir: c.outputDir, lastMetrics, ...totals, times };
  } finally {
    progress.done();
    refModel?.model.dispose();
    policy.model.dispose();
  }
}

function requireTokenizerOf(p: Pretrained, dir: string): Tokenizer {
  if (p.tokenizer === null) throw new TrainConfigError(`model: ${dir} has no tokenizer.json; online DPO decodes samples for the judge, so the model folder needs its tokenizer`);
  return p.tokenizer;
}
