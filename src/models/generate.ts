// Autoregressive generation from any CausalLM: greedy or sampled (temperature, top-k, top-p), batched prompts of
// different lengths (left-padded, masked), a KV cache (prefill once, then one token per step), EOS ids and stop
// strings, seeded, with streaming callbacks. Not here: tokenizing or decoding text (io/ does that; stop strings come
// with a decode callback). Legend: B batch, T tokens so far (padding included), C hidden, V vocab.
import { noGrad, scope, tensor } from '../engine/tensor.js';
import { slice } from '../engine/ops/index.js';
import { Rng } from '../engine/random.js';
import { disposeKVCache } from './common.js';
import type { CausalLM, KVCache } from './types.js';

export interface SamplingOptions {
  /** 0 (the default) decodes greedily; above 0, logits are divided by it and a token is sampled. */
  temperature?: number;
  /** Keep only the k most likely tokens before sampling; 0 (default) keeps all. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens whose probability sums to ≥ p; 1 (default) keeps all. */
  topP?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** New tokens per row at most (default 16). */
  maxNewTokens?: number;
  /** A row stops once it emits one of these (the EOS token is kept in its output). */
  eosTokenIds?: number | readonly number[];
  /** A row stops once the text of its new tokens contains one of these; needs `decode`. */
  stopStrings?: readonly string[];
  /** Text of token ids (the tokenizer's decode), for stop strings. */
  decode?: (ids: readonly number[]) => string;
  /** Seed of the sampling Rng (default 0); ignored when `rng` is given. */
  seed?: number;
  rng?: Rng;
  /** Id written into padding slots (default 0). Padding is masked out, so any valid id gives the same result. */
  padTokenId?: number;
  /** Called with each new token as soon as it is chosen, row by row, for streaming. */
  onToken?: (row: number, id: number) => void;
  /** Reuse keys and values through a KV cache (default true); false recomputes the whole sequence every step. */
  useCache?: boolean;
  /** Also return the raw (V) logits behind every generated token (for tests and debugging). */
  returnLogits?: boolean;
}

export type FinishReason = 'eos' | 'stop' | 'length';

export interface GenerateResult {
  /** New token ids per row (the prompt excluded), ending with the EOS or stop-string token that ended the row. */
  tokens: number[][];
  /** log p(token) under the model itself (temperature 1, no top-k/top-p filtering), one per new token. */
  logprobs: number[][];
  finishReasons: FinishReason[];
  /** With returnLogits: each new token's (V) logits. */
  logits?: Float32Array[][];
}

// ------------------------------------------------------------------------------------------------ pure sampling math
/** Index of the largest value (the first one on ties), as torch.argmax. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** log Σ exp(x / temperature), stable. */
export function logSumExp(logits: ArrayLike<number>, temperature = 1): number {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > m) m = logits[i];
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += Math.exp((logits[i] - m) / temperature);
  return m / temperature + Math.log(s);
}

/** softmax(logits / temperature) in float64; −∞ logits get probability 0. */
export function softmaxOf(logits: ArrayLike<number>, temperature = 1): Float64Array {
  const lse = logSumExp(logits, temperature);
  const probs = new Float64Array(logits.length);
  for (let i = 0; i < probs.length; i++) probs[i] = Math.exp(logits[i] / temperature - lse);
  return probs;
}

/**
 * The ids top-k and then top-p keep, in id order. Top-k keeps the k most likely; top-p (nucleus, Holtzman et al.
 * 2020) then keeps the smallest set of most likely ones whose probabilities, renormalised over the top k, sum to ≥ p.
 * k ≤ 0 and p ≥ 1 switch a filter off; at least one id is kept. Ties at the cut go to the lower id. One native sort
 * of a copy finds the cut-off probability, so no comparator sort over the vocabulary is needed.
 */
export function filterIds(probs: ArrayLike<number>, topK: number, topP: number): number[] {
  const v = probs.length;
  const desc = Float64Array.from(probs).sort().reverse(); // probabilities, largest first
  let n = topK > 0 && topK < v ? topK : v; // how many ids are kept
  if (topP < 1) {
    let total = 0;
    for (let i = 0; i < n; i++) total += desc[i];
    let cumulative = 0;
    let kept = 0;
    while (kept < n && cumulative < topP) cumulative += desc[kept++] / total;
    n = Math.max(kept, 1);
  }
  const cutoff = desc[n - 1];
  const above: number[] = [];
  const atCutoff: number[] = [];
  for (let i = 0; i < v; i++) {
    if (probs[i] > cutoff) above.push(i);
    else if (probs[i] === cutoff) atCutoff.push(i);
  }
  return [...above, ...atCutoff.slice(0, n - above.length)].sort((a, b) => a - b);
}

/** The k most likely token ids, in id order (k ≤ 0 or ≥ V keeps all). */
export function topKIds(probs: ArrayLike<number>, k: number): number[] {
  return filterIds(probs, k, 1);
}

/** Nucleus filter: the smallest set of most likely ids whose probabilities sum to ≥ p, in id order. */
export function topPIds(probs: ArrayLike<number>, p: number): number[] {
  return filterIds(probs, 0, p);
}

export interface SamplingDistribution {
  ids: Int32Array;
  /** Sums to 1 over ids. */
  probs: Float64Array;
}

/**
 * The distribution a token is drawn from: softmax(logits / temperature) (default 1), cut by top-k then top-p
 * (HF's order), renormalised over the kept ids.
 */
export function samplingDistribution(logits: ArrayLike<number>, opts: SamplingOptions): SamplingDistribution {
  const probs = softmaxOf(logits, opts.temperature ?? 1);
  const topK = opts.topK ?? 0;
  const topP = opts.topP ?? 1;
  if (!(topK > 0 && topK < probs.length) && topP >= 1) {
    const all = new Int32Array(probs.length);
    for (let i = 0; i < all.length; i++) all[i] = i;
    return { ids: all, probs };
  }
  const ids = Int32Array.from(filterIds(probs, topK, topP));
  let total = 0;
  for (const id of ids) total += probs[id];
  return { ids, probs: Float64Array.from(ids, (id) => probs[id] / total) };
}

/** Draws one token from a sampling distribution with one uniform number from rng (inverse CDF). */
export function sampleToken(dist: SamplingDistribution, rng: Rng): number {
  const u = rng.uniform();
  let cumulative = 0;
  for (let i = 0; i < dist.ids.length; i++) {
    cumulative += dist.probs[i];
    if (u < cumulative) return dist.ids[i];
  }
  return dist.ids[dist.ids.length - 1]; // u landed in the rounding gap at the top
}

// ------------------------------------------------------------------------------------------------ the decoding loop
function checkOptions(model: CausalLM, prompts: readonly (readonly number[])[], opts: GenerateOptions): void {
  const fail = (msg: string): never => { throw new RangeError(`generate: ${msg}`); };
  if (prompts.length === 0) fail('no prompts given');
  prompts.forEach((p, row) => {
    if (p.length === 0) fail(`prompt ${row} is empty; every row needs at least one token (e.g. BOS)`);
    const bad = p.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= model.vocabSize);
    if (bad >= 0) fail(`prompt ${row}, token ${bad} is ${p[bad]}, outside the vocabulary 0..${model.vocabSize - 1}`);
  });
  const maxNew = opts.maxNewTokens ?? 16;
  if (!Number.isInteger(maxNew) || maxNew < 0) fail(`maxNewTokens must be an integer ≥ 0, got ${maxNew}`);
  const longest = Math.max(...prompts.map((p) => p.length));
  if (longest + maxNew > model.maxPositions) {
    fail(`the longest prompt (${longest} tokens) + maxNewTokens (${maxNew}) exceeds the model's ${model.maxPositions} positions; lower maxNewTokens or shorten the prompt`);
  }
  const t = opts.temperature ?? 0;
  if (!(t >= 0) || !Number.isFinite(t)) fail(`temperature must be ≥ 0 (0 is greedy), got ${t}`);
  const k = opts.topK ?? 0;
  if (!Number.isInteger(k) || k < 0) fail(`topK must be an integer ≥ 0 (0 keeps all), got ${k}`);
  const p = opts.topP ?? 1;
  if (!(p > 0 && p <= 1)) fail(`topP must be in (0, 1], got ${p}`);
  if ((opts.stopStrings?.length ?? 0) > 0 && !opts.decode) fail('stopStrings need a decode callback (ids → text), e.g. (ids) => tokenizer.decode(ids)');
  const pad = opts.padTokenId ?? 0;
  if (!Number.isInteger(pad) || pad < 0 || pad >= model.vocabSize) fail(`padTokenId ${pad} is outside the vocabulary`);
}

/** Whether the tail of a row's new tokens now contains a stop string (only a window of recent tokens is decoded). */
function hitsStopString(newIds: readonly number[], stops: readonly string[], decode: (ids: readonly number[]) => string): boolean {
  // A token decodes to ≥ 1 byte and a character is ≤ 4 bytes, so 4·len + 4 tokens cover any stop string.
  const window = 4 * Math.max(...stops.map((s) => s.length)) + 4;
  const text = decode(newIds.slice(-window));
  return stops.some((s) => s.length > 0 && text.includes(s));
}

/**
 * Continues each prompt (token ids) with up to maxNewTokens tokens. Rows are left-padded to a common length and
 * decoded together; a finished row stops growing (it is fed masked padding until the others finish).
 */
export function generate(model: CausalLM, prompts: readonly (readonly number[])[], opts: GenerateOptions = {}): GenerateResult {
  checkOptions(model, prompts, opts);
  const b = prompts.length;
  const maxNew = opts.maxNewTokens ?? 16;
  const temperature = opts.temperature ?? 0;
  const eos = new Set(typeof opts.eosTokenIds === 'number' ? [opts.eosTokenIds] : opts.eosTokenIds ?? []);
  const stops = opts.stopStrings ?? [];
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  const pad = opts.padTokenId ?? 0;
  const useCache = opts.useCache ?? true;

  // Rows of every token so far, left-padded: seq[row] and keyMask[row] grow by one column per step.
  const width = Math.max(...prompts.map((p) => p.length));
  const seq = prompts.map((p) => [...new Array<number>(width - p.length).fill(pad), ...p]);
  const keyMask = prompts.map((p) => [...new Array<number>(width - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  const result: GenerateResult = { tokens: prompts.map(() => []), logprobs: prompts.map(() => []), finishReasons: prompts.map(() => 'length') };
  if (opts.returnLogits) result.logits = prompts.map(() => []);
  const active = new Array<boolean>(b).fill(maxNew > 0);
  const cache: KVCache | null = useCache ? model.newCache() : null;

  /** (B·V) logits of the last position after feeding the newest `fed` columns (with a cache) or all of them. */
  const lastLogits = (fed: number): Float32Array =>
    scope(() => {
      const t = seq[0].length;
      const ids = tensor(seq.flatMap((r) => r.slice(t - fed)), [b, fed], 'int32');
      const hidden = model.forward(ids, { attentionMask: Uint8Array.from(keyMask.flat()), cache: cache ?? undefined }); // (B, fed, C)
      const last = slice(hidden, [0, fed - 1, 0], [b, fed, model.hiddenSize]); // (B, 1, C): no (B, T, V) logits
      return Float32Array.from(model.logits(last).floatData('generate')); // (B·V), copied out of the scope
    });
  const finish = (row: number, reason: FinishReason) => {
    active[row] = false;
    result.finishReasons[row] = reason;
  };

  try {
    noGrad(() => {
      for (let step = 0; step < maxNew && active.some(Boolean); step++) {
        // Prefill feeds the whole prompt; then, with a cache, only the token chosen last step.
        const logits = lastLogits(useCache && step > 0 ? 1 : seq[0].length);
        const v = model.vocabSize;
        for (let row = 0; row < b; row++) {
          if (!active[row]) {
            seq[row].push(pad);
            keyMask[row].push(0);
            continue;
          }
          const rowLogits = logits.subarray(row * v, (row + 1) * v);
          const id = temperature === 0 ? argmax(rowLogits) : sampleToken(samplingDistribution(rowLogits, opts), rng);
          const newIds = result.tokens[row];
          newIds.push(id);
          result.logprobs[row].push(rowLogits[id] - logSumExp(rowLogits));
          result.logits?.[row].push(rowLogits.slice());
          seq[row].push(id);
          keyMask[row].push(1);
          opts.onToken?.(row, id);
          if (eos.has(id)) finish(row, 'eos');
          else if (stops.length > 0 && opts.decode && hitsStopString(newIds, stops, opts.decode)) finish(row, 'stop');
        }
      }
    });
  } finally {
    if (cache) disposeKVCache(cache);
  }
  return result;
}
