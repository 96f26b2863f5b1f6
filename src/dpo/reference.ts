// The reference strategies: a frozen model (--ref-model DIR, else a second copy of --model read from disk; grads off,
// run under noGrad), log-probs precomputed once before training and cached on disk by fingerprint (ref-cache.ts; the
// model is disposed afterwards), or none when no loss reads a reference. Also TR-DPO's soft update of a live
// reference (Gorbatovski et al. 2024) and the optimizer wrapper that checkpoints the reference it moves.
import type { PreferenceBatch } from '../data/collate.js';
import { collatePreferenceBatch } from '../data/collate.js';
import type { TokenizedExample } from '../data/tokenize.js';
import { noGrad, scope, tensor, type Tensor } from '../engine/tensor.js';
import { createHash } from 'node:crypto';
import { loadPretrained } from '../io/pretrained.js';
import type { CausalLM } from '../models/types.js';
import { forwardPairs, paddedLayout, type BatchLayout } from './forward.js';
import { needsReference } from './losses/index.js';
import type { Optimizer } from './optim.js';
import { defaultRefCacheDir, loadRefCache, refCacheFingerprint, saveRefCache, type RefLogps } from './ref-cache.js';
import { TrainConfigError, type TrainConfig } from './trainer-config.js';
import type { TrainData } from './train-data.js';

export type DataSplit = 'train' | 'eval';

export interface Reference {
  readonly kind: 'model' | 'precomputed' | 'none';
  /** The live frozen model ('model' only); TR-DPO mixes the policy into it. */
  readonly model: CausalLM | null;
  /** (B) Σ log π_ref(y_w), Σ log π_ref(y_l) for the batch's pairs; null for 'none'. */
  logps(split: DataSplit, batch: PreferenceBatch): { chosen: Tensor; rejected: Tensor } | null;
  dispose(): void;
}

export interface BuiltReference {
  reference: Reference;
  /** Precomputed only: whether each split's log-probs came from the cache ('hit') or were computed ('miss'). */
  cache: Partial<Record<DataSplit, 'hit' | 'miss'>>;
}

/** Loads the reference directory frozen, checking that it scores the policy's vocabulary. */
function loadFrozen(dir: string, vocabSize: number): CausalLM {
  const model = loadPretrained(dir).model;
  if (model.vocabSize !== vocabSize) {
    model.dispose();
    throw new TrainConfigError(`ref_model: ${dir} has a vocabulary of ${model.vocabSize} but the model has ${vocabSize}; both must score the same token ids`);
  }
  return model.requiresGrad(false);
}

/** Σ log π_ref of both completions of a batch, without a graph; everything else the pass made is freed. */
function frozenLogps(model: CausalLM, batch: PreferenceBatch, ldAlpha: number | null, layout: BatchLayout): { chosen: Tensor; rejected: Tensor } {
  return noGrad(() => scope(() => {
    const out = forwardPairs(model, batch, { ldAlpha, useWeighting: false, chosenOnly: false, layout });
    return { chosen: out.chosen, rejected: out.rejected };
  }));
}

/** One pass of `model` over `examples` in batches: example index → its reference log-probs (the same in any layout). */
export function computeRefLogps(model: CausalLM, examples: readonly TokenizedExample[], o: { batchSize: number; padTokenId: number; ldAlpha: number | null; layout?: BatchLayout }): Map<number, RefLogps> {
  const out = new Map<number, RefLogps>();
  for (let start = 0; start < examples.length; start += o.batchSize) {
    const batch = collatePreferenceBatch(examples.slice(start, start + o.batchSize), { padTokenId: o.padTokenId });
    scope(() => {
      const lp = frozenLogps(model, batch, o.ldAlpha, o.layout ?? paddedLayout);
      batch.exampleIndices.forEach((index, i) => out.set(index, { chosen: lp.chosen.data[i], rejected: lp.rejected.data[i] }));
    });
  }
  return out;
}

/** sha256 of the tokenized examples: the cache key covers the tokenizer, template and truncation through their output. */
function hashExamples(examples: readonly TokenizedExample[]): string {
  const hash = createHash('sha256');
  for (const e of examples) hash.update(JSON.stringify([e.index, e.promptIds, e.chosenIds, e.rejectedIds]));
  return hash.digest('hex');
}

/** Picks and builds the strategy for a run. `log` receives one line about the cache per split. */
export function buildReference(c: TrainConfig, data: TrainData, vocabSize: number, log: (line: string) => void): BuiltReference {
  const refDir = c.refModel ?? c.model;
  if (!c.lossType.some(needsReference)) return { reference: noReference(), cache: {} };
  const layout = { prefixSharing: c.prefixSharing, paddingFree: c.paddingFree };
  if (!c.precomputeRefLogProbs) return { reference: modelReference(loadFrozen(refDir, vocabSize), c.ldAlpha, layout), cache: {} };

  const cacheDir = c.refCacheDir ?? defaultRefCacheDir(c.outputDir);
  const tables = new Map<DataSplit, Map<number, RefLogps>>();
  const cache: BuiltReference['cache'] = {};
  let model: CausalLM | null = null; // loaded only on a miss
  try {
    for (const [split, examples, files] of [['train', data.train, data.trainFiles], ['eval', data.eval, data.evalFiles]] as const) {
      if (examples === null || files === null) continue;
      const fingerprint = refCacheFingerprint({
        datasetFiles: files,
        refWeightsDir: refDir,
        tokenization: { split, examples_sha256: hashExamples(examples), ld_alpha: c.ldAlpha },
      });
      const cached = loadRefCache(cacheDir, fingerprint, { warn: log });
      if (cached !== null && examples.every((e) => cached.has(e.index))) {
        tables.set(split, cached);
        cache[split] = 'hit';
        log(`reference log-probs (${split}): ${examples.length} pairs read from the cache ${cacheDir}`);
        continue;
      }
      model ??= loadFrozen(refDir, vocabSize);
      // The layout is not in the fingerprint: it changes which tokens run, not the log-probs.
      const computed = computeRefLogps(model, examples, { batchSize: c.perDeviceEvalBatchSize, padTokenId: data.padTokenId, ldAlpha: c.ldAlpha, layout });
      saveRefCache(cacheDir, fingerprint, computed);
      tables.set(split, computed);
      cache[split] = 'miss';
      log(`reference log-probs (${split}): computed for ${examples.length} pairs with ${refDir} and cached in ${cacheDir}`);
    }
  } finally {
    model?.dispose(); // no reference model stays in memory during training
  }
  return { reference: precomputedReference(tables), cache };
}

export function noReference(): Reference {
  return { kind: 'none', model: null, logps: () => null, dispose: () => {} };
}

export function modelReference(model: CausalLM, ldAlpha: number | null, layout: BatchLayout = paddedLayout): Reference {
  return { kind: 'model', model, logps: (_split, batch) => frozenLogps(model, batch, ldAlpha, layout), dispose: () => model.dispose() };
}

export function precomputedReference(tables: ReadonlyMap<DataSplit, ReadonlyMap<number, RefLogps>>): Reference {
  return {
    kind: 'precomputed',
    model: null,
    logps(split, batch) {
      const table = tables.get(split);
      const rows = Array.from(batch.exampleIndices, (index) => {
        const entry = table?.get(index);
        if (!entry) throw new Error(`precomputed reference: no ${split} log-probs for example ${index}; the cache does not match the data`);
        return entry;
      });
      return { chosen: tensor(rows.map((r) => r.chosen), [rows.length]), rejected: tensor(rows.map((r) => r.rejected), [rows.length]) };
    },
    dispose: () => {},
  };
}

/** TR-DPO soft update, in place: ref ← α·policy + (1 − α)·ref for every parameter (α = 1 is a hard copy). */
export function syncReference(ref: CausalLM, policy: CausalLM, alpha: number): void {
  const policyParams = new Map(policy.namedParameters());
  for (const [name, r] of ref.namedParameters()) {
    const p = policyParams.get(name);
    if (!p || p.size !== r.size) throw new Error(`syncReference: the policy has no parameter '${name}' of ${r.size} elements; TR-DPO needs the same architecture`);
    const rd = r.data;
    const pd = p.data;
    for (let i = 0; i < rd.length; i++) rd[i] = alpha * pd[i] + (1 - alpha) * rd[i];
  }
}

/** Prefix of the reference's weights inside optimizer.safetensors. */
export const REF_STATE_PREFIX = 'ref_model.';

/**
 * An optimizer whose checkpointed state also holds the reference's weights (under ref_model.<name>): TR-DPO moves
 * the reference, so it is training state, and it must be saved in the same atomic checkpoint as the policy.
 */
export function withReferenceState(optimizer: Optimizer, ref: CausalLM): Optimizer {
  return {
    get steps() {
      return optimizer.steps;
    },
    step: (lr) => optimizer.step(lr),
    stateTensors() {
      const state = optimizer.stateTensors();
      for (const [name, t] of ref.namedParameters()) state.set(REF_STATE_PREFIX + name, t);
      return state;
    },
    loadState(tensors, steps) {
      optimizer.loadState(new Map([...tensors].filter(([k]) => !k.startsWith(REF_STATE_PREFIX))), steps);
      for (const [name, t] of ref.namedParameters()) {
        const saved = tensors.get(REF_STATE_PREFIX + name);
        if (!saved || saved.data.length !== t.size) throw new Error(`checkpoint: the TR-DPO reference weight '${name}' is missing or has the wrong size`);
        t.data.set(saved.data);
      }
    },
  };
}
