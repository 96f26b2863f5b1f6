// `dpo iterate`: iterative preference optimisation (Xu et al. 2023, arXiv 2312.16682). Each round samples K completions
// per prompt from the current model, has a judge score them (or compare them two by two), pairs the best with the
// worst, and trains the next model on those pairs: with a DPO loss through the trainer, the reference being the round's
// starting model (iterative DPO), or with the pairwise Cringe loss (cringe.ts). Round N lives in OUTPUT/round-N/ (it is
// itself the round's model directory) and ends with an atomic DONE marker; a rerun resumes after the last finished
// round. Not here: sampling (sample.ts), judges (judges.ts), the DPO trainer (dpo/trainer.ts).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultPadTokenId } from '../data/dataset.js';
import { truncateExamples } from '../data/truncate.js';
import type { TokenizedExample } from '../data/tokenize.js';
import { Rng } from '../engine/random.js';
import { writeFileAtomic } from '../io/atomic.js';
import { generationDefaults, loadPretrained } from '../io/pretrained.js';
import { requireTokenizer } from '../io/tokenizer.js';
import { parseLossTypes } from '../dpo/losses/index.js';
import { MetricsLog, saveFinalModel } from '../dpo/run-files.js';
import type { SchedulerType } from '../dpo/schedule.js';
import { resolveTrainConfig, TrainConfigError, type TrainConfig } from '../dpo/trainer-config.js';
import { train, type TrainHooks } from '../dpo/trainer.js';
import { trainPairwiseCringe, validateCringeOptions, type CringeOptions } from './cringe.js';
import type { Judge } from './judges.js';
import { loadPrompts, type PromptItem } from './prompts.js';
import { sampledPair, samplePolicy, type PolicySample } from './sample.js';

/** The --loss-type that trains with the pairwise Cringe loss instead of a DPO loss. */
export const PAIRWISE_CRINGE = 'pairwise_cringe';
export const ROUNDS_FILE = 'rounds.jsonl';
export const ITERATE_ARGS_FILE = 'iterate_args.json';
export const DONE_FILE = 'DONE';

export interface IterateConfig {
  /** The round-1 model directory (with tokenizer.json). */
  model: string;
  /** Prompt-only data (prompts.ts): a `prompt` column, JSONL / JSON / Parquet. */
  prompts: string;
  outputDir: string;
  rounds: number;
  /** K completions sampled per prompt each round. */
  samplesPerPrompt: number;
  /** ['pairwise_cringe'], or DPO loss types from dpo/losses (combined as `dpo train` combines them). */
  lossType: string[];
  // ---- sampling
  temperature: number;
  topK: number;
  topP: number;
  maxNewTokens: number;
  generationBatchSize: number;
  maxPromptLength: number | null;
  /** Use at most this many prompts (the first ones); null uses all. */
  maxPrompts: number | null;
  // ---- training, every round (TRL's names)
  learningRate: number;
  beta: number;
  numTrainEpochs: number;
  maxSteps: number;
  perDeviceTrainBatchSize: number;
  gradientAccumulationSteps: number;
  maxLength: number | null;
  lrSchedulerType: SchedulerType;
  warmupRatio: number;
  weightDecay: number;
  maxGradNorm: number;
  seed: number;
  // ---- pairwise Cringe (cringe.ts)
  cringe: CringeOptions;
}

/** One line of rounds.jsonl (and the contents of round-N/DONE). */
export interface RoundSummary {
  round: number;
  loss_type: string;
  start_model: string;
  prompts: number;
  samples: number;
  /** Mean judge score over the round's samples; null for judges that only compare. */
  mean_score: number | null;
  mean_completion_tokens: number;
  /** Fraction of the samples that ended with EOS (not cut at max_new_tokens). */
  contains_eos: number;
  pairs: number;
  /** Prompts with no pair because best and worst were judged equal (all scores equal, or a tied comparison). */
  tied: number;
  /** Prompts with no pair because the judge gave up on the deciding comparison, and comparisons skipped in all. */
  skipped: number;
  skipped_comparisons: number;
  train_steps: number;
  /** Mean training loss over the round's steps; null when no pair was formed. */
  train_loss: number | null;
  generate_seconds: number;
  judge_seconds: number;
  train_seconds: number;
}

export interface IterateHooks extends TrainHooks {
  log?: (line: string) => void;
}

export interface IterateResult {
  outputDir: string;
  /** One summary per finished round, round 1 first (the finished rounds found on disk included). */
  rounds: RoundSummary[];
  /** Rounds this call ran (the others were already finished). */
  ran: number[];
  /** The last finished round's model directory (the input model when no round has finished). */
  finalModel: string;
}

export class IterateConfigError extends Error {
  override name = 'IterateConfigError';
}

// ------------------------------------------------------------------------------------------------ pairs
/** Which completion of a prompt's K is chosen and which rejected, or why there is no pair. */
export type PairOutcome = { kind: 'pair'; chosen: number; rejected: number } | { kind: 'tied' } | { kind: 'skipped'; reason: string };

/** Best against worst by score (the first index on equal scores); equal best and worst scores give no pair. */
export function pairFromScores(scores: readonly number[]): PairOutcome {
  if (scores.length < 2) return { kind: 'tied' };
  let [best, worst] = [0, 0];
  scores.forEach((s, i) => {
    if (s > scores[best]) best = i;
    if (s < scores[worst]) worst = i;
  });
  return scores[best] === scores[worst] ? { kind: 'tied' } : { kind: 'pair', chosen: best, rejected: worst };
}

export interface PreferenceRanking {
  outcome: PairOutcome;
  /** Comparisons each completion won, over all K·(K − 1)/2 of them. */
  wins: number[];
  skippedComparisons: number;
}

/**
 * For judges that only compare: every two of the K completions are compared once (prefer(a, b) with a before b), the
 * most-winning completion is paired with the least-winning one (first index on equal counts), and the pair stands only
 * if the judge preferred the first to the second in their own comparison: a tie or a reversal there (possible when
 * preferences are not transitive) counts as tied, a skip there (or equal win counts after skips) as skipped. A skip is
 * never read as a label; a skipped comparison that does not decide the pair is only counted.
 */
export async function pairFromPreferences(judge: Judge, prompt: string, completions: readonly string[]): Promise<PreferenceRanking> {
  const k = completions.length;
  const matches: [number, number][] = [];
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) matches.push([i, j]);
  const results = await Promise.all(matches.map(([i, j]) => judge.prefer(prompt, completions[i], completions[j])));
  const wins = new Array<number>(k).fill(0);
  let skippedComparisons = 0;
  results.forEach((r, m) => {
    if (r.status === 'skipped') skippedComparisons++;
    else if (r.winner !== null) wins[matches[m][r.winner]]++;
  });
  const outcome = pairFromScores(wins);
  if (outcome.kind !== 'pair') {
    // Equal win counts decide nothing; when comparisons were skipped, the judge's failure is why.
    const failed = results.find((r) => r.status === 'skipped');
    return { outcome: failed ? { kind: 'skipped', reason: failed.reason ?? 'the judge skipped a comparison' } : outcome, wins, skippedComparisons };
  }
  const [lo, hi] = [Math.min(outcome.chosen, outcome.rejected), Math.max(outcome.chosen, outcome.rejected)];
  const direct = results[matches.findIndex(([i, j]) => i === lo && j === hi)];
  if (direct.status === 'skipped') return { outcome: { kind: 'skipped', reason: direct.reason ?? 'the judge skipped the comparison' }, wins, skippedComparisons };
  const winner = direct.winner === null ? null : direct.winner === 0 ? lo : hi;
  return { outcome: winner === outcome.chosen ? outcome : { kind: 'tied' }, wins, skippedComparisons };
}

// ------------------------------------------------------------------------------------------------ the rounds
const roundDir = (out: string, n: number) => join(out, `round-${n}`);
const seconds = (start: number) => Number(((performance.now() - start) / 1000).toFixed(3));
/** A seed per round and stream (0: sampling, 1: training), so a redone round repeats itself exactly. */
const roundSeed = (seed: number, round: number, stream: number) => (seed * 7919 + round * 104729 + stream * 15485863) >>> 0;
const jsonl = (rows: readonly object[]) => rows.map((r) => JSON.stringify(r) + '\n').join('');

/** The summaries of the finished rounds 1, 2, … (up to the first unfinished one). */
export function finishedRounds(outputDir: string): RoundSummary[] {
  const done: RoundSummary[] = [];
  for (let n = 1; existsSync(join(roundDir(outputDir, n), DONE_FILE)); n++) {
    done.push(JSON.parse(readFileSync(join(roundDir(outputDir, n), DONE_FILE), 'utf8')) as RoundSummary);
  }
  return done;
}

/** Checks the options before any round runs, so a typo fails in a second rather than after the first generation. */
function checkConfig(c: IterateConfig): { cringe: boolean; trainBase: Partial<TrainConfig> } {
  const positiveInt = (flag: string, value: number) => {
    if (!(Number.isSafeInteger(value) && value >= 1)) throw new IterateConfigError(`--${flag} must be a positive integer, got ${value}`);
  };
  positiveInt('rounds', c.rounds);
  positiveInt('samples-per-prompt', c.samplesPerPrompt);
  positiveInt('max-new-tokens', c.maxNewTokens);
  positiveInt('generation-batch-size', c.generationBatchSize);
  if (c.maxPrompts !== null) positiveInt('max-prompts', c.maxPrompts);
  if (c.samplesPerPrompt < 2) throw new IterateConfigError(`--samples-per-prompt: a pair needs two completions of a prompt, got ${c.samplesPerPrompt}`);
  if (!(c.temperature > 0)) throw new IterateConfigError(`--temperature: sampling K different completions needs a temperature > 0, got ${c.temperature}`);
  const cringe = c.lossType.includes(PAIRWISE_CRINGE);
  if (cringe && c.lossType.length > 1) throw new IterateConfigError(`--loss-type: ${PAIRWISE_CRINGE} trains alone; got ${c.lossType.join(',')}`);
  const trainBase: Partial<TrainConfig> = {
    task: 'dpo', refModel: null, lossType: cringe ? ['sigmoid'] : c.lossType as TrainConfig['lossType'], beta: c.beta, learningRate: c.learningRate,
    numTrainEpochs: c.numTrainEpochs, maxSteps: c.maxSteps, perDeviceTrainBatchSize: c.perDeviceTrainBatchSize,
    gradientAccumulationSteps: c.gradientAccumulationSteps, maxLength: c.maxLength, maxPromptLength: null, lrSchedulerType: c.lrSchedulerType,
    warmupRatio: c.warmupRatio, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm, saveSteps: 0, loggingSteps: 1,
  };
  if (!cringe) {
    try {
      parseLossTypes(c.lossType);
    } catch (e) {
      throw new IterateConfigError(`--loss-type: ${(e as Error).message}; or ${PAIRWISE_CRINGE} alone`);
    }
  }
  try {
    resolveTrainConfig({ ...trainBase, model: c.model, dataset: c.prompts, outputDir: c.outputDir, seed: c.seed });
    if (cringe) validateCringeOptions(c.cringe);
  } catch (e) {
    throw new IterateConfigError((e as Error).message);
  }
  return { cringe, trainBase };
}

/** The run's options as iterate_args.json holds them: everything but the number of rounds, which may grow. */
function argsRecord(c: IterateConfig, judge: Judge): Record<string, unknown> {
  const { rounds: _rounds, ...rest } = c;
  return { ...rest, model: resolve(c.model), prompts: resolve(c.prompts), outputDir: resolve(c.outputDir), judge: judge.name };
}

/**
 * Records the options in a new output folder; refuses one whose finished rounds were made with other options (or one
 * that something else wrote). Before any round has finished, new options replace the old ones.
 */
function claimOutputDir(c: IterateConfig, judge: Judge): void {
  const path = join(c.outputDir, ITERATE_ARGS_FILE);
  const wanted = argsRecord(c, judge);
  if (existsSync(path)) {
    const found = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const differ = [...new Set([...Object.keys(found), ...Object.keys(wanted)])].filter((k) => JSON.stringify(found[k]) !== JSON.stringify(wanted[k]));
    if (differ.length > 0 && finishedRounds(c.outputDir).length === 0) {
      writeFileAtomic(path, JSON.stringify(wanted, null, 2) + '\n'); // nothing finished yet: the new options simply apply
      return;
    }
    if (differ.length > 0) {
      const flag = (key: string) => `--${key.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`)}`; // learningRate → --learning-rate
      throw new IterateConfigError(`output_dir: ${c.outputDir} holds rounds made with other options (${differ.map((k) => `${flag(k)}: ${JSON.stringify(found[k])} there, ${JSON.stringify(wanted[k])} now`).join('; ')}); ` +
        'rerun with the same options to resume (only --rounds may change), or choose another --output-dir');
    }
    return;
  }
  if (existsSync(c.outputDir) && readdirSync(c.outputDir).length > 0) {
    throw new IterateConfigError(`output_dir: ${c.outputDir} is not empty and holds no ${ITERATE_ARGS_FILE}; choose an empty or new --output-dir`);
  }
  mkdirSync(c.outputDir, { recursive: true });
  writeFileAtomic(path, JSON.stringify(wanted, null, 2) + '\n');
}

/**
 * Runs rounds until `config.rounds` are finished. Finished rounds found in the output folder are kept; the first
 * unfinished round (and anything after it) is removed and run again from the last finished round's model.
 */
export async function runIterate(config: IterateConfig, judge: Judge, hooks: IterateHooks = {}): Promise<IterateResult> {
  const log = hooks.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const { cringe, trainBase } = checkConfig(config);
  claimOutputDir(config, judge);
  const out = config.outputDir;
  const done = finishedRounds(out);
  for (const name of readdirSync(out)) {
    const m = /^round-(\d+)$/.exec(name);
    if (m && Number(m[1]) > done.length) {
      const why = existsSync(join(out, name, DONE_FILE)) ? `it follows the unfinished round ${done.length + 1}` : `unfinished (no ${DONE_FILE})`;
      log(`round ${m[1]}: ${why}; removing it to run it again`);
      rmSync(join(out, name), { recursive: true, force: true });
    }
  }
  if (done.length > 0) log(`resuming: rounds 1–${done.length} are finished${done.length < config.rounds ? `; starting at round ${done.length + 1}` : ''}`);
  const ran: number[] = [];
  for (let n = done.length + 1; n <= config.rounds; n++) {
    const startModel = n === 1 ? config.model : roundDir(out, n - 1);
    const summary = await runRound(config, judge, n, startModel, cringe, trainBase, { ...hooks, log });
    writeFileAtomic(join(roundDir(out, n), DONE_FILE), JSON.stringify(summary) + '\n');
    done.push(summary);
    ran.push(n);
    writeFileAtomic(join(out, ROUNDS_FILE), jsonl(done));
    log(`round ${n}/${config.rounds}: ${summary.samples} samples, mean score ${summary.mean_score?.toFixed(4) ?? 'n/a'}, ${summary.pairs} pairs ` +
      `(${summary.tied} tied, ${summary.skipped} skipped), train loss ${summary.train_loss?.toFixed(4) ?? 'n/a'} over ${summary.train_steps} steps; ` +
      `generate ${summary.generate_seconds} s, judge ${summary.judge_seconds} s, train ${summary.train_seconds} s`);
  }
  writeFileAtomic(join(out, ROUNDS_FILE), jsonl(done)); // also after a resume that found every round finished
  return { outputDir: out, rounds: done, ran, finalModel: done.length === 0 ? config.model : roundDir(out, done.length) };
}

interface JudgedPrompt {
  prompt: PromptItem;
  samples: PolicySample[];
  scores: number[] | null;
  wins: number[] | null;
  outcome: PairOutcome;
}

/** Scores (or compares) every prompt's completions; a judge that throws names the prompt and the completion. */
async function judgeAll(judge: Judge, prompts: readonly PromptItem[], samples: readonly PolicySample[][], round: number): Promise<{ judged: JudgedPrompt[]; skippedComparisons: number }> {
  const score = judge.score;
  let skippedComparisons = 0;
  const judged = await Promise.all(prompts.map(async (prompt, p): Promise<JudgedPrompt> => {
    const texts = samples[p].map((s) => s.text);
    if (score === undefined) {
      const ranking = await pairFromPreferences(judge, prompt.text, texts);
      skippedComparisons += ranking.skippedComparisons;
      return { prompt, samples: samples[p], scores: null, wins: ranking.wins, outcome: ranking.outcome };
    }
    const scores = await Promise.all(texts.map(async (text, k) => {
      try {
        return await score.call(judge, prompt.text, text);
      } catch (err) {
        throw new Error(`round ${round}: judge '${judge.name}' failed on prompt index ${prompt.index} (${prompt.source}), completion ${k} of ${texts.length}: ${(err as Error).message}`, { cause: err });
      }
    }));
    return { prompt, samples: samples[p], scores, wins: null, outcome: pairFromScores(scores) };
  }));
  return { judged, skippedComparisons };
}

async function runRound(c: IterateConfig, judge: Judge, n: number, startModel: string, cringe: boolean, trainBase: Partial<TrainConfig>, hooks: IterateHooks & { log: (line: string) => void }): Promise<RoundSummary> {
  const dir = roundDir(c.outputDir, n);
  mkdirSync(dir, { recursive: true });
  const policy = loadPretrained(startModel);
  let policyDisposed = false;
  const disposePolicy = () => {
    if (!policyDisposed) policy.model.dispose();
    policyDisposed = true;
  };
  try {
    const tokenizer = policy.tokenizer ?? requireTokenizer(startModel);
    const prompts = await loadPrompts(c.prompts, tokenizer, { maxPromptLength: c.maxPromptLength, limit: c.maxPrompts });

    // ---- generate K completions per prompt from the current model
    let start = performance.now();
    const longest = prompts.reduce((a, p) => (p.ids.length > a.ids.length ? p : a));
    const room = policy.model.maxPositions - longest.ids.length;
    if (room < 1) throw new IterateConfigError(`prompt ${longest.index} (${longest.source}) has ${longest.ids.length} tokens, leaving no room in the model's ${policy.model.maxPositions} positions; lower --max-prompt-length`);
    const padTokenId = defaultPadTokenId(tokenizer);
    const eos = generationDefaults(policy).eosTokenIds ?? [];
    const samples = samplePolicy(policy.model, tokenizer, prompts, c.samplesPerPrompt, {
      temperature: c.temperature, topK: c.topK, topP: c.topP, maxNewTokens: Math.min(c.maxNewTokens, room), batchSize: c.generationBatchSize,
      rng: new Rng(roundSeed(c.seed, n, 0)), eosTokenIds: typeof eos === 'number' ? [eos] : eos, padTokenId,
    });
    const generateSeconds = seconds(start);

    // ---- judge them and pair the best with the worst
    start = performance.now();
    const { judged, skippedComparisons } = await judgeAll(judge, prompts, samples, n);
    const judgeSeconds = seconds(start);
    const pairs: TokenizedExample[] = [];
    const pairRows: object[] = [];
    for (const j of judged) {
      if (j.outcome.kind !== 'pair') continue;
      const [chosen, rejected] = [j.samples[j.outcome.chosen], j.samples[j.outcome.rejected]];
      const values = j.scores ?? j.wins!;
      pairs.push(sampledPair(j.prompt.index, j.prompt.source, j.prompt, chosen, rejected));
      pairRows.push({
        prompt_input_ids: j.prompt.ids, chosen_input_ids: chosen.ids, rejected_input_ids: rejected.ids,
        prompt: j.prompt.text, chosen: chosen.text, rejected: rejected.text,
        [j.scores ? 'score_chosen' : 'wins_chosen']: values[j.outcome.chosen], [j.scores ? 'score_rejected' : 'wins_rejected']: values[j.outcome.rejected],
        prompt_index: j.prompt.index, round: n,
      });
    }
    writeFileAtomic(join(dir, 'samples.jsonl'), jsonl(judged.map((j) => ({
      prompt_index: j.prompt.index, source: j.prompt.source, prompt: j.prompt.text, completions: j.samples.map((s) => s.text),
      scores: j.scores, wins: j.wins, logps: j.samples.map((s) => s.logp), contains_eos: j.samples.map((s) => s.containsEos),
      outcome: j.outcome.kind, ...(j.outcome.kind === 'pair' ? { chosen: j.outcome.chosen, rejected: j.outcome.rejected } : {}),
      ...(j.outcome.kind === 'skipped' ? { reason: j.outcome.reason } : {}),
    }))));
    const pairsPath = join(dir, 'pairs.jsonl');
    writeFileAtomic(pairsPath, jsonl(pairRows));

    // ---- train the next model, into the round's folder
    start = performance.now();
    const trainSeed = roundSeed(c.seed, n, 1);
    let losses: number[] = [];
    if (pairs.length === 0) {
      hooks.log(`round ${n}: no pair was formed (all ${prompts.length} prompts tied or skipped); the round's model is its starting model`);
      await saveFinalModel(policy.model, dir, { config: policy.config, tokenizerFrom: startModel });
    } else if (cringe) {
      const { examples, summary } = truncateExamples(pairs, { maxLength: c.maxLength, maxPromptLength: null });
      if (examples.length < pairs.length) hooks.log(`round ${n}: ${pairs.length - examples.length} of ${pairs.length} pairs dropped by --max-length (${JSON.stringify(summary.dropped)})`);
      const metrics = new MetricsLog(dir);
      if (examples.length > 0) {
        losses = trainPairwiseCringe(policy.model, examples, { ...c, cringe: c.cringe, seed: trainSeed, padTokenId }, (record) => metrics.append(record)).map((r) => r.loss);
      }
      await saveFinalModel(policy.model, dir, { config: policy.config, tokenizerFrom: startModel });
    } else {
      disposePolicy(); // the trainer loads the policy and the reference (the same starting model) itself
      await train({ ...trainBase, model: startModel, dataset: pairsPath, outputDir: dir, seed: trainSeed }, hooks);
      losses = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    }
    const trainSeconds = seconds(start);

    const flat = judged.flatMap((j) => j.samples);
    const allScores = judged.flatMap((j) => j.scores ?? []);
    const mean = (xs: readonly number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
    return {
      round: n, loss_type: c.lossType.join(','), start_model: startModel, prompts: prompts.length, samples: flat.length,
      mean_score: judge.score === undefined ? null : mean(allScores), mean_completion_tokens: mean(flat.map((s) => s.ids.length)) ?? 0,
      contains_eos: mean(flat.map((s) => (s.containsEos ? 1 : 0))) ?? 0,
      pairs: pairs.length, tied: judged.filter((j) => j.outcome.kind === 'tied').length, skipped: judged.filter((j) => j.outcome.kind === 'skipped').length,
      skipped_comparisons: skippedComparisons, train_steps: losses.length, train_loss: mean(losses),
      generate_seconds: generateSeconds, judge_seconds: judgeSeconds, train_seconds: trainSeconds,
    };
  } catch (e) {
    if (e instanceof TrainConfigError) throw new IterateConfigError(`round ${n}: ${e.message}`);
    throw e;
  } finally {
    disposePolicy();
  }
}
