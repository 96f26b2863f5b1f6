// Preference pairs from the base model's own samples, as in the DPO paper's sentiment experiment: two completions
// per training prompt, the one with the higher AFINN reward is chosen, ties are dropped. Written pre-tokenized (so
// the trainer scores exactly the sampled tokens) with the texts and rewards beside them, plus the SFT data (the
// chosen completions). Not here: sampling (sampling.ts) or training (run.ts calls dpo/trainer).
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { promptIds, type Sample } from './sampling.js';

export interface DemoPair {
  prompt: string;
  chosen: string;
  rejected: string;
  chosen_reward: number;
  rejected_reward: number;
  prompt_input_ids: number[];
  chosen_input_ids: number[];
  rejected_input_ids: number[];
}

export interface PairStats {
  prompts: number;
  pairs: number;
  /** Prompts whose two completions had the same reward (dropped). */
  ties: number;
  meanChosenReward: number;
  meanRejectedReward: number;
}

/** One pair per prompt from its first two samples, the higher reward chosen; equal rewards give no pair. */
export function labelPairs(prompts: readonly string[], samples: readonly Sample[][], tokenizer: Tokenizer): { pairs: DemoPair[]; stats: PairStats } {
  const pairs: DemoPair[] = [];
  prompts.forEach((prompt, p) => {
    const [a, b] = samples[p];
    if (a === undefined || b === undefined) throw new Error(`labelPairs: prompt ${p} has ${samples[p].length} sample(s); two are needed`);
    if (a.reward === b.reward) return;
    pairs.push(a.reward > b.reward ? demoPair(tokenizer, prompt, a, b) : demoPair(tokenizer, prompt, b, a));
  });
  return { pairs, stats: pairStats(prompts.length, pairs) };
}

/** A pair of two samples of one prompt, on the sampled ids themselves. */
export function demoPair(tokenizer: Tokenizer, prompt: string, chosen: Sample, rejected: Sample): DemoPair {
  return {
    prompt, chosen: chosen.text, rejected: rejected.text, chosen_reward: chosen.reward, rejected_reward: rejected.reward,
    prompt_input_ids: promptIds(tokenizer, prompt), chosen_input_ids: chosen.ids, rejected_input_ids: rejected.ids,
  };
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? NaN : xs.reduce((s, x) => s + x, 0) / xs.length);

/** The statistics of pairs built from one comparison per prompt (the prompts without a pair were ties). */
export function pairStats(prompts: number, pairs: readonly DemoPair[]): PairStats {
  return {
    prompts, pairs: pairs.length, ties: prompts - pairs.length,
    meanChosenReward: mean(pairs.map((q) => q.chosen_reward)), meanRejectedReward: mean(pairs.map((q) => q.rejected_reward)),
  };
}

export const jsonl = (rows: readonly object[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

export const PAIRS_FILE = 'pairs.jsonl';
export const SFT_FILE = 'sft_chosen.jsonl';

/**
 * Writes DIR/pairs.jsonl (TRL's pre-tokenized preference shape, with the texts and rewards as extra columns) and
 * DIR/sft_chosen.jsonl (prompt_input_ids + completion_input_ids of the chosen completions), each atomically.
 */
export function writePairFiles(dir: string, pairs: readonly DemoPair[]): { pairs: string; sft: string } {
  if (pairs.length === 0) throw new Error('writePairFiles: every pair was a tie; sample more prompts (--train-prompts)');
  const paths = { pairs: join(dir, PAIRS_FILE), sft: join(dir, SFT_FILE) };
  writeFileAtomic(paths.pairs, jsonl(pairs));
  writeFileAtomic(paths.sft, jsonl(pairs.map((q) => ({ prompt: q.prompt, completion: q.chosen, prompt_input_ids: q.prompt_input_ids, completion_input_ids: q.chosen_input_ids }))));
  return paths;
}
