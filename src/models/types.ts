// What every causal language model in models/ provides. The trainer and generate() rely only on this.
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';

export interface ForwardOptions {
  /**
   * (B, Tk) 0/1 bytes over all key positions (cached ones first, then this call's tokens): 0 marks padding, which is
   * never attended to. Default: every position is real.
   */
  attentionMask?: Uint8Array;
  /**
   * (B, T) position ids of this call's tokens. Default: past length + 0..T−1 for every row; with an attentionMask,
   * cumsum(attentionMask) − 1 clamped at 0 (HF's rule for left padding), read at this call's columns.
   */
  positions?: Int32Array;
  /** A KV cache: this call's keys and values are appended, and queries also attend to the cached ones. */
  cache?: KVCache;
  /**
   * Rows that hold several sequences (packing) or completions sharing one prompt (prefix sharing); see
   * SegmentLayout. Replaces attentionMask, and needs no cache. Positions then default to each token's place in its own
   * sequence: the number of keys it sees, minus 1.
   */
  segments?: SegmentLayout;
}

/**
 * Which keys each query sees when a row holds several sequences. ids (B, T): each token's segment, −1 on padding;
 * parents[s]: the segment that segment s continues (its shared prompt), or −1. Query i sees key j iff j ≤ i and
 * ids[j] is ids[i] or one of its ancestors. Prefix sharing: prompt | chosen | rejected with both completions' parent
 * the prompt. Packing: one segment per sequence, no parents, so the row is block-diagonal causal.
 */
export interface SegmentLayout {
  ids: Int32Array;
  parents: Int32Array;
}

/** Per-layer keys and values kept between decoding calls; each layer's tensors are (B, Tpast, KVH, D). */
export interface KVCache {
  /** Number of positions already cached. */
  length: number;
  keys: (Tensor | null)[];
  values: (Tensor | null)[];
}

export interface CausalLM extends Module {
  /** HF model_type: 'gpt2', 'llama', 'qwen2'. */
  readonly modelType: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  /** Maximum positions the model supports (GPT-2's n_positions; Llama's max_position_embeddings). */
  readonly maxPositions: number;
  /** (V, C) output projection (tied to the token embedding when the config says so). */
  readonly lmHeadWeight: Tensor;
  /** int32 ids (B, T) → final hidden states (B, T, C), after the final norm. */
  forward(ids: Tensor, opts?: ForwardOptions): Tensor;
  /** hidden (…, C) → logits (…, V). */
  logits(hidden: Tensor): Tensor;
  /** An empty KV cache for this model. */
  newCache(): KVCache;
}
