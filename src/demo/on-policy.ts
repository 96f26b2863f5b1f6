// The demo's on-policy methods beside offline DPO, built from the library's src/online/. Online DPO (OAIF, oaif.ts)
// trains from the base with the AFINN reward as its judge, on the training prompts, with as many judge labels as the
// offline pairs spent. RSO (rso.ts) draws N base candidates per training prompt, accepts two with the statistical
// rejection sampler and ranks them into one pair. Not here: the stage order (run.ts) or the evaluation (evaluate.ts).
//
// A judge label is one pairwise judgement: the judge, shown two completions of one prompt, says which is better or
// that they tie (the AFINN judge scores both; equal scores tie). A tie costs a label but gives no pair. The offline
// pairs spend one label per training prompt; online DPO spends one per prompt of each step, and its budget is one pass
// over the training prompts; RSO ranks its two accepted samples per prompt with one label (its sampler also reads the
// reward of every candidate: N reward evaluations per prompt, counted in its stats).
import type { TrainConfig } from '../dpo/trainer-config.js';
import type { Rng } from '../engine/random.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { rewardFunctionJudge } from '../online/judges.js';
import { trainOnline, type OnlineHooks } from '../online/oaif.js';
import { loadPrompts } from '../online/prompts.js';
import { rsoPairs, rsoSample } from '../online/rso.js';
import { demoPair, jsonl, pairStats, type DemoPair, type PairStats } from './pairs.js';
import { completionReward } from './reward.js';
import { promptIds, type Sample } from './sampling.js';

export const ONLINE_PROMPTS_FILE = 'online_prompts.jsonl';
export const RSO_PAIRS_FILE = 'rso_pairs.jsonl';
/** Every RSO candidate with its reward and whether the sampler accepted it (samples/ of the demo folder). */
export const RSO_CANDIDATES_FILE = 'rso_candidates.jsonl';
/** Samples RSO accepts per prompt: two, ranked into one pair, so that RSO spends one label per prompt as offline. */
export const RSO_ACCEPTED_PER_PROMPT = 2;

/** The labels a method's training data spent and the pairs it kept. */
export interface LabelBudget {
  labels: number;
  pairs: number;
}

const sameIds = (a: readonly number[] | undefined, b: readonly number[]) => a !== undefined && a.length === b.length && a.every((id, i) => id === b[i]);

/**
 * Writes the prompts as a prompt-only file ({"prompt": opening} per line, TRL's shape) for trainOnline, and checks that
 * src/online's loadPrompts tokenizes every one exactly as the demo's promptIds (BOS, then the opening's words), so
 * online DPO starts its samples from the same ids as every other sampler of the demo.
 */
export async function writeOnlinePrompts(path: string, prompts: readonly string[], tokenizer: Tokenizer): Promise<void> {
  writeFileAtomic(path, jsonl(prompts.map((prompt) => ({ prompt }))));
  const loaded = await loadPrompts(path, tokenizer, { maxPromptLength: null });
  const bad = prompts.findIndex((p, i) => !sameIds(loaded[i]?.ids, promptIds(tokenizer, p)));
  if (loaded.length !== prompts.length || bad >= 0) {
    throw new Error(`${path}: loadPrompts gave ${loaded.length} prompts for ${prompts.length}` +
      (bad >= 0 ? `; prompt ${bad} ("${prompts[bad]}") tokenizes to [${loaded[bad]?.ids.join(',')}], the demo's ids are [${promptIds(tokenizer, prompts[bad]).join(',')}]` : ''));
  }
}

/** What the online DPO stage records. */
export interface OnlineRun extends LabelBudget {
  steps: number;
  ties: number;
  skipped: number;
  last_metrics: Record<string, number> | null;
  seconds: { generate: number; judge: number; train: number };
}

export interface OnlineDpoSetup {
  /** The offline runs' trainer options: model = reference = the base, output folder, batch size, schedule, seed. */
  common: Partial<TrainConfig>;
  /** The prompt-only file (writeOnlinePrompts) and how many prompts it holds. */
  promptsPath: string;
  prompts: number;
  beta: number;
  learningRate: number;
  maxNewTokens: number;
}

/**
 * Online DPO with the sigmoid loss at β: one pass over the prompt file, so each training prompt is judged once (two
 * samples at temperature 1 from the current policy, ≤ maxNewTokens); the judge is the AFINN reward.
 */
export async function trainOnlineDpo(s: OnlineDpoSetup, hooks: OnlineHooks): Promise<OnlineRun> {
  const judge = rewardFunctionJudge(completionReward, 'afinn');
  const r = await trainOnline(
    { ...s.common, task: 'dpo', lossType: ['sigmoid'], beta: s.beta, learningRate: s.learningRate, dataset: s.promptsPath, numTrainEpochs: 1, maxSteps: -1, precomputeRefLogProbs: false },
    { maxNewTokens: s.maxNewTokens, temperature: 1 }, judge, hooks,
  );
  const labels = r.labelled + r.ties + r.skipped;
  if (labels !== s.prompts) throw new Error(`online DPO judged ${labels} pairs in ${r.steps} steps; its budget is one label per training prompt, ${s.prompts}`);
  return { labels, pairs: r.labelled, ties: r.ties, skipped: r.skipped, steps: r.steps, last_metrics: r.lastMetrics, seconds: r.times };
}

/** What the RSO pairs stage records: PairStats over its one comparison per prompt, and the sampler's side. */
export interface RsoStats extends PairStats, LabelBudget {
  /** β_rso of the sampler. */
  betaRso: number;
  /** Candidates drawn and scored: rsoCandidates per prompt. */
  candidates: number;
  meanCandidateReward: number;
  meanAcceptedReward: number;
}

/**
 * RSO's pairs: for each prompt, rsoSample accepts two of its candidates (approximate draws from
 * π_base·exp(r/β_rso)), and rsoPairs ranks them by reward into one pair (a tie gives none). Returns the pairs, the
 * accepted indices per prompt (in acceptance order) and the statistics.
 */
export function rsoDemoPairs(prompts: readonly string[], candidates: readonly Sample[][], betaRso: number, rng: Rng, tokenizer: Tokenizer): { pairs: DemoPair[]; accepted: number[][]; stats: RsoStats } {
  const pairs: DemoPair[] = [];
  let labels = 0;
  const accepted = prompts.map((prompt, p) => {
    const pool = candidates[p];
    const chosenIndices = rsoSample(pool, RSO_ACCEPTED_PER_PROMPT, betaRso, rng);
    labels += Math.floor(chosenIndices.length / 2); // first-round pairing: one judgement per two accepted samples
    for (const pair of rsoPairs(chosenIndices.map((index) => ({ index, reward: pool[index].reward })), 'first-round')) {
      pairs.push(demoPair(tokenizer, prompt, pool[pair.chosenIndex], pool[pair.rejectedIndex]));
    }
    return chosenIndices;
  });
  const mean = (xs: readonly number[]) => (xs.length === 0 ? NaN : xs.reduce((s, x) => s + x, 0) / xs.length);
  const base = pairStats(prompts.length, pairs);
  return {
    pairs,
    accepted,
    stats: {
      ...base, ties: labels - pairs.length, labels, betaRso, candidates: candidates.reduce((k, c) => k + c.length, 0),
      meanCandidateReward: mean(candidates.flat().map((s) => s.reward)),
      meanAcceptedReward: mean(accepted.flatMap((indices, p) => indices.map((i) => candidates[p][i].reward))),
    },
  };
}

/** samples/rso_candidates.jsonl: every candidate with its reward and its acceptance rank (null: rejected). */
export function rsoCandidateRows(prompts: readonly string[], candidates: readonly Sample[][], accepted: readonly number[][]): string {
  return jsonl(candidates.flatMap((pool, p) => pool.map((s, i) => {
    const rank = accepted[p].indexOf(i);
    return { prompt_index: p, prompt: prompts[p], completion: s.text, reward: s.reward, accepted: rank >= 0 ? rank : null };
  })));
}
