// The pairwise Cringe loss (Xu et al. 2023, "Some things are more CRINGE than others", arXiv 2312.16682) on a
// collated [chosen; rejected] batch of any CausalLM, and the small loop `dpo iterate` trains it with. Per pair:
//   L = NLL(y_w) + α·g·Cringe(y_l),   g = σ((b − M)/τ),   M = log π(y_w|x) − log π(y_l|x),
// where Cringe(y_l) (Adolphs et al. 2022) contrasts each token of y_l with a positive token s* drawn from the model's
// own top-k at that position: −log(e^{s*} / (e^{s*} + e^{s⁻})) on the raw logits. Not here: pairs or rounds (iterate.ts).
// Legend: B pairs, R = 2B rows, T tokens, C hidden, V vocabulary, N completion tokens of one half of the batch.
import { collatePreferenceBatch, IGNORE_INDEX, type PreferenceBatch } from '../data/collate.js';
import type { TokenizedExample } from '../data/tokenize.js';
import { backward, zeroGrad } from '../engine/autograd.js';
import { ShapeError } from '../engine/errors.js';
import { add, affine, concat, div, gather, logSoftmaxGather, matmul, mul, neg, reshape, scale, scatterAdd, sigmoid, slice, sub, sum } from '../engine/ops/index.js';
import { Rng } from '../engine/random.js';
import { isGradEnabled, noGrad, scope, tensor, zeros, type Tensor } from '../engine/tensor.js';
import type { CausalLM } from '../models/types.js';
import { softplus } from '../dpo/losses/index.js';
import { DEFAULT_CHUNK_ROWS } from '../dpo/logps.js';
import { clipGradNorm, createOptimizer } from '../dpo/optim.js';
import { learningRateAt, warmupStepsFrom, type SchedulerType } from '../dpo/schedule.js';
import { planRun, shuffledOrder, stepMicroBatches } from '../dpo/train-data.js';
import { checkFiniteGradNorm, TrainingDivergedError } from '../dpo/trainer.js';

export interface CringeOptions {
  /** α: weight of the Cringe term on y_l. */
  alpha: number;
  /** b: the margin M at which the gate is one half; the gate closes as M grows past it. */
  margin: number;
  /** τ > 0: temperature of the gate's sigmoid (small τ: a hard "M < b" switch). */
  temperature: number;
  /** k ≥ 1: s* is drawn from the k most likely tokens other than the negative one (Cringe's top-k). */
  topK: number;
  /** false: M compares sequence log-likelihoods (sums); true: per-token averages. */
  lengthNormalizedMargin: boolean;
  /** true: g is a constant weight (no gradient flows through the gate); false: it is differentiated too. */
  detachGate: boolean;
  /** Completion tokens per LM-head chunk. */
  chunkRows?: number;
}

/** Our defaults (see docs/online.md for what we could and could not check against the paper). */
export const defaultCringeOptions: Readonly<CringeOptions> = Object.freeze({
  alpha: 1, // the Cringe term weighs as much as the NLL term
  margin: 0, // g = 1/2 when both completions are equally likely
  temperature: 1, // one nat of margin moves the gate by ~e
  topK: 5, // the Cringe loss's top-k sampling of positive tokens
  lengthNormalizedMargin: false, // M on sequence log-likelihoods
  detachGate: true, // the gate selects pairs; it is not itself a training signal
});

/** Checks the options; throws naming the bad one. */
export function validateCringeOptions(o: CringeOptions): void {
  if (!(Number.isFinite(o.alpha) && o.alpha >= 0)) throw new RangeError(`cringe: alpha (--cringe-alpha) must be a number ≥ 0, got ${o.alpha}`);
  if (!Number.isFinite(o.margin)) throw new RangeError(`cringe: margin b (--cringe-margin) must be a finite number, got ${o.margin}`);
  if (!(Number.isFinite(o.temperature) && o.temperature > 0)) throw new RangeError(`cringe: temperature τ (--cringe-temperature) must be > 0, got ${o.temperature}`);
  if (!(Number.isSafeInteger(o.topK) && o.topK >= 1)) throw new RangeError(`cringe: top-k (--cringe-top-k) must be an integer ≥ 1, got ${o.topK}`);
}

// ------------------------------------------------------------------------------------------------ pure pieces
/**
 * (N) positive tokens: for token i, one of the k largest of logits[i, :] leaving out negatives[i] (ties: the lower
 * id), drawn with probability ∝ exp(logit) among those k. One uniform draw of `rng` per token, so k = 1 (the argmax
 * other than the negative) consumes the stream as any k does. `logits` is (N, V) row-major.
 */
export function samplePositiveTokens(logits: ArrayLike<number>, vocab: number, negatives: Int32Array, k: number, rng: Rng): Int32Array {
  const n = negatives.length;
  if (logits.length !== n * vocab) throw new ShapeError('samplePositiveTokens', `logits hold ${logits.length} values, expected N·V = ${n}·${vocab}`);
  if (vocab < 2) throw new ShapeError('samplePositiveTokens', `a vocabulary of ${vocab} leaves no token besides the negative one`);
  const kk = Math.min(k, vocab - 1);
  const ids = new Int32Array(kk);
  const values = new Float64Array(kk);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const row = i * vocab;
    let filled = 0;
    for (let v = 0; v < vocab; v++) {
      if (v === negatives[i]) continue;
      const x = logits[row + v];
      if (filled === kk && !(x > values[kk - 1])) continue; // strictly greater: an earlier id wins a tie
      let j = filled < kk ? filled++ : kk - 1; // insertion into the descending list
      while (j > 0 && x > values[j - 1]) {
        values[j] = values[j - 1];
        ids[j] = ids[j - 1];
        j--;
      }
      values[j] = x;
      ids[j] = v;
    }
    let total = 0;
    for (let j = 0; j < kk; j++) total += Math.exp(values[j] - values[0]);
    let u = rng.uniform() * total;
    let pick = kk - 1;
    for (let j = 0; j < kk; j++) {
      u -= Math.exp(values[j] - values[0]);
      if (u < 0) { pick = j; break; }
    }
    out[i] = ids[pick];
  }
  return out;
}

/** (N) Cringe token losses −log(e^{s*} / (e^{s*} + e^{s⁻})) = softplus(s⁻ − s*) on the raw (N, V) logits. */
export function cringeTokenLosses(logits: Tensor, negatives: Int32Array, positives: Int32Array): Tensor {
  const [n, v] = logits.shape;
  if (logits.rank !== 2 || negatives.length !== n || positives.length !== n) {
    throw new ShapeError('cringeTokenLosses', `expected logits (N, V) and N negatives and positives; got logits [${logits.shape.join(', ')}], ${negatives.length} and ${positives.length}`);
  }
  const entries = reshape(logits, [n * v, 1]); // (N·V, 1): one logit per row, so gather picks single entries
  const pick = (ids: Int32Array) => reshape(gather(entries, tensor(Int32Array.from(ids, (id, i) => i * v + id), [n], 'int32')), [n]);
  return softplus(sub(pick(negatives), pick(positives)));
}

export interface PairwiseCringeInputs {
  /** (B) Σ log π(y_w) and Σ log π(y_l). */
  chosenLogps: Tensor;
  rejectedLogps: Tensor;
  /** (B) scored tokens of y_w and y_l. */
  chosenLengths: ArrayLike<number>;
  rejectedLengths: ArrayLike<number>;
  /** (B) Σ over the tokens of y_l of the Cringe token loss. */
  rejectedCringeSums: Tensor;
}

export interface PairwiseCringeOutput {
  /** (B) per-pair losses, differentiable. */
  losses: Tensor;
  /** (B) NLL(y_w) = −Σ log π(y_w) / |y_w| and Cringe(y_l) = Σ_t cringe_t / |y_l| (token means per pair). */
  nll: Tensor;
  cringe: Tensor;
  /** (B) the margins M and gates g, as numbers. */
  margins: Float64Array;
  gates: Float64Array;
}

/** L_b = NLL(y_w) + α·σ((b − M)/τ)·Cringe(y_l), from per-pair log-probs and Cringe sums (eq. of the file header). */
export function pairwiseCringeLosses(x: PairwiseCringeInputs, o: CringeOptions): PairwiseCringeOutput {
  const b = x.chosenLogps.size;
  const dtype = x.chosenLogps.dtype;
  const count = (lengths: ArrayLike<number>) => tensor(Array.from(lengths, (l) => Math.max(1, l)), [b], dtype); // empty → 0, not NaN
  const [chosenCount, rejectedCount] = [count(x.chosenLengths), count(x.rejectedLengths)];
  const nll = neg(div(x.chosenLogps, chosenCount));
  const cringe = div(x.rejectedCringeSums, rejectedCount);
  const margin = o.lengthNormalizedMargin ? sub(div(x.chosenLogps, chosenCount), div(x.rejectedLogps, rejectedCount)) : sub(x.chosenLogps, x.rejectedLogps);
  const margins = Float64Array.from(margin.data);
  const gateArg = (m: number) => (o.margin - m) / o.temperature;
  const gate = o.detachGate
    ? tensor(Array.from(margins, (m) => 1 / (1 + Math.exp(-gateArg(m)))), [b], dtype)
    : sigmoid(affine(margin, -1 / o.temperature, o.margin / o.temperature));
  const losses = add(nll, scale(mul(gate, cringe), o.alpha));
  return { losses, nll, cringe, margins, gates: Float64Array.from(gate.data) };
}

// ------------------------------------------------------------------------------------------------ one batch
export interface PairwiseCringeResult extends PairwiseCringeOutput {
  /** (B) Σ log π(y_w), Σ log π(y_l) under the model, differentiable. */
  chosenLogps: Tensor;
  rejectedLogps: Tensor;
  /** The positive token drawn for each scored token of the rejected rows, in row then position order. */
  positives: Int32Array;
  /** Real (unpadded) tokens in the batch. */
  numTokens: number;
}

/** (rows) Σ of values (N) by row: a segment sum as a scatter-add into zeros. */
function rowSums(values: Tensor, rowOf: Int32Array, rows: number): Tensor {
  if (rowOf.length === 0) return zeros([rows], values.dtype);
  return reshape(scatterAdd(zeros([rows, 1], values.dtype), tensor(rowOf, [rowOf.length], 'int32'), reshape(values, [rowOf.length, 1])), [rows]);
}

/**
 * The pairwise Cringe loss of one collated batch. One forward pass over the 2B rows; the LM head runs only at
 * completion positions, in chunks of rows (the (R, T, V) logits are never built). On the rejected rows each chunk's
 * logits also give, under noGrad, the positive tokens drawn with `rng`, then the Cringe token losses, which autograd
 * differentiates like the rest.
 */
export function pairwiseCringeLoss(model: CausalLM, batch: PreferenceBatch, o: CringeOptions, rng: Rng): PairwiseCringeResult {
  const { B, T } = batch;
  const rows = 2 * B;
  if (batch.inputIds.length !== rows * T || batch.targets.length !== rows * T) {
    throw new ShapeError('pairwiseCringeLoss', `inputIds (${batch.inputIds.length}) and targets (${batch.targets.length}) must hold 2B·T = ${rows * T} values`);
  }
  const chunkRows = Math.max(1, Math.floor(o.chunkRows ?? DEFAULT_CHUNK_ROWS));
  const weight = model.lmHeadWeight; // (V, C)
  const [vocab, c] = weight.shape;
  // Scored positions (row-major, so the chosen rows' come first), their rows and next-token targets.
  const chosenFlat: number[] = [];
  const rejectedFlat: number[] = [];
  for (let i = 0; i < batch.targets.length; i++) if (batch.targets[i] !== IGNORE_INDEX) (i < B * T ? chosenFlat : rejectedFlat).push(i);
  const rowOf = (flat: number[], offset: number) => Int32Array.from(flat, (i) => Math.floor(i / T) - offset);
  const targetsOf = (flat: number[]) => Int32Array.from(flat, (i) => batch.targets[i]);
  let numTokens = 0;
  for (const m of batch.attentionMask) numTokens += m;

  const hidden = reshape(model.forward(tensor(batch.inputIds, [rows, T], 'int32'), { attentionMask: batch.attentionMask }), [rows * T, c]); // (R·T, C)
  /** Log-probs of the targets at `flat` (and, with cringe, the Cringe token losses), chunk by chunk. */
  const head = (flat: number[], withCringe: boolean) => {
    const next = targetsOf(flat); // the tokens scored: on the rejected rows, the negative tokens
    const positives = new Int32Array(withCringe ? flat.length : 0);
    const logps: Tensor[] = [];
    const cringes: Tensor[] = [];
    const picked = flat.length === 0 ? null : gather(hidden, tensor(Int32Array.from(flat), [flat.length], 'int32')); // (N, C)
    for (let start = 0; start < flat.length; start += chunkRows) {
      const end = Math.min(flat.length, start + chunkRows);
      const chunk = () => {
        const logits = matmul(slice(picked!, [start, 0], [end, c]), weight, { transB: true }); // (rows, V)
        const ids = next.subarray(start, end);
        const logp = logSoftmaxGather(logits, tensor(ids, [end - start], 'int32')); // (rows)
        if (!withCringe) return { logp, cringe: null };
        const drawn = noGrad(() => samplePositiveTokens(logits.floatData(), vocab, ids, o.topK, rng));
        positives.set(drawn, start);
        return { logp, cringe: cringeTokenLosses(logits, ids, drawn) };
      };
      // With grad the chunk's tensors belong to the autograd graph; without, free the logits now.
      const r = isGradEnabled() ? chunk() : scope(chunk);
      logps.push(r.logp);
      if (r.cringe) cringes.push(r.cringe);
    }
    const join = (parts: Tensor[]) => (parts.length === 1 ? parts[0] : parts.length === 0 ? zeros([0], weight.dtype) : concat(parts, 0));
    return { logps: join(logps), cringe: withCringe ? join(cringes) : null, positives };
  };
  const chosen = head(chosenFlat, false);
  const rejected = head(rejectedFlat, true);
  const chosenLogps = rowSums(chosen.logps, rowOf(chosenFlat, 0), B);
  const rejectedLogps = rowSums(rejected.logps, rowOf(rejectedFlat, B), B);
  const rejectedCringeSums = rowSums(rejected.cringe!, rowOf(rejectedFlat, B), B);
  const out = pairwiseCringeLosses({
    chosenLogps, rejectedLogps, rejectedCringeSums,
    chosenLengths: batch.completionLengths.subarray(0, B), rejectedLengths: batch.completionLengths.subarray(B, rows),
  }, o);
  return { ...out, chosenLogps, rejectedLogps, positives: rejected.positives, numTokens };
}

// ------------------------------------------------------------------------------------------------ the training loop
export interface CringeTrainOptions {
  cringe: CringeOptions;
  learningRate: number;
  lrSchedulerType: SchedulerType;
  /** Fraction of the steps spent warming up linearly from 0. */
  warmupRatio: number;
  /** AdamW's decoupled weight decay. */
  weightDecay: number;
  /** Clip the global gradient norm at this (0: no clipping). */
  maxGradNorm: number;
  perDeviceTrainBatchSize: number;
  gradientAccumulationSteps: number;
  numTrainEpochs: number;
  /** > 0: exactly this many optimizer steps; -1: from numTrainEpochs. */
  maxSteps: number;
  /** Seeds the per-epoch shuffle and the top-k draws. */
  seed: number;
  padTokenId: number;
}

/** One metrics.jsonl record per optimizer step: means over the step's pairs. */
export type CringeStepRecord = Record<string, number>;

/**
 * Trains `model` in place on the pairs with the pairwise Cringe loss: AdamW, the learning-rate schedule, global-norm
 * clipping and exact gradient accumulation (each micro-batch backpropagates Σ_b L_b / N over the step's N pairs).
 * Returns the per-step records; a non-finite loss or gradient throws TrainingDivergedError naming the step and pairs.
 */
export function trainPairwiseCringe(model: CausalLM, examples: readonly TokenizedExample[], o: CringeTrainOptions, onStep?: (record: CringeStepRecord) => void): CringeStepRecord[] {
  validateCringeOptions(o.cringe);
  const n = examples.length;
  if (n === 0) throw new RangeError('trainPairwiseCringe: no pairs to train on');
  const params = model.parameters();
  const optimizer = createOptimizer([...model.namedParameters()], { type: 'adamw', weightDecay: o.weightDecay, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
  const plan = planRun(n, o);
  const schedule = { type: o.lrSchedulerType, baseLr: o.learningRate, warmupSteps: warmupStepsFrom(0, o.warmupRatio, plan.totalSteps), totalSteps: plan.totalSteps };
  const rng = new Rng(o.seed);
  let order = shuffledOrder(n, rng);
  let [epoch, consumed] = [0, 0];
  const records: CringeStepRecord[] = [];
  try {
    for (let step = 0; step < plan.totalSteps;) {
      const micro = stepMicroBatches(n, consumed, o).map((positions) => positions.map((p) => examples[order[p]]));
      const stepPairs = micro.reduce((k, m) => k + m.length, 0);
      const totals = { loss: 0, nll: 0, cringe: 0, gate: 0, margin: 0, chosen: 0, rejected: 0 };
      zeroGrad(params);
      for (const pairs of micro) {
        scope(() => {
          const r = pairwiseCringeLoss(model, collatePreferenceBatch(pairs, { padTokenId: o.padTokenId }), o.cringe, rng);
          const bad = Array.from(r.losses.data, (v, i) => (Number.isFinite(v) ? -1 : i)).filter((i) => i >= 0);
          if (bad.length > 0) {
            throw new TrainingDivergedError(`pairwise cringe, step ${step + 1}: the loss is not finite for pair(s) ${bad.map((i) => pairs[i].index).join(', ')} ` +
              `(margins ${bad.map((i) => r.margins[i]).join(', ')}); lower --learning-rate or set --max-grad-norm`);
          }
          backward(scale(sum(r.losses), 1 / stepPairs));
          const add = (key: keyof typeof totals, values: ArrayLike<number>) => { for (let i = 0; i < values.length; i++) totals[key] += values[i]; };
          add('loss', r.losses.data);
          add('nll', r.nll.data);
          add('cringe', r.cringe.data);
          add('gate', r.gates);
          add('margin', r.margins);
          add('chosen', r.chosenLogps.data);
          add('rejected', r.rejectedLogps.data);
        });
      }
      const gradNorm = clipGradNorm(params, o.maxGradNorm);
      checkFiniteGradNorm(gradNorm, step + 1, micro.flat(), model.namedParameters(), null);
      const lr = learningRateAt(step, schedule);
      optimizer.step(lr);
      step++;
      consumed += micro.length;
      if (consumed * o.perDeviceTrainBatchSize >= n) [epoch, consumed, order] = [epoch + 1, 0, shuffledOrder(n, rng)];
      const mean = (v: number) => v / stepPairs;
      const record: CringeStepRecord = {
        loss: mean(totals.loss), nll: mean(totals.nll), cringe: mean(totals.cringe), 'cringe/gate': mean(totals.gate), 'cringe/margin': mean(totals.margin),
        'logps/chosen': mean(totals.chosen), 'logps/rejected': mean(totals.rejected), grad_norm: gradNorm, learning_rate: lr,
        epoch: epoch + (consumed * o.perDeviceTrainBatchSize) / n, step,
      };
      records.push(record);
      onStep?.(record);
    }
  } finally {
    for (const t of optimizer.stateTensors().values()) t.dispose();
  }
  return records;
}
