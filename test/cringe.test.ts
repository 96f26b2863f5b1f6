// The pairwise Cringe loss (online/cringe.ts): the top-k draw of positive tokens (forced with k = 1, and its law for
// k > 1), the token loss and the pairwise combination against hand-computed values, the whole batch path on a float64
// stub model against a loop-by-loop reference, float64 central-difference gradients (logits, the pair inputs, and
// every parameter of the stub through the chunked head), and determinism with the seed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Module, Rng, backward, currentBackend, gather, matmul, noGrad, randn, reshape, scope, sum, tanh, tensor, type Tensor } from '../src/index.js';
import { collatePreferenceBatch } from '../src/data/collate.js';
import type { TokenizedExample } from '../src/data/tokenize.js';
import type { CausalLM, KVCache } from '../src/models/types.js';
import { cringeTokenLosses, defaultCringeOptions, pairwiseCringeLoss, pairwiseCringeLosses, samplePositiveTokens, type CringeOptions } from '../src/online/cringe.js';
import { assertClose, gradCheck, randomTensor } from './helpers.js';

/** A float64 causal LM small enough to check by hand: hidden_t = tanh(E[id_t]), logits_t = W·hidden_t. */
class StubLM extends Module implements CausalLM {
  readonly modelType = 'stub';
  readonly numLayers = 1;
  readonly maxPositions = 64;
  readonly embed: Tensor; // (V, C)
  readonly head: Tensor; // (V, C)
  constructor(readonly vocabSize: number, readonly hiddenSize: number, seed: number) {
    super();
    const rng = new Rng(seed);
    this.embed = this.param('embed', randn([vocabSize, hiddenSize], rng, 1, 0, 'float64'));
    this.head = this.param('head', randn([vocabSize, hiddenSize], rng, 1, 0, 'float64'));
  }
  get lmHeadWeight(): Tensor {
    return this.head;
  }
  forward(ids: Tensor): Tensor {
    const [b, t] = ids.shape;
    return reshape(tanh(gather(this.embed, reshape(ids, [b * t]))), [b, t, this.hiddenSize]);
  }
  logits(hidden: Tensor): Tensor {
    return matmul(hidden, this.head, { transB: true });
  }
  newCache(): KVCache {
    throw new Error('StubLM does not generate');
  }
  /** (V) logits after token `id`, computed in plain float64 loops. */
  logitsAfter(id: number): number[] {
    const [v, c] = [this.vocabSize, this.hiddenSize];
    const h = Array.from({ length: c }, (_, j) => Math.tanh(this.embed.data[id * c + j]));
    return Array.from({ length: v }, (_, w) => h.reduce((s, x, j) => s + x * this.head.data[w * c + j], 0));
  }
}

const pair = (index: number, promptIds: number[], chosenIds: number[], rejectedIds: number[]): TokenizedExample => ({ index, source: `t#${index}`, promptIds, chosenIds, rejectedIds, promptMismatch: false });
/** Three pairs of unequal lengths, so the collated batch has padding in every half. */
const PAIRS = [pair(0, [1, 4], [5, 6, 2], [7, 2]), pair(1, [1], [8, 2], [3, 9, 9, 2]), pair(2, [1, 5, 6], [2], [4, 2])];
const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const logSumExp = (xs: number[]) => { const m = Math.max(...xs); return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0)); };
const argmaxExcept = (xs: number[], skip: number) => xs.reduce((best, x, i) => (i !== skip && (best < 0 || x > xs[best]) ? i : best), -1);

/** The per-pair loss with k = 1, written out loop by loop from the definitions. */
function referenceLosses(model: StubLM, pairs: readonly TokenizedExample[], o: CringeOptions): number[] {
  const scoreSeq = (prompt: number[], completion: number[]) => {
    const seq = [...prompt, ...completion];
    let logp = 0;
    let cringe = 0;
    for (let p = Math.max(prompt.length, 1); p < seq.length; p++) {
      const logits = model.logitsAfter(seq[p - 1]);
      logp += logits[seq[p]] - logSumExp(logits);
      cringe += softplus(logits[seq[p]] - logits[argmaxExcept(logits, seq[p])]);
    }
    return { logp, cringe, n: seq.length - Math.max(prompt.length, 1) };
  };
  return pairs.map((e) => {
    const w = scoreSeq(e.promptIds, e.chosenIds);
    const l = scoreSeq(e.promptIds, e.rejectedIds);
    const margin = o.lengthNormalizedMargin ? w.logp / w.n - l.logp / l.n : w.logp - l.logp;
    const gate = 1 / (1 + Math.exp(-(o.margin - margin) / o.temperature));
    return -w.logp / w.n + o.alpha * gate * (l.cringe / l.n);
  });
}

const K1: CringeOptions = { ...defaultCringeOptions, topK: 1, alpha: 0.7, margin: 0.5, temperature: 2 };

describe(`pairwise Cringe loss (${currentBackend().name} backend)`, () => {
  test('k = 1 draws the most likely token other than the negative one (the lower id on ties); k is capped at V − 1', () => {
    const logits = [2, 0.5, -1, 1, /* row 2 */ 0, 3, 1, 3];
    assert.deepEqual(Array.from(samplePositiveTokens(logits, 4, Int32Array.from([0, 1]), 1, new Rng(1))), [3, 3]);
    assert.deepEqual(Array.from(samplePositiveTokens(logits, 4, Int32Array.from([3, 2]), 1, new Rng(1))), [0, 1]);
    const all = samplePositiveTokens(logits, 4, Int32Array.from([0, 1]), 100, new Rng(2));
    assert.ok(all[0] !== 0 && all[1] !== 1, 'the negative token is never drawn, whatever k');
  });

  test('k > 1 draws among the top k (negative excluded) with probability ∝ exp(logit)', () => {
    const row = [0, Math.log(2), Math.log(4), 5, -10]; // token 3 is the negative one
    for (const [k, expected] of [[2, [0, 2 / 6, 4 / 6, 0, 0]], [3, [1 / 7, 2 / 7, 4 / 7, 0, 0]]] as const) {
      const draws = 30000;
      const counts = new Array<number>(5).fill(0);
      const drawn = samplePositiveTokens(new Array(draws).fill(row).flat(), 5, new Int32Array(draws).fill(3), k, new Rng(7));
      for (const id of drawn) counts[id]++;
      // 4 standard errors of a proportion near 1/2 over 30000 draws.
      assertClose(counts.map((c) => c / draws), expected, { atol: 4 * Math.sqrt(0.25 / draws), rtol: 0 }, `k = ${k} frequencies`);
    }
  });

  test('the Cringe token loss is softplus(s⁻ − s*) on raw logits: log(1 + e) and log 2 by hand', () => {
    const logits = tensor([2, 0.5, -1, 1, 0, 3, 1, 3], [2, 4], 'float64');
    const negatives = Int32Array.from([0, 1]);
    const positives = samplePositiveTokens(logits.data, 4, negatives, 1, new Rng(0)); // [3, 3]
    // Row 1: s⁻ = 2, s* = 1 → −log(e¹/(e¹ + e²)) = log(1 + e). Row 2: s⁻ = s* = 3 → log 2.
    assertClose(cringeTokenLosses(logits, negatives, positives).data, [1.3132616875182228, 0.6931471805599453], { atol: 1e-14 }, 'token losses');
  });

  test('L = NLL(y_w) + α·σ((b − M)/τ)·Cringe(y_l), by hand, with M on sums and on per-token averages', () => {
    // Pair 0: NLL = 2/2, Cringe = 0.8/1, M = −2 − (−5) = 3, g = σ((1 − 3)/2) = σ(−1). Pair 1: NLL = 6/3, Cringe = 1.2/2,
    // M = −6 − (−1) = −5, g = σ(3). Averages: M = −1 − (−5) = 4 and −2 − (−0.5) = −1.5.
    const x = {
      chosenLogps: tensor([-2, -6], [2], 'float64'), rejectedLogps: tensor([-5, -1], [2], 'float64'),
      chosenLengths: [2, 3], rejectedLengths: [1, 2], rejectedCringeSums: tensor([0.8, 1.2], [2], 'float64'),
    };
    const o: CringeOptions = { ...defaultCringeOptions, alpha: 0.5, margin: 1, temperature: 2 };
    const sums = pairwiseCringeLosses(x, o);
    assertClose(sums.losses.data, [1.1075765685479981, 2.28577223804673], { atol: 1e-14 }, 'losses (sums)');
    assertClose(sums.gates, [0.2689414213699951, 0.9525741268224334], { atol: 1e-15 }, 'gates');
    assertClose(sums.margins, [3, -5], { atol: 0 }, 'margins');
    assertClose(sums.nll.data, [1, 2], { atol: 0 }, 'NLL');
    assertClose(sums.cringe.data, [0.8, 0.6], { atol: 1e-15 }, 'Cringe');
    const averages = pairwiseCringeLosses(x, { ...o, lengthNormalizedMargin: true });
    assertClose(averages.losses.data, [1.0729702095225426, 2.2331899583524075], { atol: 1e-14 }, 'losses (length-normalised M)');
  });

  test('a batch through a float64 stub model equals the loop-by-loop definition (k = 1), at any chunk size', () => {
    const model = new StubLM(11, 5, 3);
    const batch = collatePreferenceBatch(PAIRS, { padTokenId: 0 });
    for (const o of [K1, { ...K1, lengthNormalizedMargin: true, chunkRows: 1 }, { ...K1, chunkRows: 2 }]) {
      noGrad(() => scope(() => {
        const r = pairwiseCringeLoss(model, batch, o, new Rng(0));
        assertClose(r.losses.data, referenceLosses(model, PAIRS, o), { atol: 1e-12, rtol: 1e-12 }, `losses (chunkRows ${o.chunkRows ?? 'default'})`);
      }));
    }
  });

  test('gradients match float64 central differences: the token loss w.r.t. logits, the pair loss w.r.t. its inputs', () => {
    const rng = new Rng(11);
    const logits = randomTensor(rng, [4, 6], 'float64', -2, 2);
    const negatives = Int32Array.from([0, 5, 2, 2]);
    const positives = samplePositiveTokens(logits.data, 6, negatives, 3, rng);
    gradCheck('cringe token loss', (l) => cringeTokenLosses(l, negatives, positives), [logits]);
    const lengths = { chosenLengths: [3, 1, 2], rejectedLengths: [2, 4, 0] }; // an empty rejected completion too
    for (const o of [{ ...K1, detachGate: false }, { ...K1, detachGate: false, lengthNormalizedMargin: true }]) {
      gradCheck('pairwise combination', (chosenLogps, rejectedLogps, rejectedCringeSums) => pairwiseCringeLosses({ chosenLogps, rejectedLogps, rejectedCringeSums, ...lengths }, o).losses,
        [randomTensor(rng, [3], 'float64', -6, -1), randomTensor(rng, [3], 'float64', -6, -1), randomTensor(rng, [3], 'float64', 0, 3)]);
    }
  });

  test('with the gate detached (the default), log π(y_l) gets no gradient from it and ∂L/∂log π(y_w) = −1/|y_w|', () => {
    scope(() => {
      const chosenLogps = tensor([-2, -6], [2], 'float64').requireGrad();
      const rejectedLogps = tensor([-5, -1], [2], 'float64').requireGrad();
      const out = pairwiseCringeLosses({ chosenLogps, rejectedLogps, chosenLengths: [2, 3], rejectedLengths: [1, 2], rejectedCringeSums: tensor([0.8, 1.2], [2], 'float64') }, defaultCringeOptions);
      backward(sum(out.losses));
      assertClose(chosenLogps.grad!.data, [-1 / 2, -1 / 3], { atol: 1e-15 }, '∂L/∂log π(y_w)');
      assert.ok(rejectedLogps.grad === null || rejectedLogps.grad.data.every((g) => g === 0), 'no gradient reaches log π(y_l) through a detached gate');
    });
  });

  test('every stub parameter\'s gradient through the chunked head matches central differences (gate differentiated, k = 1)', () => {
    const model = new StubLM(9, 4, 5);
    const batch = collatePreferenceBatch(PAIRS.map((e) => ({ ...e, chosenIds: e.chosenIds.map((t) => t % 9), rejectedIds: e.rejectedIds.map((t) => t % 9) })), { padTokenId: 0 });
    const o = { ...K1, detachGate: false, chunkRows: 2 };
    gradCheck('stub model parameters', () => pairwiseCringeLoss(model, batch, o, new Rng(0)).losses, [model.embed, model.head], { atol: 1e-7, rtol: 1e-6 });
  });

  test('the same seed gives the same positive tokens and loss; another seed other positive tokens (k = 5)', () => {
    const model = new StubLM(40, 6, 8);
    const batch = collatePreferenceBatch(PAIRS, { padTokenId: 0 });
    const o = { ...defaultCringeOptions, topK: 5 };
    const run = (seed: number) => noGrad(() => scope(() => {
      const r = pairwiseCringeLoss(model, batch, o, new Rng(seed));
      return { positives: Array.from(r.positives), losses: Array.from(r.losses.data) };
    }));
    assert.deepEqual(run(3), run(3));
    assert.notDeepEqual(run(3).positives, run(4).positives);
  });

  test('the Cringe term lowers the rejected completions\' mean log-likelihood, below its start and below NLL(y_w) alone', () => {
    // 30 plain gradient steps from the same start with α = 2 and with α = 0 (the NLL alone). On the stub, tokens share
    // features, so the NLL alone drags some rejected completions up with the chosen ones; the Cringe term pushes back.
    const batch = collatePreferenceBatch(PAIRS, { padTokenId: 0 });
    const meanAfterTraining = (alpha: number) => {
      const model = new StubLM(11, 5, 9);
      const o = { ...K1, alpha };
      const measure = () => noGrad(() => scope(() => {
        const r = pairwiseCringeLoss(model, batch, o, new Rng(0));
        const mean = (t: Tensor) => Array.from(t.data).reduce((a, b) => a + b, 0) / t.size;
        return { chosen: mean(r.chosenLogps), rejected: mean(r.rejectedLogps) };
      }));
      const before = measure();
      for (let step = 0; step < 30; step++) {
        scope(() => {
          for (const p of model.parameters()) { p.grad?.dispose(); p.grad = null; }
          backward(sum(pairwiseCringeLoss(model, batch, o, new Rng(step)).losses));
          for (const p of model.parameters()) for (let i = 0; i < p.size; i++) p.data[i] -= 0.1 * p.grad!.data[i];
        });
      }
      return { before, after: measure() };
    };
    const cringe = meanAfterTraining(2);
    const nllOnly = meanAfterTraining(0);
    assert.ok(cringe.after.rejected < cringe.before.rejected - 0.3, `mean log π(y_l): ${cringe.before.rejected} → ${cringe.after.rejected}`);
    assert.ok(cringe.after.rejected < nllOnly.after.rejected - 0.3, `mean log π(y_l) with Cringe ${cringe.after.rejected}, NLL alone ${nllOnly.after.rejected}`);
    assert.ok(cringe.after.chosen > cringe.before.chosen + 1, `mean log π(y_w): ${cringe.before.chosen} → ${cringe.after.chosen}`);
  });
});
