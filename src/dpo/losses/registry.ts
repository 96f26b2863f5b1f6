// The loss registry: every loss type by TRL's name, what each needs, and computeLoss, which validates the inputs
// and options once and returns a weighted sum of losses (TRL's --loss-type sigmoid,sft --loss-weights 1,0.5).
// The records are mapped types over `lossTypes`, so a type without a function or a spec does not compile.
import { add, mul, scale } from '../../engine/ops/index.js';
import type { Tensor } from '../../engine/tensor.js';
import { aotLoss, aotUnpairedLoss } from './aot.js';
import { apoDownLoss, apoZeroLoss, bcoPairLoss, ncaPairLoss, sppoHardLoss } from './anchored.js';
import { discopopLoss, exoPairLoss, hingeLoss, ipoLoss, robustLoss, sigmoidLoss, sigmoidNormLoss } from './dpo-family.js';
import { alphaDivergenceLoss, forwardKlLoss, jsDivergenceLoss, reverseKlLoss } from './f-divergence.js';
import { zeroRewards } from './logratios.js';
import { cpoLoss, orpoLoss, sftLoss, simpoLoss } from './reference-free.js';
import type { LossExtras, LossFn, LossOptions, LossOutput, PreferenceLogps } from './types.js';

export const lossTypes = [
  'sigmoid', 'sigmoid_norm', 'hinge', 'ipo', 'robust', 'exo_pair', 'discopop',
  'nca_pair', 'bco_pair', 'sppo_hard', 'apo_zero', 'apo_down', 'aot', 'aot_unpaired',
  'reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence',
  'simpo', 'cpo', 'orpo', 'sft',
] as const;

export type LossType = (typeof lossTypes)[number];

export const losses: { readonly [K in LossType]: LossFn } = {
  sigmoid: sigmoidLoss,
  sigmoid_norm: sigmoidNormLoss,
  hinge: hingeLoss,
  ipo: ipoLoss,
  robust: robustLoss,
  exo_pair: exoPairLoss,
  discopop: discopopLoss,
  nca_pair: ncaPairLoss,
  bco_pair: bcoPairLoss,
  sppo_hard: sppoHardLoss,
  apo_zero: apoZeroLoss,
  apo_down: apoDownLoss,
  aot: aotLoss,
  aot_unpaired: aotUnpairedLoss,
  reverse_kl: reverseKlLoss,
  forward_kl: forwardKlLoss,
  js_divergence: jsDivergenceLoss,
  alpha_divergence: alphaDivergenceLoss,
  simpo: simpoLoss,
  cpo: cpoLoss,
  orpo: orpoLoss,
  sft: sftLoss,
};

export interface LossSpec {
  /** Whether the loss reads refChosen/refRejected. */
  needsReference: boolean;
  /** The options it reads (so a CLI can warn about flags that have no effect). */
  reads: readonly (keyof LossOptions)[];
}

const dpoLike = (...reads: (keyof LossOptions)[]): LossSpec => ({ needsReference: true, reads: ['beta', ...reads] });

export const lossSpecs: { readonly [K in LossType]: LossSpec } = {
  sigmoid: dpoLike('labelSmoothing'),
  sigmoid_norm: dpoLike(),
  hinge: dpoLike(),
  ipo: dpoLike(),
  robust: dpoLike('labelSmoothing'),
  exo_pair: dpoLike('labelSmoothing'),
  discopop: dpoLike('discopopTau'),
  nca_pair: dpoLike(),
  bco_pair: dpoLike(),
  sppo_hard: dpoLike(),
  apo_zero: dpoLike(),
  apo_down: dpoLike(),
  aot: dpoLike('labelSmoothing'),
  aot_unpaired: dpoLike('labelSmoothing'),
  reverse_kl: dpoLike('labelSmoothing'),
  forward_kl: dpoLike('labelSmoothing'),
  js_divergence: dpoLike('labelSmoothing'),
  alpha_divergence: dpoLike('labelSmoothing', 'fAlphaDivergenceCoef'),
  simpo: { needsReference: false, reads: ['beta', 'simpoGamma', 'labelSmoothing'] },
  cpo: { needsReference: false, reads: ['beta', 'cpoAlpha', 'labelSmoothing'] },
  orpo: { needsReference: false, reads: ['beta'] },
  sft: { needsReference: false, reads: [] },
};

/** TRL's defaults (DPOConfig, and CPOConfig for simpo_gamma and cpo_alpha). */
export const defaultLossOptions: Readonly<LossOptions> = Object.freeze({
  beta: 0.1, // KL strength; also ORPO's λ and IPO's τ
  labelSmoothing: 0, // no assumed label noise: plain DPO
  simpoGamma: 0.5, // SimPO target margin (TRL's CPOConfig default)
  cpoAlpha: 1, // weight of CPO's NLL term
  fAlphaDivergenceCoef: 1, // α of alpha_divergence (α = 1 is forward KL)
  discopopTau: 0.05, // DiscoPOP temperature, the paper's value
});

export function needsReference(type: LossType): boolean {
  return lossSpecs[type].needsReference;
}

export function isLossType(name: string): name is LossType {
  return (lossTypes as readonly string[]).includes(name);
}

/** 'sigmoid,sft' (or a list) → ['sigmoid', 'sft'], with an error naming the unknown entry and the valid names. */
export function parseLossTypes(spec: string | readonly string[]): LossType[] {
  const names = (typeof spec === 'string' ? spec.split(',') : [...spec]).map((s) => s.trim());
  return names.map((name, i) => {
    if (isLossType(name)) return name;
    throw new Error(`loss type ${i + 1} '${name}' is unknown; expected one of: ${lossTypes.join(', ')}`);
  });
}

/** Checks the options the given losses read; each message names the TRL option and its valid range. */
export function validateLossOptions(types: readonly LossType[], o: LossOptions): void {
  const fail = (option: string, value: number, expected: string) => {
    throw new Error(`loss options: ${option} = ${value} is invalid for --loss-type ${types.join(',')}; expected ${expected}`);
  };
  const reads = new Set(types.flatMap((t) => lossSpecs[t].reads));
  if (reads.has('beta') && !(o.beta > 0 && Number.isFinite(o.beta))) fail('beta', o.beta, 'a finite number > 0');
  if (reads.has('labelSmoothing')) {
    const robust = types.includes('robust');
    if (!(o.labelSmoothing >= 0 && (robust ? o.labelSmoothing < 0.5 : o.labelSmoothing <= 0.5))) {
      fail('label_smoothing', o.labelSmoothing, robust ? '0 ≤ ε < 0.5 (robust divides by 1 − 2ε)' : '0 ≤ ε ≤ 0.5');
    }
  }
  if (reads.has('simpoGamma') && !Number.isFinite(o.simpoGamma)) fail('simpo_gamma', o.simpoGamma, 'a finite number');
  if (reads.has('cpoAlpha') && !(o.cpoAlpha >= 0 && Number.isFinite(o.cpoAlpha))) fail('cpo_alpha', o.cpoAlpha, 'a finite number ≥ 0');
  if (reads.has('fAlphaDivergenceCoef') && !(o.fAlphaDivergenceCoef > 0 && Number.isFinite(o.fAlphaDivergenceCoef))) {
    fail('f_alpha_divergence_coef', o.fAlphaDivergenceCoef, 'a finite number > 0 (α → 0 is reverse_kl: use that type)');
  }
  if (reads.has('discopopTau') && !(o.discopopTau > 0 && Number.isFinite(o.discopopTau))) fail('discopop_tau', o.discopopTau, 'a finite number > 0');
}

/** Checks that every per-pair tensor is (B) of one float dtype. */
export function validatePreferenceLogps(lp: PreferenceLogps): void {
  const entries = Object.entries(lp).filter((e): e is [string, Tensor] => e[1] !== null);
  const [, first] = entries[0];
  for (const [name, t] of entries) {
    if (t.rank !== 1 || t.shape[0] !== first.shape[0]) {
      throw new Error(`loss inputs: '${name}' has shape [${t.shape.join(', ')}] but every per-pair tensor must be (B) = [${first.shape[0]}]`);
    }
    if (t.dtype !== first.dtype || t.dtype === 'int32') {
      throw new Error(`loss inputs: '${name}' is ${t.dtype}, expected the float dtype of 'chosen' (${first.dtype})`);
    }
  }
  if ((lp.refChosen === null) !== (lp.refRejected === null)) throw new Error('loss inputs: refChosen and refRejected must both be tensors or both be null');
}

/**
 * Σ_k weights[k]·losses[types[k]](lp) per pair (weights null: all 1), times extras.pairWeights if given (WPO, applied
 * after the sum as TRL does). Rewards come from the first type that is not sft (zeros if all are); bcoRunningMean
 * from bco_pair. The caller reduces the (B) losses (the trainer: mean) and keeps bcoRunningMean for the next step.
 */
export function computeLoss(types: readonly LossType[], weights: readonly number[] | null, lp: PreferenceLogps, opts: LossOptions, extras: LossExtras = {}): LossOutput {
  if (types.length === 0) throw new Error('computeLoss: no loss type given; pass at least one, e.g. ["sigmoid"]');
  if (weights && weights.length !== types.length) {
    throw new Error(`computeLoss: ${weights.length} loss weights for ${types.length} loss types (${types.join(',')}); give one weight per type, or none for all 1`);
  }
  if (weights?.some((w) => !Number.isFinite(w))) throw new Error(`computeLoss: loss weights must be finite numbers, got ${weights.join(',')}`);
  for (const t of types) if (!isLossType(t)) parseLossTypes([t]); // throws with the list of valid names
  validatePreferenceLogps(lp);
  validateLossOptions(types, opts);
  let total: Tensor | null = null;
  let rewards: Pick<LossOutput, 'chosenRewards' | 'rejectedRewards'> | null = null;
  let bcoRunningMean: LossOutput['bcoRunningMean'];
  for (let k = 0; k < types.length; k++) {
    const out = losses[types[k]](lp, opts, extras);
    const w = weights ? weights[k] : 1;
    const weighted = w === 1 ? out.losses : scale(out.losses, w);
    total = total ? add(total, weighted) : weighted;
    if (!rewards && types[k] !== 'sft') rewards = out;
    if (out.bcoRunningMean) bcoRunningMean = out.bcoRunningMean;
  }
  if (!total) throw new Error('computeLoss: unreachable, types is non-empty');
  if (extras.pairWeights) {
    const pw = extras.pairWeights;
    if (pw.rank !== 1 || pw.size !== lp.chosen.size || pw.dtype !== lp.chosen.dtype) {
      throw new Error(`computeLoss: pairWeights must be (B) = [${lp.chosen.size}] ${lp.chosen.dtype}, got [${pw.shape.join(', ')}] ${pw.dtype}`);
    }
    total = mul(total, pw);
  }
  const { chosenRewards, rejectedRewards } = rewards ?? zeroRewards(lp.chosen);
  return { losses: total, chosenRewards, rejectedRewards, ...(bcoRunningMean ? { bcoRunningMean } : {}) };
}
