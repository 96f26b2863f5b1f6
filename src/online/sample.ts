// Sampling completions from a policy for the on-policy methods: K completions per prompt, batched through generate()
// with the KV cache, seeded, with each completion's ids, text, log-prob under the sampler and whether it ended with
// EOS (TRL's val/contain_eos_token and missing_eos_penalty read that). Also the TokenizedExample a labelled pair
// becomes, so the DPO losses score exactly the sampled tokens (no re-tokenization of decoded text).
import type { TokenizedExample } from '../data/tokenize.js';
import type { Rng } from '../engine/random.js';
import { noGrad } from '../engine/tensor.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { generate, type SamplingOptions } from '../models/generate.js';
import type { CausalLM } from '../models/types.js';
import type { PromptItem } from './prompts.js';

export interface PolicySample {
  /** Position of the prompt in the list given to samplePolicy. */
  prompt: number;
  /** New token ids (ending with the EOS when the model stopped by itself). */
  ids: number[];
  /** The completion as text, special tokens (and ids the tokenizer does not know) skipped. */
  text: string;
  /** Σ log π(token) under the sampling model at temperature 1, unfiltered. */
  logp: number;
  /** True when the completion ended with an EOS token (not cut at maxNewTokens). */
  containsEos: boolean;
}

export interface SamplePolicyOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Rows per generate() call. */
  batchSize: number;
  rng: Rng;
  eosTokenIds: readonly number[];
  padTokenId: number;
}

/** `perPrompt` completions of every prompt, grouped by prompt in prompt order; the same inputs and Rng state give the same samples. */
export function samplePolicy(model: CausalLM, tokenizer: Tokenizer, prompts: readonly PromptItem[], perPrompt: number, o: SamplePolicyOptions): PolicySample[][] {
  if (!Number.isInteger(perPrompt) || perPrompt < 1) throw new Error(`samplePolicy: perPrompt must be an integer ≥ 1, got ${perPrompt}`);
  const rows = prompts.flatMap((_, p) => new Array<number>(perPrompt).fill(p)); // the prompt of each row
  const out: PolicySample[][] = prompts.map(() => []);
  const eos = new Set(o.eosTokenIds);
  noGrad(() => {
    for (let start = 0; start < rows.length; start += o.batchSize) {
      const batch = rows.slice(start, start + o.batchSize);
      const r = generate(model, batch.map((p) => prompts[p].ids), {
        temperature: o.temperature, topK: o.topK, topP: o.topP, maxNewTokens: o.maxNewTokens, eosTokenIds: [...eos], padTokenId: o.padTokenId, rng: o.rng,
      });
      batch.forEach((p, i) => {
        const ids = r.tokens[i];
        const containsEos = ids.length > 0 && eos.has(ids[ids.length - 1]);
        // A model's vocabulary may be padded past the tokenizer's (Qwen2 checkpoints are); such ids have no text.
        const text = tokenizer.decode(ids.filter((id) => tokenizer.idToToken(id) !== null), { skipSpecialTokens: true });
        out[p].push({ prompt: p, ids, text, logp: r.logprobs[i].reduce((a, b) => a + b, 0), containsEos });
      });
    }
  });
  return out;
}

/** The pair (prompt, chosen, rejected) as the trainer's TokenizedExample, on the sampled ids themselves. */
export function sampledPair(index: number, source: string, prompt: PromptItem, chosen: PolicySample, rejected: PolicySample): TokenizedExample {
  return { index, source, promptIds: prompt.ids, chosenIds: chosen.ids, rejectedIds: rejected.ids, promptMismatch: false };
}
