// Per-token implicit rewards for analysis: for every completion token of every pair, log π(token), log π_ref(token)
// and β·(log π − log π_ref), the token-level credit DPO assigns (Rafailov et al. 2024, "From r to Q*"). Their sum
// over a completion is the sequence reward β·log π/π_ref that the losses use. Under noGrad, batch by batch.
// Not here: file output (cli/token-rewards.ts).
import { collatePreferenceBatch } from '../data/collate.js';
import type { TokenizedExample } from '../data/tokenize.js';
import { noGrad, scope } from '../engine/tensor.js';
import type { CausalLM } from '../models/types.js';
import { sequenceLogps, tokenRewards } from './logps.js';

export interface CompletionTokenRewards {
  /** The completion's scored token ids, in order. */
  token_ids: number[];
  /** Each token decoded on its own (null without a tokenizer). */
  tokens: string[] | null;
  /** log π(token | prefix) under the policy and the reference. */
  logps: number[];
  ref_logps: number[];
  /** β·(logps − ref_logps) per token. */
  rewards: number[];
  /** Σ rewards: the sequence's implicit reward. */
  reward: number;
}

export interface TokenRewardsRow {
  /** The record's index in the dataset. */
  index: number;
  chosen: CompletionTokenRewards;
  rejected: CompletionTokenRewards;
}

export interface TokenRewardsOptions {
  model: CausalLM;
  refModel: CausalLM;
  examples: readonly TokenizedExample[];
  beta: number;
  /** Pairs per forward pass (default 8). */
  batchSize?: number;
  padTokenId?: number;
  chunkRows?: number;
  /** Text of one token id, e.g. id => tokenizer.decode([id]). */
  decode?: (id: number) => string;
}

/** Per-token log-probs and rewards of both completions of every example, in input order. */
export function computeTokenRewards(o: TokenRewardsOptions): TokenRewardsRow[] {
  const batchSize = o.batchSize ?? 8;
  if (!(Number.isSafeInteger(batchSize) && batchSize >= 1)) throw new RangeError(`computeTokenRewards: batchSize must be a positive integer, got ${batchSize}`);
  if (!(o.beta > 0 && Number.isFinite(o.beta))) throw new RangeError(`computeTokenRewards: beta must be a finite number > 0, got ${o.beta}`);
  const out: TokenRewardsRow[] = [];
  for (let start = 0; start < o.examples.length; start += batchSize) {
    const examples = o.examples.slice(start, start + batchSize);
    noGrad(() => scope(() => {
      const batch = collatePreferenceBatch(examples, { padTokenId: o.padTokenId ?? 0 });
      const policy = sequenceLogps(o.model, batch, { chunkRows: o.chunkRows });
      const reference = sequenceLogps(o.refModel, batch, { chunkRows: o.chunkRows });
      const logps = policy.tokenLogps.data;
      const refLogps = reference.tokenLogps.data;
      const rewards = tokenRewards(logps, refLogps, o.beta);
      // Group the (N) completion tokens by row; token k is scored at position tokenPosition[k] of row tokenRow[k].
      const rows = Array.from({ length: 2 * batch.B }, (): CompletionTokenRewards => ({ token_ids: [], tokens: o.decode ? [] : null, logps: [], ref_logps: [], rewards: [], reward: 0 }));
      for (let k = 0; k < policy.tokenRow.length; k++) {
        const r = policy.tokenRow[k];
        const id = batch.targets[r * batch.T + policy.tokenPosition[k]];
        const row = rows[r];
        row.token_ids.push(id);
        row.tokens?.push(o.decode!(id));
        row.logps.push(logps[k]);
        row.ref_logps.push(refLogps[k]);
        row.rewards.push(rewards[k]);
        row.reward += rewards[k];
      }
      examples.forEach((ex, i) => out.push({ index: ex.index, chosen: rows[i], rejected: rows[batch.B + i] }));
    }));
  }
  return out;
}
