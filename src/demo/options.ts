// The options of `dpo demo`: one flat object with a commented default per field, the `quick` preset (a seconds-long
// run for tests and smoke checks), and the fingerprint that ties an output folder to the options that made it.
// Not here: flag parsing (cli/demo.ts) or the stages (run.ts).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultPretrainOptions } from './base-model.js';

export interface DemoOptions {
  /** Where every output goes; a rerun with the same folder continues from the finished stages. */
  outputDir: string;
  /** The base model (HF layout); null: the committed assets/demo/base, or OUTPUT/base with retrainBase. */
  baseModel: string | null;
  /** Pretrain the base model first (into OUTPUT/base) instead of using the committed one. */
  retrainBase: boolean;
  /** Reviews in the corpus when retraining the base. */
  pretrainReviews: number;
  seed: number;
  /** Training prompts (openings): two base samples each become one pair, unless their rewards tie. */
  trainPrompts: number;
  /** Held-out evaluation prompts, never used for training. */
  evalPrompts: number;
  /** Samples per evaluation prompt from each trained policy and from the base (for rewards, KL and win rates). */
  samplesPerPrompt: number;
  /** Best-of-N sizes; the base draws max(bestOfN) extra samples per evaluation prompt for them. */
  bestOfN: number[];
  /** New tokens per sampled completion at most. */
  maxNewTokens: number;
  /** One DPO (sigmoid loss) run per β. */
  betas: number[];
  /** Passes over the pairs for each DPO run and for SFT; -1 steps means: use the epochs. */
  epochs: number;
  maxSteps: number;
  /** AdamW learning rates of the DPO runs and of SFT on the chosen completions (constant after a short warm-up). */
  learningRate: number;
  sftLearningRate: number;
  /** Pairs per optimizer step. */
  batchSize: number;
  /** Completions of the best DPO policy (and the base) shown as token heatmaps. */
  heatmapSamples: number;
  /**
   * Online DPO (OAIF, src/online/oaif.ts) from the base with the AFINN reward as its judge, on the training prompts,
   * at the same judge-label budget as the offline pairs: one judge label per training prompt (on-policy.ts).
   */
  onlineDpo: boolean;
  /** RSO (src/online/rso.ts): pairs from rejection sampling over base candidates, then DPO as offline. */
  rso: boolean;
  /** β of online DPO and of the DPO run on RSO's pairs; one of `betas`. null: the middle of `betas` (sorted). */
  onPolicyBeta: number | null;
  /** RSO: base candidates per training prompt, each scored by the AFINN reward (the paper draws 64). */
  rsoCandidates: number;
  /** RSO: β_rso of the rejection sampler, which targets π_base·exp(r/β_rso). null: onPolicyBeta (the paper's choice). */
  rsoBeta: number | null;
}

/**
 * The full demo: 448 training prompts (~400 pairs), 48 held-out prompts, β ∈ {0.1, 0.5, 2}, 3 epochs each; online
 * DPO and DPO on RSO's pairs at β = 0.5.
 */
export const defaultDemoOptions: Readonly<Omit<DemoOptions, 'outputDir'>> = Object.freeze({
  baseModel: null, // the committed base model
  retrainBase: false, // use the committed base
  pretrainReviews: defaultPretrainOptions.reviews, // one pass over this many generated reviews (~3 min on 2 cores)
  seed: 0, // seeds the prompt split, every sampling stage and the trainer
  trainPrompts: 448, // → ~300 pairs after ties
  evalPrompts: 48, // held out
  samplesPerPrompt: 4, // per held-out prompt and policy
  bestOfN: [2, 4, 8, 16], // as the paper's baseline
  maxNewTokens: 24, // ≈ two or three sentences
  betas: [0.1, 0.5, 2], // DPO's KL strength: from far from the base (0.1) to close to it (2)
  epochs: 3, // passes over the pairs (DPO and SFT alike)
  maxSteps: -1, // from the epochs
  learningRate: 3e-4, // DPO (1e-3 collapses the policy to KL > 30 in 2 epochs)
  sftLearningRate: 1e-3, // SFT on the chosen completions (its reward saturates near theirs, ~3.4)
  batchSize: 16, // pairs per step
  heatmapSamples: 6, // token heatmaps in the report
  onlineDpo: true, // online DPO at the offline pairs' judge-label budget
  rso: true, // DPO on RSO's pairs
  onPolicyBeta: null, // the middle β: 0.5
  rsoCandidates: 8, // 8 × 448 base samples, two accepted per prompt
  rsoBeta: null, // = onPolicyBeta
});

/** `--quick`: a few prompts, one β, a few steps; the whole pipeline in seconds (for tests). */
export const quickPreset: Partial<DemoOptions> = {
  trainPrompts: 16, evalPrompts: 4, samplesPerPrompt: 2, bestOfN: [2, 4], maxNewTokens: 10, betas: [0.1], epochs: 1, maxSteps: 2, batchSize: 4, heatmapSamples: 2, pretrainReviews: 64,
  rsoCandidates: 4,
};

/** The β of online DPO and of DPO on RSO's pairs: onPolicyBeta, or the middle of the sorted betas (the lower of two). */
export function onPolicyBetaOf(o: Pick<DemoOptions, 'betas' | 'onPolicyBeta'>): number {
  if (o.onPolicyBeta !== null) return o.onPolicyBeta;
  const sorted = [...o.betas].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** An option out of range; the message names its flag. */
export class DemoOptionsError extends Error {
  override name = 'DemoOptionsError';
}

/** Checks the options; throws a DemoOptionsError naming the option (by its flag) and what is expected. */
export function checkDemoOptions(o: DemoOptions): DemoOptions {
  const fail = (flag: string, detail: string): never => {
    throw new DemoOptionsError(`dpo demo: --${flag} ${detail}`);
  };
  const positiveInt = (flag: string, v: number) => {
    if (!(Number.isSafeInteger(v) && v >= 1)) fail(flag, `must be a positive integer, got ${v}`);
  };
  if (o.outputDir === '') fail('output-dir', 'must not be empty');
  if (o.retrainBase && o.baseModel !== null) fail('retrain-base', `pretrains a new base, so it cannot be combined with --base-model (${o.baseModel}); drop one of them`);
  positiveInt('train-prompts', o.trainPrompts);
  positiveInt('eval-prompts', o.evalPrompts);
  positiveInt('samples-per-prompt', o.samplesPerPrompt);
  positiveInt('max-new-tokens', o.maxNewTokens);
  positiveInt('per-device-train-batch-size', o.batchSize);
  positiveInt('pretrain-reviews', o.pretrainReviews);
  if (!(Number.isSafeInteger(o.seed) && o.seed >= 0)) fail('seed', `must be an integer ≥ 0, got ${o.seed}`);
  if (o.betas.length === 0 || o.betas.some((b) => !(b > 0 && Number.isFinite(b)))) fail('beta', `must be a list of numbers > 0, got ${o.betas.join(',')}`);
  if (new Set(o.betas).size !== o.betas.length) fail('beta', `lists a value twice: ${o.betas.join(',')}`);
  if (o.bestOfN.length === 0 || o.bestOfN.some((n) => !(Number.isSafeInteger(n) && n >= 1))) fail('best-of-n', `must be a list of positive integers, got ${o.bestOfN.join(',')}`);
  if (!(o.epochs > 0)) fail('num-train-epochs', `must be > 0, got ${o.epochs}`);
  if (!(Number.isSafeInteger(o.maxSteps) && (o.maxSteps === -1 || o.maxSteps >= 1))) fail('max-steps', `must be -1 or a positive integer, got ${o.maxSteps}`);
  if (!(o.learningRate > 0) || !(o.sftLearningRate > 0)) fail('learning-rate', 'and --sft-learning-rate must be > 0');
  if (!(Number.isSafeInteger(o.heatmapSamples) && o.heatmapSamples >= 0)) fail('heatmap-samples', `must be an integer ≥ 0, got ${o.heatmapSamples}`);
  if (o.onPolicyBeta !== null && !o.betas.includes(o.onPolicyBeta)) fail('on-policy-beta', `must be one of --beta (${o.betas.join(',')}), so that an offline DPO run shares it; got ${o.onPolicyBeta}`);
  if (!(Number.isSafeInteger(o.rsoCandidates) && o.rsoCandidates >= 2)) fail('rso-candidates', `must be an integer ≥ 2 (RSO accepts two of them per prompt), got ${o.rsoCandidates}`);
  if (o.rsoBeta !== null && !(o.rsoBeta >= 0 && Number.isFinite(o.rsoBeta))) fail('rso-beta', `must be a number ≥ 0 (0: always the best remaining candidate), got ${o.rsoBeta}`);
  return o;
}

/**
 * What a finished stage depends on: every option except where the output goes, plus a hash of the base model's
 * weights (a committed base that changed makes old results stale). Two runs with equal fingerprints are one run.
 */
export function demoFingerprint(o: DemoOptions, baseWeightsFile: string | null): string {
  const { outputDir: _where, ...what } = o;
  const weights = baseWeightsFile === null ? 'pretrained-in-run' : createHash('sha256').update(readFileSync(baseWeightsFile)).digest('hex');
  return createHash('sha256').update(JSON.stringify({ ...what, base_weights: weights })).digest('hex').slice(0, 16);
}

export const baseWeightsFile = (dir: string): string => join(dir, 'model.safetensors');
