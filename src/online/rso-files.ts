// The files of a `dpo rso` run: OUT/candidates.jsonl (every candidate, its reward, whether it was accepted),
// OUT/pairs.jsonl (pre-tokenized pairs on the sampled ids, with texts and rewards for humans) and OUT/rso_summary.json
// (counts, rates, mean rewards, judge calls, the options and the files' sha256), all written atomically, the summary
// last; and reading an earlier run's candidates back when its options match. Not here: sampling, judging, selection.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import type { ChatMessage } from '../io/chat-template.js';
import type { Judge } from './judges.js';
import type { PromptItem } from './prompts.js';
import type { RsoPair } from './rso.js';

export const RSO_FILES = { candidates: 'candidates.jsonl', pairs: 'pairs.jsonl', summary: 'rso_summary.json' } as const;

export interface RsoPaths { candidates: string; pairs: string; summary: string }

/** The three files' paths in the output folder. */
export function rsoPaths(dir: string): RsoPaths {
  return { candidates: join(dir, RSO_FILES.candidates), pairs: join(dir, RSO_FILES.pairs), summary: join(dir, RSO_FILES.summary) };
}

/** One candidate of one prompt, as candidates.jsonl holds it. */
export interface Candidate {
  ids: number[];
  text: string;
  logp: number;
  containsEos: boolean;
  /** null when the judge skipped it (it is then never accepted). */
  reward: number | null;
  /** The earlier candidate with the same ids (it shares its reward and is never accepted itself), else null. */
  duplicateOf: number | null;
  /** Pairwise judges: the baseline y_b that every other candidate is compared with (its reward is 0 by eq. 7). */
  anchor: boolean;
}

export interface JudgeCounts { scoringCalls: number; scoringSkipped: number; labellingCalls: number; labellingSkipped: number }

export interface RsoSummary {
  prompts: number;
  candidates_per_prompt: number;
  candidates: number;
  distinct_candidates: number;
  scored_candidates: number;
  accepted: number;
  num_samples: number;
  /** accepted / candidates (k/N unless a prompt has fewer than k distinct scored candidates). */
  acceptance_rate: number;
  /**
   * Theorem 1's rate for one proposal, E_{y∼π_sft}[exp((r(y) − r_max)/β)], estimated on each prompt's distinct scored
   * candidates and averaged over prompts: near 1/N the sampler is close to best-of-N, near 1 close to uniform.
   */
  expected_acceptance_rate: number | null;
  pairs: number;
  prompts_without_pairs: number;
  mean_reward_candidates: number | null;
  mean_reward_accepted: number | null;
  judge: string;
  judge_kind: 'pointwise' | 'pairwise-anchor';
  judge_calls: number;
  skipped_judge_calls: number;
  reused: 'none' | 'candidates' | 'all';
  sampling: Record<string, unknown>;
  selection: Record<string, unknown>;
  candidates_sha256: string;
  pairs_sha256: string;
  judge_counts: { scoring_calls: number; scoring_skipped: number; labelling_calls: number; labelling_skipped: number };
  seconds: { sampling: number; judging: number; selection: number };
}
export interface Selected {
  /** Per prompt: the accepted candidates in acceptance order. */
  accepted: number[][];
  pairs: RsoPair[][];
}
export const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Writes one JSON object per line atomically, streamed in ~1 MiB chunks; returns the file's sha256. */
function writeJsonlAtomic(path: string, rows: readonly object[]): string {
  const hash = createHash('sha256');
  writeFileAtomic(path, (write) => {
    let chunk = '';
    const flush = () => {
      const bytes = Buffer.from(chunk, 'utf8');
      hash.update(bytes);
      write(bytes);
      chunk = '';
    };
    for (const row of rows) {
      chunk += JSON.stringify(row) + '\n';
      if (chunk.length >= 1 << 20) flush();
    }
    flush();
  });
  return hash.digest('hex');
}
export const mean = (xs: readonly number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
export interface WriteContext {
  /** The options the summary reports. */
  numCandidates: number;
  numSamples: number;
  beta: number;
  sampling: Record<string, unknown>;
  selection: Record<string, unknown>;
  seconds: RsoSummary['seconds'];
  reused: RsoSummary['reused'];
  judge: Judge;
}

/** Writes candidates.jsonl, pairs.jsonl and then rso_summary.json, each atomically; returns the summary. */
export function writeRsoFiles(paths: RsoPaths, prompts: readonly PromptItem[], candidates: Candidate[][], s: Selected, counts: JudgeCounts, w: WriteContext): RsoSummary {
  const promptValue = (p: PromptItem): string | ChatMessage[] => p.messages ?? p.text;
  const candidateRows = candidates.flatMap((group, p) => group.map((c, k) => {
    const order = s.accepted[p].indexOf(k);
    return {
      prompt_index: prompts[p].index, candidate: k, completion: c.text, completion_input_ids: c.ids, contains_eos: c.containsEos, logp: c.logp,
      reward: c.reward, accepted: order >= 0, accept_order: order >= 0 ? order : null, duplicate_of: c.duplicateOf, anchor: c.anchor,
    };
  }));
  const pairRows = s.pairs.flatMap((pairs, p) => pairs.map(({ chosenIndex, rejectedIndex }) => {
    const [chosen, rejected] = [candidates[p][chosenIndex], candidates[p][rejectedIndex]];
    return {
      prompt_index: prompts[p].index, prompt: promptValue(prompts[p]), chosen: chosen.text, rejected: rejected.text,
      prompt_input_ids: prompts[p].ids, chosen_input_ids: chosen.ids, rejected_input_ids: rejected.ids,
      chosen_reward: chosen.reward, rejected_reward: rejected.reward, chosen_candidate: chosenIndex, rejected_candidate: rejectedIndex,
    };
  }));
  mkdirSync(dirname(paths.candidates), { recursive: true });
  const candidatesSha = writeJsonlAtomic(paths.candidates, candidateRows);
  const pairsSha = writeJsonlAtomic(paths.pairs, pairRows);

  const rewards = candidateRows.flatMap((r) => (r.reward === null ? [] : [r.reward]));
  const acceptedRewards = candidateRows.flatMap((r) => (r.accepted && r.reward !== null ? [r.reward] : []));
  const perPromptRates = candidates.flatMap((group) => {
    const pool = group.flatMap((c) => (c.duplicateOf === null && c.reward !== null ? [c.reward] : []));
    const rMax = Math.max(...pool);
    return pool.length === 0 ? [] : [mean(pool.map((r) => (r === rMax ? 1 : Math.exp((r - rMax) / w.beta))))!];
  });
  const summary: RsoSummary = {
    prompts: prompts.length, candidates_per_prompt: w.numCandidates, candidates: candidateRows.length,
    distinct_candidates: candidateRows.filter((r) => r.duplicate_of === null).length,
    scored_candidates: rewards.length, accepted: acceptedRewards.length, num_samples: w.numSamples,
    acceptance_rate: acceptedRewards.length / candidateRows.length, expected_acceptance_rate: mean(perPromptRates), pairs: pairRows.length,
    prompts_without_pairs: s.pairs.filter((p) => p.length === 0).length,
    mean_reward_candidates: mean(rewards), mean_reward_accepted: mean(acceptedRewards),
    judge: w.judge.name, judge_kind: w.judge.score === undefined ? 'pairwise-anchor' : 'pointwise',
    judge_calls: counts.scoringCalls + counts.labellingCalls, skipped_judge_calls: counts.scoringSkipped + counts.labellingSkipped,
    reused: w.reused, sampling: w.sampling, selection: w.selection,
    candidates_sha256: candidatesSha, pairs_sha256: pairsSha,
    judge_counts: { scoring_calls: counts.scoringCalls, scoring_skipped: counts.scoringSkipped, labelling_calls: counts.labellingCalls, labelling_skipped: counts.labellingSkipped },
    seconds: w.seconds,
  };
  writeFileAtomic(paths.summary, JSON.stringify(summary, null, 2) + '\n');
  return summary;
}

export interface Previous {
  summary: RsoSummary;
  candidates: Candidate[][];
  counts: JudgeCounts;
  /** The selection options match too and pairs.jsonl is the one the summary describes. */
  pairsReusable: boolean;
}

/**
 * The candidates of an earlier run in the same folder, when its summary records the same sampling options, judge and
 * prompts, and candidates.jsonl is the file it describes (all three files are written atomically, the summary last).
 */
export function readPrevious(paths: RsoPaths, sampling: object, selection: object, expectedRows: number, log: (line: string) => void): Previous | null {
  if (!existsSync(paths.summary) || !existsSync(paths.candidates)) return null;
  let summary: RsoSummary;
  try {
    summary = JSON.parse(readFileSync(paths.summary, 'utf8')) as RsoSummary;
  } catch {
    log(`rso: ${paths.summary} is unreadable; sampling again`);
    return null;
  }
  if (JSON.stringify(summary.sampling) !== JSON.stringify(sampling)) {
    log(`rso: ${paths.candidates} was made with other sampling options, prompts or judge; sampling again`);
    return null;
  }
  const bytes = readFileSync(paths.candidates);
  if (sha256(bytes) !== summary.candidates_sha256) {
    log(`rso: ${paths.candidates} differs from the one ${paths.summary} describes; sampling again`);
    return null;
  }
  type Row = { prompt_index: number; candidate: number; completion: string; completion_input_ids: number[]; contains_eos: boolean; logp: number; reward: number | null; duplicate_of: number | null; anchor: boolean };
  const rows = bytes.toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Row);
  if (rows.length !== expectedRows) {
    log(`rso: ${paths.candidates} has ${rows.length} rows, expected ${expectedRows}; sampling again`);
    return null;
  }
  const perPrompt = Number(summary.candidates_per_prompt);
  const candidates: Candidate[][] = [];
  rows.forEach((r, i) => {
    if (i % perPrompt === 0) candidates.push([]);
    candidates[candidates.length - 1].push({ ids: r.completion_input_ids, text: r.completion, logp: r.logp, containsEos: r.contains_eos, reward: r.reward, duplicateOf: r.duplicate_of, anchor: r.anchor });
  });
  const c = summary.judge_counts;
  const pairsReusable = JSON.stringify(summary.selection) === JSON.stringify(selection) && existsSync(paths.pairs) && sha256(readFileSync(paths.pairs)) === summary.pairs_sha256;
  return { summary, candidates, counts: { scoringCalls: c.scoring_calls, scoringSkipped: c.scoring_skipped, labellingCalls: c.labelling_calls, labellingSkipped: c.labelling_skipped }, pairsReusable };
}