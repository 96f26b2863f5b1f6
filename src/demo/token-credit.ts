// Where DPO puts its credit: per-token implicit rewards β·(log π − log π_ref) of completions (Rafailov et al. 2024,
// "From r to Q*"), as token_rewards.jsonl rows for the report's heatmaps, and a check against the lexicon: the mean
// token reward of AFINN-positive words, AFINN-negative words and all other tokens, and their correlation with the
// AFINN word score. Pure functions; the log-probs come from sampling.ts.
import { tokenRewards } from '../dpo/logps.js';
import { meanAndSe } from './evaluate.js';
import { wordScore } from './reward.js';

/** One completion with its tokens as text and the log-probs of both models, aligned. */
export interface CreditedCompletion {
  label: string;
  tokens: string[];
  policyLogps: readonly number[];
  refLogps: readonly number[];
}

/** token_rewards.jsonl's row (report/index.ts's format). */
export interface TokenRewardRow {
  label: string;
  tokens: string[];
  rewards: number[];
}

export function tokenRewardRow(c: CreditedCompletion, beta: number): TokenRewardRow {
  if (c.tokens.length !== c.policyLogps.length) throw new RangeError(`tokenRewardRow: ${c.tokens.length} tokens but ${c.policyLogps.length} log-probs for "${c.label}"`);
  return { label: c.label, tokens: c.tokens, rewards: Array.from(tokenRewards(c.policyLogps, c.refLogps, beta)) };
}

export interface ClassCredit {
  mean: number;
  se: number;
  count: number;
}

export interface LexiconCredit {
  /** Tokens whose word has an AFINN score > 0 (e.g. "superb"), < 0 ("boring"), and every other token. */
  positive: ClassCredit;
  negative: ClassCredit;
  other: ClassCredit;
  /** Pearson correlation of token reward and the token's AFINN word score, over all tokens. */
  correlation: number;
}

function pearson(x: readonly number[], y: readonly number[]): number {
  const mx = x.reduce((s, v) => s + v, 0) / x.length;
  const my = y.reduce((s, v) => s + v, 0) / y.length;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? NaN : sxy / Math.sqrt(sxx * syy);
}

/** Splits every token reward by the AFINN score of its word (a word out of context: "not good" counts as positive). */
export function lexiconCredit(rows: readonly TokenRewardRow[]): LexiconCredit {
  const byClass: Record<'positive' | 'negative' | 'other', number[]> = { positive: [], negative: [], other: [] };
  const scores: number[] = [];
  const rewards: number[] = [];
  for (const row of rows) {
    row.tokens.forEach((token, i) => {
      const score = wordScore(token);
      byClass[score > 0 ? 'positive' : score < 0 ? 'negative' : 'other'].push(row.rewards[i]);
      scores.push(score);
      rewards.push(row.rewards[i]);
    });
  }
  const summary = (values: number[]): ClassCredit => ({ ...meanAndSe(values), count: values.length });
  return { positive: summary(byClass.positive), negative: summary(byClass.negative), other: summary(byClass.other), correlation: pearson(scores, rewards) };
}
