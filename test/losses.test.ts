// The DPO loss registry: every loss against a value computed by hand with Math.* on plain numbers (float64), float64
// central-difference gradients, finite losses and gradients at margins of ±1e4, the registry's contract
// (computeLoss, needsReference, BCO's running mean), and the LD-DPO and WPO log-prob helpers by value.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward, currentBackend, mean, sum, tensor, type DType, type Tensor } from '../src/index.js';
import {
  computeLoss, defaultLossOptions, ldDpoLogps, ldDpoSharedLengths, logSigmoid, losses, lossSpecs, lossTypes,
  needsReference, parseLossTypes, wpoTokenLogNormalizer, wpoWeights,
  type LossOptions, type LossType, type PreferenceLogps,
} from '../src/dpo/losses/index.js';
import { assertClose, gradCheck } from './helpers.js';

// ------------------------------------------------------------------------------------------------ plain-number math
const sig = (x: number) => 1 / (1 + Math.exp(-x));
const logSig = (x: number) => Math.log(sig(x)); // fine for the moderate values used by hand
const softplus = (x: number) => Math.log(1 + Math.exp(x));
const conservative = (z: number, eps: number) => -(1 - eps) * logSig(z) - eps * logSig(-z);
const sortedAscending = (xs: number[]) => xs.slice().sort((a, b) => a - b);

// Three pairs. Log-ratios: chosen [1, −1.5, 0.75], rejected [−1, 1.5, −0.4]; margins h = [2, −3, 1.15].
const policyChosen = [-12.0, -30.5, -7.25];
const policyRejected = [-15.0, -28.0, -9.0];
const refChosen = [-13.0, -29.0, -8.0];
const refRejected = [-14.0, -29.5, -8.6];
const chosenLength = [4, 10, 3];
const rejectedLength = [5, 8, 2];
const B = policyChosen.length;
const lrW = policyChosen.map((p, i) => p - refChosen[i]);
const lrL = policyRejected.map((p, i) => p - refRejected[i]);
const h = lrW.map((w, i) => w - lrL[i]);
const avgW = policyChosen.map((p, i) => p / chosenLength[i]);
const avgL = policyRejected.map((p, i) => p / rejectedLength[i]);
const chosenNll = policyChosen.map((p) => (-p * B) / chosenLength.reduce((a, b) => a + b, 0));

const opts: LossOptions = { beta: 0.5, labelSmoothing: 0.1, simpoGamma: 0.3, cpoAlpha: 0.7, fAlphaDivergenceCoef: 0.5, discopopTau: 0.05 };
const { beta, labelSmoothing: eps, simpoGamma, cpoAlpha, fAlphaDivergenceCoef: alpha, discopopTau: tau } = opts;
const bcoPrior = { mean: 0.2, count: 3 };

function preferenceLogps(dtype: DType = 'float64', withReference = true): PreferenceLogps {
  const t = (xs: number[]) => tensor(xs, [xs.length], dtype);
  return {
    chosen: t(policyChosen), rejected: t(policyRejected),
    refChosen: withReference ? t(refChosen) : null, refRejected: withReference ? t(refRejected) : null,
    chosenLength: t(chosenLength), rejectedLength: t(rejectedLength),
  };
}

// ------------------------------------------------------------------------------------------------ hand values
const aotDelta = ((m, r) => m.map((x, i) => x - r[i]))(
  sortedAscending(policyChosen.map((p, i) => p - policyRejected[i])), sortedAscending(refChosen.map((p, i) => p - refRejected[i])));
const aotUnpairedDelta = ((w, l) => w.map((x, i) => x - l[i]))(sortedAscending(lrW), sortedAscending(lrL));
const bcoBatchMean = (lrW.reduce((a, b) => a + b, 0) + lrL.reduce((a, b) => a + b, 0)) * beta / (2 * B);
const bcoDelta = bcoPrior.mean + (bcoBatchMean - bcoPrior.mean) / (bcoPrior.count + 1);
const logOdds = (avg: number) => avg - Math.log(1 - Math.exp(avg));

/** Loss of pair i, by hand. A mapped type: a loss type without a hand value does not compile. */
const byHand: { [K in LossType]: (i: number) => number } = {
  sigmoid: (i) => conservative(beta * h[i], eps),
  sigmoid_norm: (i) => -logSig(beta * (lrW[i] / chosenLength[i] - lrL[i] / rejectedLength[i])),
  hinge: (i) => Math.max(0, 1 - beta * h[i]),
  ipo: (i) => (lrW[i] / chosenLength[i] - lrL[i] / rejectedLength[i] - 1 / (2 * beta)) ** 2,
  robust: (i) => (-(1 - eps) * logSig(beta * h[i]) + eps * logSig(-beta * h[i])) / (1 - 2 * eps),
  exo_pair: (i) => sig(beta * h[i]) * (logSig(beta * h[i]) - Math.log(1 - eps)) + sig(-beta * h[i]) * (logSig(-beta * h[i]) - Math.log(eps)),
  discopop: (i) => {
    const rho = beta * h[i];
    return (1 - sig(rho / tau)) * -logSig(rho) + sig(rho / tau) * Math.exp(-rho);
  },
  nca_pair: (i) => -logSig(beta * lrW[i]) - 0.5 * logSig(-beta * lrW[i]) - 0.5 * logSig(-beta * lrL[i]),
  bco_pair: (i) => -logSig(beta * lrW[i] - bcoDelta) - logSig(-(beta * lrL[i] - bcoDelta)),
  sppo_hard: (i) => (lrW[i] - 1 / (2 * beta)) ** 2 + (lrL[i] + 1 / (2 * beta)) ** 2,
  apo_zero: (i) => 1 - sig(beta * lrW[i]) + sig(beta * lrL[i]),
  apo_down: (i) => sig(beta * lrW[i]) + 1 - sig(beta * h[i]),
  aot: (i) => conservative(beta * aotDelta[i], eps),
  aot_unpaired: (i) => conservative(beta * aotUnpairedDelta[i], eps),
  reverse_kl: (i) => conservative(beta * h[i], eps),
  forward_kl: (i) => conservative(beta * (Math.exp(-lrL[i]) - Math.exp(-lrW[i])), eps),
  js_divergence: (i) => conservative(beta * (h[i] - (softplus(lrW[i]) - softplus(lrL[i]))), eps),
  alpha_divergence: (i) => conservative(beta * (Math.exp(-alpha * lrL[i]) - Math.exp(-alpha * lrW[i])) / alpha, eps),
  simpo: (i) => conservative(beta * (avgW[i] - avgL[i]) - simpoGamma, eps),
  cpo: (i) => conservative(beta * (policyChosen[i] - policyRejected[i]), eps) + cpoAlpha * chosenNll[i],
  orpo: (i) => chosenNll[i] - beta * logSig(logOdds(avgW[i]) - logOdds(avgL[i])),
  sft: (i) => chosenNll[i],
};

/** The implicit rewards each loss reports, by hand: β × the log-ratio (or log-prob) it uses. */
function rewardsByHand(type: LossType): [number[], number[]] {
  const times = (xs: number[]) => xs.map((x) => beta * x);
  switch (type) {
    case 'ipo': case 'sigmoid_norm':
      return [times(lrW.map((x, i) => x / chosenLength[i])), times(lrL.map((x, i) => x / rejectedLength[i]))];
    case 'simpo': case 'orpo': return [times(avgW), times(avgL)];
    case 'cpo': return [times(policyChosen), times(policyRejected)];
    case 'sft': return [[0, 0, 0], [0, 0, 0]];
    default: return [times(lrW), times(lrL)];
  }
}

const backendName = currentBackend().name;

describe(`DPO losses (${backendName} backend)`, () => {
  for (const type of lossTypes) {
    test(`${type}: per-pair losses and rewards match the hand-computed values (float64)`, () => {
      const out = losses[type](preferenceLogps('float64', needsReference(type)), opts, { bcoRunningMean: bcoPrior });
      assertClose(out.losses.toArray(), [0, 1, 2].map(byHand[type]), { atol: 1e-12, rtol: 1e-10 }, `${type} losses`);
      const [chosenRewards, rejectedRewards] = rewardsByHand(type);
      assertClose(out.chosenRewards.toArray(), chosenRewards, { atol: 1e-12, rtol: 1e-10 }, `${type} chosen rewards`);
      assertClose(out.rejectedRewards.toArray(), rejectedRewards, { atol: 1e-12, rtol: 1e-10 }, `${type} rejected rewards`);
      assert.equal(out.chosenRewards.requiresGrad, false, 'rewards are detached');
    });
  }

  test('float32 inputs give the float64 hand values within float32 precision', () => {
    for (const type of lossTypes) {
      const out = losses[type](preferenceLogps('float32', needsReference(type)), opts, { bcoRunningMean: bcoPrior });
      assert.equal(out.losses.dtype, 'float32');
      assertClose(out.losses.toArray(), [0, 1, 2].map(byHand[type]), { atol: 1e-5, rtol: 1e-4 }, `${type} float32`);
    }
  });

  test('logps of an identical policy and reference give loss = log 2 for sigmoid and every f-divergence', () => {
    const t = (xs: number[]) => tensor(xs, [3], 'float64');
    const lp: PreferenceLogps = {
      chosen: t([-3, -40, -0.5]), rejected: t([-7, -2, -9]), refChosen: t([-3, -40, -0.5]), refRejected: t([-7, -2, -9]),
      chosenLength: t([2, 9, 1]), rejectedLength: t([3, 1, 4]),
    };
    for (const type of ['sigmoid', 'reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence'] as const) {
      for (const labelSmoothing of [0, 0.2]) {
        const out = losses[type](lp, { ...defaultLossOptions, labelSmoothing }, {});
        assertClose(out.losses.toArray(), [Math.LN2, Math.LN2, Math.LN2], { atol: 1e-15, rtol: 1e-14 }, `${type} ε=${labelSmoothing}`);
        assertClose(out.chosenRewards.toArray(), [0, 0, 0], { atol: 0, rtol: 0 }, `${type} rewards`);
      }
    }
  });

  test('exo_pair with label_smoothing 0 uses ε = 1e-3, as TRL does', () => {
    const out = losses.exo_pair(preferenceLogps(), { ...opts, labelSmoothing: 0 }, {});
    const e = 1e-3;
    const expected = h.map((x) => sig(beta * x) * (logSig(beta * x) - Math.log(1 - e)) + sig(-beta * x) * (logSig(-beta * x) - Math.log(e)));
    assertClose(out.losses.toArray(), expected, { atol: 1e-12, rtol: 1e-10 });
  });

  test('d logσ(x)/dx = σ(−x), including x = 0 and x = ±1e4', () => {
    const xs = [-1e4, -3, 0, 2, 1e4];
    const x = tensor(xs, [5], 'float64').requireGrad();
    backward(sum(logSigmoid(x)));
    assertClose(x.grad!.toArray(), xs.map((v) => sig(-v)), { atol: 1e-15, rtol: 1e-12 });
  });
});

describe(`DPO loss gradients (float64 central differences, ${backendName} backend)`, () => {
  // β = 0.3 keeps hinge away from its kink; a huge BCO count keeps δ (not differentiated) fixed under perturbation.
  const gradOpts: LossOptions = { ...opts, beta: 0.3 };
  for (const type of lossTypes) {
    test(`${type}: analytic gradient matches central differences`, () => {
      const lp = preferenceLogps('float64');
      gradCheck(type, (chosen, rejected, rc, rr) => losses[type](
        { ...lp, chosen, rejected, refChosen: rc, refRejected: rr }, gradOpts, { bcoRunningMean: { mean: 0.1, count: 1e12 } },
      ).losses, [lp.chosen, lp.rejected, lp.refChosen!, lp.refRejected!], { atol: 1e-7, rtol: 1e-6 });
    });
  }
});

describe(`DPO losses at margins of ±1e4 (${backendName} backend)`, () => {
  // Rows: h = +1e4 and −1e4 through the policy, then through the reference; every log-ratio is 0 or ±1e4.
  const extreme = { chosen: [-1, -10001, -1, -1], rejected: [-10001, -1, -1, -1], refChosen: [-1, -1, -10001, -1], refRejected: [-1, -1, -1, -10001] };
  for (const dtype of ['float32', 'float64'] as const) {
    test(`every loss and its gradient stay finite (${dtype})`, () => {
      for (const type of lossTypes) {
        const t = (xs: number[]) => tensor(xs, [4], dtype).requireGrad();
        const lp: PreferenceLogps = {
          chosen: t(extreme.chosen), rejected: t(extreme.rejected), refChosen: t(extreme.refChosen), refRejected: t(extreme.refRejected),
          chosenLength: tensor([1, 1, 1, 1], [4], dtype), rejectedLength: tensor([1, 1, 1, 1], [4], dtype),
        };
        const out = computeLoss([type], null, lp, defaultLossOptions);
        assert.ok(out.losses.toArray().every(Number.isFinite), `${type} ${dtype}: losses ${out.losses.toArray()}`);
        backward(mean(out.losses));
        for (const [name, x] of Object.entries(lp)) {
          const g = (x as Tensor).grad;
          if (g) assert.ok(g.toArray().every(Number.isFinite), `${type} ${dtype}: d loss / d ${name} = ${g.toArray()}`);
        }
      }
    });
  }
});

describe('the loss registry', () => {
  test('has a function and a spec for every loss type, and nothing else', () => {
    assert.deepEqual(Object.keys(losses).sort(), [...lossTypes].sort());
    assert.deepEqual(Object.keys(lossSpecs).sort(), [...lossTypes].sort());
  });

  test('needsReference is false exactly for simpo, cpo, orpo and sft', () => {
    assert.deepEqual(lossTypes.filter((t) => !needsReference(t)), ['simpo', 'cpo', 'orpo', 'sft']);
  });

  test('a reference loss without reference log-probs fails with an actionable message', () => {
    assert.throws(() => computeLoss(['sigmoid'], null, preferenceLogps('float64', false), opts), /loss 'sigmoid': needs reference log-probs.*reference_free/);
  });

  test('computeLoss sums weighted losses: sigmoid,sft with weights 1,0.5 (TRL --loss-weights 1,0.5)', () => {
    const out = computeLoss(['sigmoid', 'sft'], [1, 0.5], preferenceLogps(), opts);
    assertClose(out.losses.toArray(), [0, 1, 2].map((i) => byHand.sigmoid(i) + 0.5 * byHand.sft(i)), { atol: 1e-12, rtol: 1e-10 });
    assertClose(out.chosenRewards.toArray(), lrW.map((x) => beta * x), { atol: 1e-12 }, 'rewards come from sigmoid, not sft');
  });

  test('computeLoss multiplies the combined losses by extras.pairWeights (WPO)', () => {
    const pairWeights = tensor([0.5, 1, 0.25], [3], 'float64');
    const out = computeLoss(['ipo', 'sigmoid'], null, preferenceLogps(), opts, { pairWeights });
    assertClose(out.losses.toArray(), [0, 1, 2].map((i) => (byHand.ipo(i) + byHand.sigmoid(i)) * [0.5, 1, 0.25][i]), { atol: 1e-12, rtol: 1e-10 });
  });

  test('computeLoss rejects mismatched weights, bad options and mixed dtypes, naming the fix', () => {
    assert.throws(() => computeLoss(['sigmoid', 'sft'], [1], preferenceLogps(), opts), /1 loss weights for 2 loss types/);
    assert.throws(() => computeLoss(['robust'], null, preferenceLogps(), { ...opts, labelSmoothing: 0.5 }), /label_smoothing = 0.5.*robust divides by 1 − 2ε/);
    assert.throws(() => computeLoss(['sigmoid'], null, preferenceLogps(), { ...opts, beta: 0 }), /beta = 0 is invalid/);
    assert.throws(() => computeLoss([], null, preferenceLogps(), opts), /no loss type given/);
    const mixed = { ...preferenceLogps(), rejected: tensor(policyRejected, [3], 'float32') };
    assert.throws(() => computeLoss(['sigmoid'], null, mixed, opts), /'rejected' is float32, expected the float dtype of 'chosen' \(float64\)/);
  });

  test('parseLossTypes reads TRL\'s comma list and lists the valid names for an unknown one', () => {
    assert.deepEqual(parseLossTypes('sigmoid, sft'), ['sigmoid', 'sft']);
    assert.throws(() => parseLossTypes('sigmoid,aot_pair'), /loss type 2 'aot_pair' is unknown; expected one of: .*aot_unpaired/);
  });

  test('length-normalised losses reject an empty completion, naming the pair', () => {
    const lp = { ...preferenceLogps(), rejectedLength: tensor([5, 0, 2], [3], 'float64') };
    assert.throws(() => losses.ipo(lp, opts, {}), /loss 'ipo': pair 1 has a rejected completion of length 0/);
  });

  test('bco_pair: δ is the running mean of batch mean rewards, updated before use and returned as state', () => {
    const first = losses.bco_pair(preferenceLogps(), opts, {});
    assert.deepEqual(first.bcoRunningMean, { mean: first.bcoRunningMean!.mean, count: 1 });
    assertClose([first.bcoRunningMean!.mean], [bcoBatchMean], { atol: 1e-15 }, 'first step: δ = this batch mean');
    const expectedFirst = lrW.map((w, i) => -logSig(beta * w - bcoBatchMean) - logSig(-(beta * lrL[i] - bcoBatchMean)));
    assertClose(first.losses.toArray(), expectedFirst, { atol: 1e-12, rtol: 1e-10 });
    // A second batch with every log-prob shifted: its mean reward differs; δ becomes the mean of the two batch means.
    const shifted = { ...preferenceLogps(), chosen: tensor(policyChosen.map((x) => x + 2), [3], 'float64') };
    const secondMean = bcoBatchMean + (2 * beta * B) / (2 * B);
    const second = computeLoss(['bco_pair'], null, shifted, opts, { bcoRunningMean: first.bcoRunningMean });
    assertClose([second.bcoRunningMean!.mean], [(bcoBatchMean + secondMean) / 2], { atol: 1e-15 });
    assert.equal(second.bcoRunningMean!.count, 2);
  });

  test('reference-free losses run without reference log-probs', () => {
    for (const type of ['simpo', 'cpo', 'orpo', 'sft'] as const) {
      const out = computeLoss([type], null, preferenceLogps('float64', false), opts);
      assertClose(out.losses.toArray(), [0, 1, 2].map(byHand[type]), { atol: 1e-12, rtol: 1e-10 }, type);
    }
  });
});

describe('log-prob-side helpers: LD-DPO and WPO', () => {
  // Two pairs, R = 4 rows [chosen 0, chosen 1, rejected 0, rejected 1], tokens by row then position.
  const tokenRow = Int32Array.from([0, 0, 0, 1, 2, 2, 3, 3, 3]);
  const tokenValues = [-1, -2, -3, -0.5, -4, -5, -1, -1, -2];

  test('ldDpoSharedLengths gives min(|y_w|, |y_l|) to both rows of a pair', () => {
    assert.deepEqual(Array.from(ldDpoSharedLengths([3, 1, 2, 3])), [2, 1, 2, 1]);
  });

  test('ldDpoLogps weighs tokens beyond the shared length by α, and is plain summation at α = 1', () => {
    const tokens = tensor(tokenValues, [9], 'float64').requireGrad();
    const shared = ldDpoSharedLengths([3, 1, 2, 3]);
    const desensitised = ldDpoLogps(tokens, tokenRow, shared, 0.25);
    assertClose(desensitised.toArray(), [-1 - 2 + 0.25 * -3, -0.5, -4 - 5, -1 + 0.25 * (-1 - 2)], { atol: 1e-15 });
    backward(sum(desensitised));
    assertClose(tokens.grad!.toArray(), [1, 1, 0.25, 1, 1, 1, 1, 0.25, 0.25], { atol: 0 }, 'd / d token = its weight');
    assertClose(ldDpoLogps(tokens, tokenRow, shared, 1).toArray(), [-6, -0.5, -9, -4], { atol: 1e-15 });
    assert.throws(() => ldDpoLogps(tokens, tokenRow, shared, 1.5), /ld_alpha must be in \[0, 1\]/);
  });

  test('wpoTokenLogNormalizer is log Σ_v p(v)²', () => {
    const logits = tensor([0, Math.LN2, 0, 0], [2, 2], 'float64');
    // Row 0: p = (1/3, 2/3), Σp² = 5/9. Row 1: p = (1/2, 1/2), Σp² = 1/2.
    assertClose(wpoTokenLogNormalizer(logits).toArray(), [Math.log(5 / 9), Math.log(1 / 2)], { atol: 1e-14 });
  });

  test('wpoWeights = min(exp(mean_t(log p − log Σp²) over y_w + same over y_l), 1) per pair', () => {
    const norms = [-0.5, -1.5, -2, -0.25, -3.5, -4.5, -3, -2.5, -3];
    const weights = wpoWeights(tensor(tokenValues, [9], 'float64'), tensor(norms, [9], 'float64'), tokenRow, 4);
    const rowMean = (r: number) => {
      const ks = [...tokenRow.keys()].filter((k) => tokenRow[k] === r);
      return ks.reduce((acc, k) => acc + tokenValues[k] - norms[k], 0) / ks.length;
    };
    const expected = [0, 1].map((i) => Math.min(Math.exp(rowMean(i) + rowMean(2 + i)), 1));
    assert.ok(expected[0] < 1 && expected[1] === 1, 'the fixture covers both sides of the clamp');
    assertClose(weights.toArray(), expected, { atol: 1e-15 });
  });
});
