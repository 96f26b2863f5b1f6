// Completions of review openings: sampling from a model (models/generate, temperature 1, KV cache, batched and
// seeded), the AFINN reward of each, and per-token log-probs of given completions under any model (one forward pass
// per batch through dpo/logps). Legend: R rows in a scoring batch, T the longest prompt + completion.
// Not here: pairing (pairs.ts) or the statistics (evaluate.ts).
import { IGNORE_INDEX } from '../data/collate.js';
import { Rng } from '../engine/random.js';
import { noGrad, scope } from '../engine/tensor.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { generate } from '../models/generate.js';
import type { CausalLM } from '../models/types.js';
import { sequenceLogps } from '../dpo/logps.js';
import { completionReward } from './reward.js';

/** One sampled completion of one prompt. */
export interface Sample {
  /** Index of the prompt in the list given to sampleCompletions. */
  prompt: number;
  /** The completion's token ids (ending with EOS when the model stopped by itself). */
  ids: number[];
  /** The completion as text (EOS dropped). */
  text: string;
  /** log π(completion | prompt) under the model that sampled it. */
  logp: number;
  /** AFINN sentiment the completion adds to its prompt (reward.ts). */
  reward: number;
}

export interface SamplingSetup {
  tokenizer: Tokenizer;
  /** New tokens per completion at most. */
  maxNewTokens: number;
  /** Rows per generate() call. */
  batchSize: number;
}

/** The token ids a prompt is fed as: BOS (<|endoftext|>), then the opening's words. */
export function promptIds(tokenizer: Tokenizer, prompt: string): number[] {
  const bos = tokenizer.bosTokenId;
  if (bos === null) throw new Error(`${tokenizer.source}: the demo tokenizer needs a bos_token (tokenizer_config.json)`);
  return [bos, ...tokenizer.encode(prompt, { addSpecialTokens: false })];
}

/** The text of a completion: its ids without the EOS, decoded with the tokenizer's clean-up of spaces. */
export function completionText(tokenizer: Tokenizer, ids: readonly number[]): string {
  return tokenizer.decode(ids.filter((id) => id !== tokenizer.eosTokenId));
}

/**
 * `perPrompt` completions of every prompt at temperature 1, drawn from Rng(seed); returns them grouped by prompt,
 * in prompt order. The same model, prompts, setup and seed give the same samples.
 */
export function sampleCompletions(model: CausalLM, prompts: readonly string[], perPrompt: number, seed: number, s: SamplingSetup): Sample[][] {
  const rng = new Rng(seed);
  const rows = prompts.flatMap((_, p) => new Array<number>(perPrompt).fill(p)); // the prompt of each row
  const encoded = prompts.map((p) => promptIds(s.tokenizer, p));
  const out: Sample[][] = prompts.map(() => []);
  const eos = s.tokenizer.eosTokenId ?? undefined;
  for (let start = 0; start < rows.length; start += s.batchSize) {
    const batch = rows.slice(start, start + s.batchSize);
    const result = generate(model, batch.map((p) => encoded[p]), { temperature: 1, maxNewTokens: s.maxNewTokens, eosTokenIds: eos, padTokenId: eos ?? 0, rng });
    batch.forEach((p, i) => {
      const ids = result.tokens[i];
      const text = completionText(s.tokenizer, ids);
      out[p].push({ prompt: p, ids, text, logp: result.logprobs[i].reduce((a, b) => a + b, 0), reward: completionReward(prompts[p], text) });
    });
  }
  return out;
}

/** A sequence to score: prompt ids, then completion ids. */
export interface Scored {
  promptIds: readonly number[];
  completionIds: readonly number[];
}

/**
 * log π(token | prefix) of every completion token of every sequence under `model`, per sequence (noGrad, batches of
 * `batchSize` rows). Their sum is log π(completion | prompt).
 */
export function completionTokenLogps(model: CausalLM, seqs: readonly Scored[], batchSize: number, padTokenId: number): number[][] {
  const out: number[][] = [];
  for (let start = 0; start < seqs.length; start += batchSize) {
    const rows = seqs.slice(start, start + batchSize);
    const t = Math.max(...rows.map((r) => r.promptIds.length + r.completionIds.length));
    const inputIds = new Int32Array(rows.length * t).fill(padTokenId); // (R, T) right-padded
    const attentionMask = new Uint8Array(rows.length * t);
    const targets = new Int32Array(rows.length * t).fill(IGNORE_INDEX); // position p − 1 predicts completion token p
    rows.forEach((r, i) => {
      const length = r.promptIds.length + r.completionIds.length;
      inputIds.set(r.promptIds, i * t);
      inputIds.set(r.completionIds, i * t + r.promptIds.length);
      attentionMask.fill(1, i * t, i * t + length);
      for (let p = Math.max(r.promptIds.length, 1); p < length; p++) targets[i * t + p - 1] = inputIds[i * t + p];
    });
    noGrad(() => scope(() => {
      const lp = sequenceLogps(model, { T: t, inputIds, attentionMask, targets });
      const values = lp.tokenLogps.floatData('completionTokenLogps');
      const perRow: number[][] = rows.map(() => []);
      for (let k = 0; k < lp.tokenRow.length; k++) perRow[lp.tokenRow[k]].push(values[k]); // row-major: in order
      out.push(...perRow);
    }));
  }
  return out;
}

/** Σ of each sequence's completion token log-probs: log π(completion | prompt). */
export function completionLogps(model: CausalLM, seqs: readonly Scored[], batchSize: number, padTokenId: number): number[] {
  return completionTokenLogps(model, seqs, batchSize, padTokenId).map((lps) => lps.reduce((a, b) => a + b, 0));
}
