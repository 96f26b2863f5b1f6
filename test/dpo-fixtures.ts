// The DPO fixtures shared by logps.test.ts and eval.test.ts: test/fixtures/dpo/{pairs.jsonl, expected.json, gpt2-ref/},
// made by scripts/fixtures/make_dpo_fixtures.py, and the fixture pairs as data/ tokenizes and collates them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collatePreferenceBatch, type PreferenceBatch, type TokenizedExample } from '../src/data/index.js';
import { MODEL_FIXTURES } from './model-fixtures.js';

export const DPO_FIXTURES = join(MODEL_FIXTURES, '..', 'dpo');

export interface SideLogps {
  chosen: number[];
  rejected: number[];
  chosen_length: number[];
  rejected_length: number[];
  chosen_tokens: number[][];
  rejected_tokens: number[][];
  chosen_logit_sums: number[];
  rejected_logit_sums: number[];
  mean_chosen_logits: number;
  mean_rejected_logits: number;
}
export interface LossRecord { losses: number[]; chosen_rewards: number[]; rejected_rewards: number[] }
export interface DpoExpected {
  max_length: number;
  gpt2: { policy: SideLogps; reference: SideLogps };
  llama_qwen2: { policy: SideLogps; reference: SideLogps };
  loss_options: Record<string, number>;
  losses: Record<string, LossRecord>;
  eval_options: { beta: number; loss_type: string; label_smoothing: number };
  eval: { metrics: Record<string, number>; per_example: Record<string, number>[] };
}
export interface PairIds { prompt_input_ids: number[]; chosen_input_ids: number[]; rejected_input_ids: number[] }

export const readDpoExpected = (): DpoExpected => JSON.parse(readFileSync(join(DPO_FIXTURES, 'expected.json'), 'utf8'));
export const readPairs = (): PairIds[] =>
  readFileSync(join(DPO_FIXTURES, 'pairs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as PairIds);

/** The fixture pairs as data/ tokenizes pre-tokenized records (ids used as given), in input order. */
export function fixtureExamples(pairs: PairIds[] = readPairs()): TokenizedExample[] {
  return pairs.map((p, index) => ({ index, source: `pairs.jsonl:${index + 1}`, promptIds: p.prompt_input_ids, chosenIds: p.chosen_input_ids, rejectedIds: p.rejected_input_ids, promptMismatch: false }));
}

/** One [chosen; rejected] batch of the given pairs, right-padded with id 0. */
export function collatePairs(pairs: PairIds[]): PreferenceBatch {
  return collatePreferenceBatch(fixtureExamples(pairs), { padTokenId: 0 });
}
