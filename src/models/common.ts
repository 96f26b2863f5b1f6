// What every causal LM here shares around its blocks: checking one forward call's inputs (ids, padding mask,
// positions, cache) and turning them into a plan, the KV cache, and the LM head. The blocks live in gpt2.ts and
// llama.ts. Legend: B batch, T this call's tokens, past the cached positions, KVH key/value heads, D head dim.
import { ShapeError, fmtShape } from '../engine/errors.js';
import { concat, matmul, reshape } from '../engine/ops/index.js';
import type { Tensor } from '../engine/tensor.js';
import { causalPaddingMask, checkSegments, defaultPositions, segmentMask, visiblePositions } from './attention-mask.js';
import type { ForwardOptions, KVCache, SegmentLayout } from './types.js';

/** One forward call, checked. */
export interface CallPlan {
  b: number;
  t: number;
  /** Positions already in the cache (0 without one). */
  past: number;
  /** (B, T) position ids of this call's tokens. */
  positions: Int32Array;
  /** (B, T, past + T) visible-key mask, or null when the engine's causal rule suffices. */
  mask: Uint8Array | null;
}

/** Checks ids (B, T) int32 and the options against a model with `numLayers` layers; `op` names the caller in errors. */
export function planCall(op: string, numLayers: number, ids: Tensor, opts: ForwardOptions): CallPlan {
  if (ids.dtype !== 'int32' || ids.rank !== 2) throw new ShapeError(op, `ids must be int32 (B, T), got ${ids.dtype} ${fmtShape(ids.shape)}`);
  const [b, t] = ids.shape;
  const cache = opts.cache;
  if (cache && (cache.keys.length !== numLayers || cache.values.length !== numLayers)) {
    throw new ShapeError(op, `the cache holds ${cache.keys.length} layers of keys and ${cache.values.length} of values, the model has ${numLayers}; make it with model.newCache()`);
  }
  const past = cache?.length ?? 0;
  if (opts.segments) return planSegments(op, b, t, opts.segments, opts);
  const keyMask = opts.attentionMask;
  if (keyMask && keyMask.length !== b * (past + t)) {
    throw new ShapeError(op, `attentionMask must cover every key, cached ones first: B·(past + T) = ${b}·(${past} + ${t}) = ${b * (past + t)} values, got ${keyMask.length}`);
  }
  const positions = checkPositions(op, opts.positions ?? defaultPositions(keyMask, b, t, past), b, t);
  return { b, t, past, positions, mask: causalPaddingMask(keyMask, b, t, past + t) };
}

/** A call over rows of several sequences (ForwardOptions.segments): the mask and positions come from the layout. */
function planSegments(op: string, b: number, t: number, segments: SegmentLayout, opts: ForwardOptions): CallPlan {
  if (opts.cache || opts.attentionMask) throw new ShapeError(op, 'segments replace attentionMask and take no cache; pass -1 segment ids for padding');
  checkSegments(op, segments, b, t);
  const mask = segmentMask(segments, b, t);
  return { b, t, past: 0, positions: checkPositions(op, opts.positions ?? visiblePositions(mask, b, t), b, t), mask };
}

function checkPositions(op: string, positions: Int32Array, b: number, t: number): Int32Array {
  if (positions.length !== b * t) throw new ShapeError(op, `positions must hold B·T = ${b * t} ids, got ${positions.length}`);
  const bad = positions.findIndex((p) => p < 0);
  if (bad >= 0) throw new ShapeError(op, `positions[${bad}] = ${positions[bad]} is negative`);
  return positions;
}

/** An empty cache for a model with `numLayers` layers. */
export function newKVCache(numLayers: number): KVCache {
  return { length: 0, keys: new Array<Tensor | null>(numLayers).fill(null), values: new Array<Tensor | null>(numLayers).fill(null) };
}

/** Frees a cache's tensors and empties it. */
export function disposeKVCache(cache: KVCache): void {
  for (const t of [...cache.keys, ...cache.values]) t?.dispose();
  cache.keys.fill(null);
  cache.values.fill(null);
  cache.length = 0;
}

/**
 * Appends this call's k, v (B, T, KVH, D) to layer `layer` of the cache and returns the full (B, past + T, KVH, D)
 * keys and values. The cache keeps detached copies out of every scope and frees the ones they replace. The caller
 * advances cache.length once every layer has appended. Without a cache, returns k and v unchanged.
 */
export function appendToCache(cache: KVCache | undefined, layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
  if (!cache) return [k, v];
  const append = (old: Tensor | null, now: Tensor): Tensor => (old ? concat([old, now], 1) : now);
  const keys = append(cache.keys[layer], k);
  const values = append(cache.values[layer], v);
  cache.keys[layer]?.dispose();
  cache.values[layer]?.dispose();
  cache.keys[layer] = keys.detach().keep();
  cache.values[layer] = values.detach().keep();
  return [keys, values];
}

/** hidden (…, C) → logits (…, V) = hidden · Wᵀ with the (V, C) head weight. */
export function projectToVocab(hidden: Tensor, weight: Tensor): Tensor {
  if (hidden.rank === 1) return reshape(matmul(reshape(hidden, [1, -1]), weight, { transB: true }), [weight.shape[0]]);
  return matmul(hidden, weight, { transB: true });
}
