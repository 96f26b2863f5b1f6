// `dpo rso` as one library call: Statistical Rejection Sampling Optimization (Liu et al. 2023, arXiv 2309.06657).
// Per prompt: draw N candidates from π_sft, reward each with the judge, keep up to k of them by statistical rejection
// sampling towards π* ∝ π_sft·exp(r/β), rank the kept ones into pairs; write OUT/candidates.jsonl, OUT/pairs.jsonl and
// OUT/rso_summary.json atomically; then train π_θ (initialised from π_sft, reference π_sft) on the pairs with the
// usual trainer, into OUT itself. Not here: the sampler and ranking math (rso.ts), the judges, the training loop.
import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultPadTokenId } from '../data/index.js';
import { Rng } from '../engine/random.js';
import { generationDefaults, loadPretrained } from '../io/pretrained.js';
import { loadTokenizer, requireTokenizer } from '../io/tokenizer.js';
import { METRICS_FILE } from '../dpo/run-files.js';
import { TrainConfigError, resolveTrainConfig, type TrainConfig } from '../dpo/trainer-config.js';
import { train, type TrainHooks, type TrainResult } from '../dpo/trainer.js';
import type { Judge, Preference } from './judges.js';
import { loadPrompts, type PromptItem } from './prompts.js';
import { readPrevious, rsoPaths, sha256, writeRsoFiles, type Candidate, type JudgeCounts, type RsoPaths, type RsoSummary, type Selected } from './rso-files.js';
import { rsoPairs, rsoSample, type RsoPair, type RsoPairMode } from './rso.js';
import { samplePolicy } from './sample.js';

export interface RsoOptions {
  numCandidates: number; // candidates drawn from π_sft per prompt (paper §5: 64)
  numSamples: number; // accepted per prompt at most (paper §5: 8)
  beta: number; // the paper's β of π* ∝ π_sft·exp(r/β): the sampler's temperature (0.5, §5.2); the loss's γ is TrainConfig.beta
  pairMode: RsoPairMode; // 'first-round' (n/2 pairs, the paper's best by AutoSxS, Table 2) or 'tournament' (n − 1)
  temperature: number; // π_sft sampling temperature (paper §5: 0.7)
  topK: number; // top-k filter (paper §5: 40; 0 keeps all)
  topP: number; // nucleus filter (1 keeps all)
  maxNewTokens: number; // tokens per candidate at most (also bounded by the model's context)
  generationBatchSize: number; // rows per generate() call
  maxPrompts: number | null; // read only the first prompts; null reads all
  maxPromptLength: number | null; // keep the last tokens of longer prompts (the trainer's max_prompt_length)
  seed: number; // seeds sampling, the anchor choice and the rejection sampler (and the trainer's shuffle)
}

export const defaultRsoOptions: Readonly<RsoOptions> = Object.freeze({
  numCandidates: 64, numSamples: 8, beta: 0.5, pairMode: 'first-round', temperature: 0.7, topK: 40, topP: 1,
  maxNewTokens: 64, generationBatchSize: 16, maxPrompts: null, maxPromptLength: 512, seed: 42,
});

/** The losses RSO trains with: 'sigmoid' is the paper's sigmoid-norm (DPO), 'hinge' its hinge-norm (eq. 10). */
export const RSO_LOSS_TYPES = ['sigmoid', 'hinge'] as const;
/** Trainer defaults for RSO where they differ from DPOConfig's: the paper's γ = 0.05 is the loss β (§5). */
export const rsoTrainDefaults: Partial<TrainConfig> = { lossType: ['sigmoid'], beta: 0.05 };
/** A pairwise judge's P(y ≻ anchor) is clipped to [ε, 1 − ε] before the logit (eq. 7), so rewards stay within ±4.6. */
export const ANCHOR_PROBABILITY_CLIP = 0.01;

export { RSO_FILES, type RsoSummary } from './rso-files.js';

export class RsoConfigError extends Error {
  override name = 'RsoConfigError';
}

export interface RsoRunInput {
  /** The SFT policy's model directory (with a tokenizer): the sampler, the initial policy and the reference. */
  model: string;
  /** Prompt-only data (prompts.ts). */
  dataset: string;
  outputDir: string;
  judge: Judge;
  options?: Partial<RsoOptions>;
  /** Training options over rsoTrainDefaults; null writes the pairs only. */
  train: Partial<TrainConfig> | null;
}

export interface RsoRunResult {
  summary: RsoSummary;
  files: RsoPaths;
  /** null with train: null. */
  train: TrainResult | null;
}

export function resolveRsoOptions(input: Partial<RsoOptions> = {}): RsoOptions {
  const o: RsoOptions = { ...defaultRsoOptions };
  for (const [key, value] of Object.entries(input)) {
    if (!Object.hasOwn(defaultRsoOptions, key)) throw new RsoConfigError(`unknown RSO option '${key}'; the options are ${Object.keys(defaultRsoOptions).join(', ')}`);
    if (value !== undefined) Object.assign(o, { [key]: value });
  }
  const check = (ok: boolean, what: string, expected: string, value: unknown) => {
    if (!ok) throw new RsoConfigError(`${what} must be ${expected}, got ${JSON.stringify(value)}`);
  };
  const posInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
  check(posInt(o.numCandidates), '--rso-num-candidates', 'a positive integer', o.numCandidates);
  check(posInt(o.numSamples), '--rso-num-samples', 'a positive integer', o.numSamples);
  check(o.numSamples <= o.numCandidates, '--rso-num-samples', `at most --rso-num-candidates (${o.numCandidates})`, o.numSamples);
  check(typeof o.beta === 'number' && o.beta >= 0, '--rso-beta', 'a number ≥ 0 (0: best-of-N; Infinity: uniform)', o.beta);
  check(o.pairMode === 'first-round' || o.pairMode === 'tournament', '--rso-pair-mode', "'first-round' or 'tournament'", o.pairMode);
  check(typeof o.temperature === 'number' && o.temperature > 0, '--temperature', 'a number > 0 (RSO samples; 0 would be greedy)', o.temperature);
  check(typeof o.topK === 'number' && Number.isSafeInteger(o.topK) && o.topK >= 0, '--top-k', 'an integer ≥ 0', o.topK);
  check(typeof o.topP === 'number' && o.topP > 0 && o.topP <= 1, '--top-p', 'in (0, 1]', o.topP);
  check(posInt(o.maxNewTokens), '--max-new-tokens', 'a positive integer', o.maxNewTokens);
  check(posInt(o.generationBatchSize), '--generation-batch-size', 'a positive integer', o.generationBatchSize);
  check(o.maxPrompts === null || posInt(o.maxPrompts), '--max-prompts', 'a positive integer or null', o.maxPrompts);
  check(o.maxPromptLength === null || posInt(o.maxPromptLength), '--max-prompt-length', 'a positive integer or null', o.maxPromptLength);
  check(typeof o.seed === 'number' && Number.isSafeInteger(o.seed) && o.seed >= 0, '--seed', 'an integer ≥ 0', o.seed);
  return o;
}

// ------------------------------------------------------------------------------------------------ pure pieces
/**
 * P(candidate ≻ other) from one pairwise verdict: a tie is 1/2; a win with confidence c (Preference.confidence: the
 * probability that the winner is better, in [0.5, 1]; absent: 1) is c. null when the judge skipped the pair.
 */
export function preferenceProbability(p: Preference, candidateFirst: boolean): number | null {
  if (p.status === 'skipped') return null;
  if (p.winner === null) return 0.5;
  const pWinner = Math.min(1, Math.max(0.5, p.confidence ?? 1));
  return (p.winner === 0) === candidateFirst ? pWinner : 1 - pWinner;
}

/** Eq. 7: r(x, y) = logit(ρ(x, y, y_b)), the anchor y_b having reward 0; P is clipped by ANCHOR_PROBABILITY_CLIP. */
export function anchorReward(probability: number): number {
  const p = Math.min(1 - ANCHOR_PROBABILITY_CLIP, Math.max(ANCHOR_PROBABILITY_CLIP, probability));
  return Math.log(p / (1 - p));
}

/**
 * Pairs labelled by the judge itself (the paper labels rso-sample-rank pairs with ρψ, §3.1), in rsoPairs' rounds:
 * consecutive matches, and for 'tournament' the winners meet again until one is left. A tie or a skipped verdict
 * gives no pair and the first of the two goes on; an odd entrant gets a bye.
 */
export async function judgedPairs(order: readonly number[], mode: RsoPairMode, compare: (a: number, b: number) => Promise<0 | 1 | null>): Promise<RsoPair[]> {
  const pairs: RsoPair[] = [];
  let entrants = [...order];
  do {
    const matches: [number, number][] = [];
    for (let k = 0; k + 1 < entrants.length; k += 2) matches.push([entrants[k], entrants[k + 1]]);
    const winners = await Promise.all(matches.map(([a, b]) => compare(a, b)));
    const next: number[] = [];
    matches.forEach(([a, b], m) => {
      if (winners[m] !== null) pairs.push(winners[m] === 0 ? { chosenIndex: a, rejectedIndex: b } : { chosenIndex: b, rejectedIndex: a });
      next.push(winners[m] === 1 ? b : a);
    });
    if (entrants.length % 2 === 1) next.push(entrants[entrants.length - 1]);
    entrants = next;
  } while (mode === 'tournament' && entrants.length > 1);
  return pairs;
}

// ------------------------------------------------------------------------------------------------ the run
export async function runRso(input: RsoRunInput, hooks: TrainHooks = {}): Promise<RsoRunResult> {
  const o = resolveRsoOptions(input.options);
  const log = hooks.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const paths = rsoPaths(input.outputDir);
  const trainInput = input.train === null ? null : rsoTrainInput(input, o, paths.pairs);

  // ---- prompts, and what the candidates depend on
  const tokenizer = loadTokenizer(input.model) ?? requireTokenizer(input.model);
  const prompts = await loadPrompts(input.dataset, tokenizer, { maxPromptLength: o.maxPromptLength, limit: o.maxPrompts });
  const pairwise = input.judge.score === undefined;
  const sampling = {
    model: resolve(input.model), dataset: resolve(input.dataset), prompts_sha256: sha256(JSON.stringify(prompts.map((p) => [p.text, p.ids]))),
    num_candidates: o.numCandidates, temperature: o.temperature, top_k: o.topK, top_p: o.topP, max_new_tokens: o.maxNewTokens,
    generation_batch_size: o.generationBatchSize, max_prompt_length: o.maxPromptLength, max_prompts: o.maxPrompts, seed: o.seed,
    judge: input.judge.name, judge_kind: pairwise ? 'pairwise-anchor' : 'pointwise',
  };
  const selection = { rso_beta: o.beta, num_samples: o.numSamples, pair_mode: o.pairMode };
  const previous = readPrevious(paths, sampling, selection, prompts.length * o.numCandidates, log);
  const seconds = { sampling: 0, judging: 0, selection: 0 };

  let summary: RsoSummary;
  if (previous?.pairsReusable) {
    log(`rso: reusing ${paths.candidates} and ${paths.pairs} (same options)`);
    summary = { ...previous.summary, reused: 'all' };
  } else {
    let candidates: Candidate[][];
    let counts: JudgeCounts;
    if (previous) {
      log(`rso: reusing ${paths.candidates} (same sampling options and judge); redoing the rejection sampling and pairs`);
      candidates = previous.candidates;
      counts = { ...previous.counts, labellingCalls: 0, labellingSkipped: 0 };
    } else {
      let t = performance.now();
      candidates = sampleCandidates(input.model, prompts, o, log);
      seconds.sampling = (performance.now() - t) / 1000;
      t = performance.now();
      counts = pairwise ? await scoreAgainstAnchor(input.judge, prompts, candidates, new Rng(o.seed + 1)) : await scorePointwise(input.judge, prompts, candidates);
      seconds.judging = (performance.now() - t) / 1000;
      log(`rso: judged ${counts.scoringCalls} candidates with '${input.judge.name}'${counts.scoringSkipped > 0 ? ` (${counts.scoringSkipped} skipped)` : ''}`);
    }
    const t = performance.now();
    const selected = await selectAndPair(input.judge, prompts, candidates, o, counts);
    seconds.selection = (performance.now() - t) / 1000;
    summary = writeRsoFiles(paths, prompts, candidates, selected, counts, {
      sampling, selection, seconds, reused: previous ? 'candidates' : 'none', judge: input.judge, numCandidates: o.numCandidates, numSamples: o.numSamples, beta: o.beta,
    });
  }
  log(`rso: ${summary.accepted} of ${summary.candidates} candidates accepted (${(100 * summary.acceptance_rate).toFixed(1)}%; ` +
    `Theorem 1 rate per proposal ${fmt4(summary.expected_acceptance_rate)}), ${summary.pairs} pairs; ` +
    `mean reward ${fmt4(summary.mean_reward_candidates)} (candidates) → ${fmt4(summary.mean_reward_accepted)} (accepted)`);

  if (trainInput === null) return { summary, files: paths, train: null };
  if (summary.pairs === 0) {
    throw new Error(`rso: no preference pairs in ${paths.pairs} (every match of accepted samples was a tie or skipped), so there is nothing to train on; ` +
      'raise --rso-num-samples or --rso-num-candidates, or check that the judge tells the candidates apart');
  }
  return { summary, files: paths, train: await train(trainInput, hooks) };
}

const fmt4 = (r: number | null) => (r === null ? 'n/a' : r.toFixed(4));

/** The trainer's input: RSO's defaults, the user's options, and the fixed parts (data, policy = reference = SFT). */
function rsoTrainInput(input: RsoRunInput, o: RsoOptions, pairsPath: string): Partial<TrainConfig> {
  const t: Partial<TrainConfig> = {
    ...rsoTrainDefaults, seed: o.seed, maxPromptLength: o.maxPromptLength, ...input.train,
    task: 'dpo', model: input.model, dataset: pairsPath, outputDir: input.outputDir, refModel: null,
  };
  const c = resolveTrainConfig(t); // option errors surface before any sampling
  if (c.lossType.length !== 1 || !(RSO_LOSS_TYPES as readonly string[]).includes(c.lossType[0])) {
    throw new TrainConfigError(`loss_type: RSO trains with one of ${RSO_LOSS_TYPES.join(', ')} (sigmoid-norm or hinge-norm), got ${c.lossType.join(',')}`);
  }
  const earlier = existsSync(input.outputDir) ? readdirSync(input.outputDir).filter((n) => n === METRICS_FILE || /^checkpoint-\d+$/.test(n)) : [];
  if (earlier.length > 0 && !c.overwriteOutputDir && c.resumeFromCheckpoint === null) {
    throw new TrainConfigError(`output_dir: ${input.outputDir} already holds a training run (${earlier.slice(0, 3).join(', ')}); pass --overwrite-output-dir to replace it, ` +
      '--resume-from-checkpoint latest to continue it (the candidates are reused when the options match), --skip-train, or another --output-dir');
  }
  return t;
}

// ------------------------------------------------------------------------------------------------ sampling and judging
function sampleCandidates(model: string, prompts: readonly PromptItem[], o: RsoOptions, log: (line: string) => void): Candidate[][] {
  const loaded = loadPretrained(model);
  try {
    const tokenizer = loaded.tokenizer ?? requireTokenizer(model);
    const defaults = generationDefaults(loaded);
    const longest = prompts.reduce((a, p) => (p.ids.length > a.ids.length ? p : a));
    const maxNewTokens = Math.min(o.maxNewTokens, loaded.model.maxPositions - longest.ids.length);
    if (maxNewTokens < 1) {
      throw new RsoConfigError(`prompt index ${longest.index} (${longest.source}) has ${longest.ids.length} tokens, leaving no room in the model's ${loaded.model.maxPositions} positions; lower --max-prompt-length`);
    }
    const rng = new Rng(o.seed);
    const out: Candidate[][] = [];
    const chunk = Math.max(1, Math.floor(o.generationBatchSize / o.numCandidates)); // prompts per samplePolicy call
    for (let start = 0; start < prompts.length; start += chunk) {
      const samples = samplePolicy(loaded.model, tokenizer, prompts.slice(start, start + chunk), o.numCandidates, {
        temperature: o.temperature, topK: o.topK, topP: o.topP, maxNewTokens, batchSize: o.generationBatchSize, rng,
        eosTokenIds: defaults.eosTokenIds === undefined ? [] : [defaults.eosTokenIds].flat(), padTokenId: defaults.padTokenId ?? defaultPadTokenId(tokenizer),
      });
      for (const group of samples) {
        const first = new Map<string, number>(); // ids → first candidate with them (Algorithm 1 keeps distinct responses)
        out.push(group.map((s, k) => {
          const key = s.ids.join(',');
          const duplicateOf = first.get(key) ?? null;
          if (duplicateOf === null) first.set(key, k);
          return { ids: s.ids, text: s.text, logp: s.logp, containsEos: s.containsEos, reward: null, duplicateOf, anchor: false };
        }));
      }
      log(`rso: sampled ${o.numCandidates} candidates for ${Math.min(prompts.length, start + chunk)} of ${prompts.length} prompts`);
    }
    return out;
  } finally {
    loaded.model.dispose();
  }
}

/** Copies each distinct candidate's reward to its duplicates. */
function shareRewards(group: Candidate[]): void {
  for (const c of group) if (c.duplicateOf !== null) c.reward = group[c.duplicateOf].reward;
}

async function scorePointwise(judge: Judge, prompts: readonly PromptItem[], candidates: Candidate[][]): Promise<JudgeCounts> {
  const score = judge.score!;
  let calls = 0;
  await Promise.all(candidates.flatMap((group, p) => group.map(async (c, k) => {
    if (c.duplicateOf !== null) return;
    calls++;
    let reward: number;
    try {
      reward = await score.call(judge, prompts[p].text, c.text);
    } catch (err) {
      throw new Error(`rso: judge '${judge.name}' failed on prompt index ${prompts[p].index} (${prompts[p].source}), candidate ${k}: ${(err as Error).message}`, { cause: err });
    }
    if (!Number.isFinite(reward)) throw new Error(`rso: judge '${judge.name}' gave reward ${reward} on prompt index ${prompts[p].index} (${prompts[p].source}), candidate ${k}; rewards must be finite numbers`);
    c.reward = reward;
  })));
  candidates.forEach(shareRewards);
  return { scoringCalls: calls, scoringSkipped: 0, labellingCalls: 0, labellingSkipped: 0 };
}

/**
 * Pairwise judges (prefer() only), as the paper derives a pointwise reward from its pairwise reward-ranking model
 * (§2, eq. 7 and footnote 3): one candidate per prompt, drawn at random, is the baseline y_b with reward 0, and every
 * other distinct candidate y gets r = logit(P(y ≻ y_b)). The two are shown in a random order (footnote 2).
 */
async function scoreAgainstAnchor(judge: Judge, prompts: readonly PromptItem[], candidates: Candidate[][], rng: Rng): Promise<JudgeCounts> {
  const counts: JudgeCounts = { scoringCalls: 0, scoringSkipped: 0, labellingCalls: 0, labellingSkipped: 0 };
  const calls: Promise<void>[] = [];
  candidates.forEach((group, p) => {
    const distinct = group.flatMap((c, k) => (c.duplicateOf === null ? [k] : []));
    const anchor = group[distinct[rng.int(distinct.length)]];
    anchor.anchor = true;
    anchor.reward = 0;
    for (const k of distinct) {
      if (group[k] === anchor) continue;
      const candidateFirst = rng.uniform() < 0.5;
      counts.scoringCalls++;
      calls.push((async () => {
        const [a, b] = candidateFirst ? [group[k].text, anchor.text] : [anchor.text, group[k].text];
        let verdict: Preference;
        try {
          verdict = await judge.prefer(prompts[p].text, a, b);
        } catch (err) {
          throw new Error(`rso: judge '${judge.name}' failed on prompt index ${prompts[p].index} (${prompts[p].source}), candidate ${k} against the anchor: ${(err as Error).message}`, { cause: err });
        }
        const probability = preferenceProbability(verdict, candidateFirst);
        if (probability === null) counts.scoringSkipped++;
        else group[k].reward = anchorReward(probability);
      })());
    }
  });
  await Promise.all(calls);
  candidates.forEach(shareRewards);
  return counts;
}

// ------------------------------------------------------------------------------------------------ selection
async function selectAndPair(judge: Judge, prompts: readonly PromptItem[], candidates: Candidate[][], o: RsoOptions, counts: JudgeCounts): Promise<Selected> {
  const rng = new Rng(o.seed + 2);
  const pairwise = judge.score === undefined;
  // Every draw first, prompt by prompt, so the stream does not depend on the order in which the judge answers.
  const plans = candidates.map((group) => {
    const pool = group.flatMap((c, k) => (c.duplicateOf === null && c.reward !== null ? [k] : []));
    const picks = rsoSample(pool.map((k) => ({ reward: group[k].reward! })), o.numSamples, o.beta, rng).map((i) => pool[i]);
    const flips = pairwise ? picks.slice(1).map(() => rng.uniform() < 0.5) : []; // the order of each of ≤ k − 1 matches
    return { picks, flips };
  });
  const pairs = await Promise.all(plans.map(async ({ picks, flips }, p) => {
    const group = candidates[p];
    if (!pairwise) return rsoPairs(picks.map((k) => ({ index: k, reward: group[k].reward! })), o.pairMode);
    let match = 0;
    return judgedPairs(picks, o.pairMode, async (a, b) => {
      const aFirst = flips[match++];
      counts.labellingCalls++;
      let verdict: Preference;
      try {
        verdict = await judge.prefer(prompts[p].text, group[aFirst ? a : b].text, group[aFirst ? b : a].text);
      } catch (err) {
        throw new Error(`rso: judge '${judge.name}' failed on prompt index ${prompts[p].index} (${prompts[p].source}), candidates ${a} and ${b}: ${(err as Error).message}`, { cause: err });
      }
      if (verdict.status === 'skipped') counts.labellingSkipped++;
      const pa = preferenceProbability(verdict, aFirst);
      return pa === null || pa === 0.5 ? null : pa > 0.5 ? 0 : 1;
    });
  }));
  return { accepted: plans.map((plan) => plan.picks), pairs };
}

