// RSO's rejection sampler (src/online/rso.ts) on the exact bandit of src/theory: accepted samples follow π* =
// π_ref·exp(r/β)/Z by a chi-square goodness-of-fit test (and the same test rejects π_ref), the β → ∞ / β → 0 limits,
// and the pair construction. The chi-square tail (regularised upper incomplete gamma) is computed here and checked.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng } from '../src/index.js';
import { rsoPairs, rsoSample, type RsoCandidate } from '../src/online/rso.js';
import { makeBandit, optimalPolicy } from '../src/theory/bandit.js';
import { totalVariation } from '../src/theory/numeric.js';
import { assertClose } from './helpers.js';

/** log Γ(x), x ≥ 0.5: Lanczos, g = 7, 9 coefficients (≈ 1e-15 relative). */
function logGamma(x: number): number {
  assert.ok(x >= 0.5, `logGamma: x = ${x} < 0.5 (no reflection here)`);
  const p = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  const z = x - 1;
  let a = p[0];
  for (let i = 1; i < 9; i++) a += p[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Q(a, x) = Γ(a, x)/Γ(a): the series for P = 1 − Q when x < a + 1, else Lentz's continued fraction for Q. */
function upperGammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const logPrefactor = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 1000 && Math.abs(term) > Math.abs(sum) * 1e-16; n++) {
      term *= x / (a + n);
      sum += term;
    }
    return 1 - sum * Math.exp(logPrefactor);
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(logPrefactor) * h;
}

/** P(χ²_dof > x). */
function chiSquareSf(x: number, dof: number): number {
  return upperGammaQ(dof / 2, x / 2);
}

interface ChiSquare {
  statistic: number;
  dof: number;
  pValue: number;
}

/** Pearson's test of counts against probabilities; cells expecting < 5 are pooled into one cell. */
function chiSquareTest(counts: readonly number[], probs: readonly number[]): ChiSquare {
  const n = counts.reduce((s, c) => s + c, 0);
  const cells: { observed: number; expected: number }[] = [];
  const pooled = { observed: 0, expected: 0 };
  counts.forEach((c, y) => {
    const expected = n * probs[y];
    if (expected < 5) {
      pooled.observed += c;
      pooled.expected += expected;
    } else cells.push({ observed: c, expected });
  });
  if (pooled.expected > 0) cells.push(pooled);
  const statistic = cells.reduce((s, { observed, expected }) => s + (observed - expected) ** 2 / expected, 0);
  const dof = cells.length - 1;
  return { statistic, dof, pValue: chiSquareSf(statistic, dof) };
}

describe('chi-square tail', () => {
  test('sf matches the 5% critical values of χ²_1 and χ²_5', () => {
    assertClose([chiSquareSf(3.841458820694124, 1), chiSquareSf(11.070497693516351, 5)], [0.05, 0.05], { atol: 1e-12, rtol: 1e-9 });
  });
  test('sf matches the closed forms e^{−x/2} (dof 2) and e^{−x/2}(1 + x/2) (dof 4), both branches', () => {
    const xs = [0.1, 1, 2, 5, 10, 40, 100];
    assertClose(xs.map((x) => chiSquareSf(x, 2)), xs.map((x) => Math.exp(-x / 2)), { atol: 1e-14, rtol: 1e-10 });
    assertClose(xs.map((x) => chiSquareSf(x, 4)), xs.map((x) => Math.exp(-x / 2) * (1 + x / 2)), { atol: 1e-14, rtol: 1e-10 });
  });
  test('sf(0, k) = 1', () => assert.equal(chiSquareSf(0, 7), 1));
});

/**
 * The exact law of rsoSample(·, 1, β) on a pool of N i.i.d. draws from π_ref (finite-N correction). Condition on the
 * pool's maximum being response j (rewards distinct): every draw lies in S = {y: r_y ≤ r_j}, at least one is j, and the
 * first pass accepts y w.p. a_y = exp((r_y − r_j)/β). With R = Σ_{z∈S} π(z)(1 − a_z) (a_j = 1, so R is the same
 * without j), P(first acceptance at position k is y, all in T) = R^{k−1}·π(y)a_y·F_T^{N−k}; inclusion–exclusion over
 * T = S and T = S∖{j} gives the event "max is j". As N → ∞ the max is the global one and the law → π*.
 */
function exactSingleSampleLaw(refProbs: readonly number[], rewards: readonly number[], beta: number, N: number): number[] {
  const K = refProbs.length;
  const law = new Array<number>(K).fill(0);
  for (let j = 0; j < K; j++) {
    const inS = rewards.map((r) => r <= rewards[j]);
    const accept = rewards.map((r) => Math.exp((r - rewards[j]) / beta));
    let R = 0;
    let F = 0;
    for (let z = 0; z < K; z++) if (inS[z]) { R += refProbs[z] * (1 - accept[z]); F += refProbs[z]; }
    const Fwithout = F - refProbs[j];
    let weight = 0; // Σ_k R^{k−1}(F^{N−k} − F'^{N−k})
    for (let k = 1; k <= N; k++) weight += R ** (k - 1) * (F ** (N - k) - Fwithout ** (N - k));
    let weightJ = 0; // y = j lies only in S: Σ_k R^{k−1} F^{N−k}
    for (let k = 1; k <= N; k++) weightJ += R ** (k - 1) * F ** (N - k);
    for (let y = 0; y < K; y++) {
      if (!inS[y]) continue;
      law[y] += refProbs[y] * accept[y] * (y === j ? weightJ : weight);
    }
  }
  return law;
}

/** Index drawn from a categorical by inverse CDF. */
function drawCategorical(cdf: readonly number[], rng: Rng): number {
  const u = rng.uniform();
  for (let y = 0; y < cdf.length - 1; y++) if (u < cdf[y]) return y;
  return cdf.length - 1;
}

describe('rsoSample on the exact bandit: accepted draws follow π* = π_ref·exp(r/β)/Z', () => {
  // One prompt, K responses; candidates are pools of N i.i.d. draws from π_ref (π_sft); one accepted sample per pool.
  const K = 10;
  const N = 64;
  const beta = 1;
  const pools = 20000;
  const [prompt] = makeBandit(new Rng(3), [K]);
  const piStar = optimalPolicy(prompt, beta);
  const cdf: number[] = [];
  prompt.refProbs.reduce((s, q) => (cdf.push(s + q), s + q), 0);
  /** Counts over responses of the one accepted sample from each of `numPools` pools of `poolSize` draws. */
  function acceptedCounts(poolSize: number, numPools: number, rng: Rng): number[] {
    const counts = new Array<number>(K).fill(0);
    for (let t = 0; t < numPools; t++) {
      const responses = Array.from({ length: poolSize }, () => drawCategorical(cdf, rng));
      const candidates: RsoCandidate[] = responses.map((y) => ({ reward: prompt.rewards[y] }));
      const [accepted] = rsoSample(candidates, 1, beta, rng);
      counts[responses[accepted]]++;
    }
    return counts;
  }
  const counts = acceptedCounts(N, pools, new Rng(2023));
  const vsOptimal = chiSquareTest(counts, piStar);
  const vsReference = chiSquareTest(counts, prompt.refProbs);
  console.log(`rso chi-square vs π*: X² = ${vsOptimal.statistic.toFixed(2)}, dof ${vsOptimal.dof}, p = ${vsOptimal.pValue.toExponential(3)}`);
  console.log(`rso chi-square vs π_ref: X² = ${vsReference.statistic.toFixed(1)}, dof ${vsReference.dof}, p = ${vsReference.pValue.toExponential(3)}`);
  console.log(`TV(π*, π_ref) = ${totalVariation(piStar, prompt.refProbs).toFixed(3)}`);

  test('the empirical distribution of accepted samples passes a chi-square test against π* (p > 0.001)', () => {
    assert.ok(vsOptimal.pValue > 0.001, `X² = ${vsOptimal.statistic}, dof ${vsOptimal.dof}, p = ${vsOptimal.pValue}`);
  });
  test('the exact finite-N law sums to 1, is within TV 1e-4 of π* at N = 64, and fits the samples too', () => {
    const law = exactSingleSampleLaw(prompt.refProbs, prompt.rewards, beta, N);
    assertClose([law.reduce((a, b) => a + b, 0)], [1], { atol: 1e-12, rtol: 0 }, 'Σ law');
    assert.ok(totalVariation(law, piStar) < 1e-4, `TV(law, π*) = ${totalVariation(law, piStar)}`);
    const vsExact = chiSquareTest(counts, law);
    assert.ok(vsExact.pValue > 0.001, `X² = ${vsExact.statistic}, p = ${vsExact.pValue}`);
  });
  test('the finite-N correction is real: at N = 3 the sampler fits the exact law and is far from π*', () => {
    const law = exactSingleSampleLaw(prompt.refProbs, prompt.rewards, beta, 3);
    assertClose([law.reduce((a, b) => a + b, 0)], [1], { atol: 1e-12, rtol: 0 }, 'Σ law');
    assert.ok(totalVariation(law, piStar) > 0.05, `TV(law at N = 3, π*) = ${totalVariation(law, piStar)}`);
    const small = acceptedCounts(3, pools, new Rng(99));
    const vsLaw = chiSquareTest(small, law);
    const vsStar = chiSquareTest(small, piStar);
    console.log(`N = 3: TV(law, π*) = ${totalVariation(law, piStar).toFixed(3)}; X² vs law ${vsLaw.statistic.toFixed(2)} (p ${vsLaw.pValue.toExponential(2)}), vs π* ${vsStar.statistic.toFixed(0)}`);
    assert.ok(vsLaw.pValue > 0.001, `vs exact law: X² = ${vsLaw.statistic}, p = ${vsLaw.pValue}`);
    assert.ok(vsStar.pValue < 1e-6, `vs π*: X² = ${vsStar.statistic}, p = ${vsStar.pValue}`);
  });
  test('the same test has power: against π_ref (the β = ∞ alternative) p < 1e-6', () => {
    assert.ok(vsReference.pValue < 1e-6, `X² = ${vsReference.statistic}, dof ${vsReference.dof}, p = ${vsReference.pValue}`);
  });
});

describe('rsoSample mechanics', () => {
  const rewards = [0.3, -1.2, 2.5, 0.9, 2.5, -0.4, 1.7, 0.0, -2.2, 1.1, 0.6, -0.8];
  const candidates = rewards.map((reward) => ({ reward }));

  test('returns at most numSamples distinct indices, and the whole pool when asked for more', () => {
    const rng = new Rng(7);
    for (const numSamples of [0, 1, 3, 8, 12, 20]) {
      for (const beta of [0.1, 1, 10]) {
        const accepted = rsoSample(candidates, numSamples, beta, rng);
        assert.equal(accepted.length, Math.min(numSamples, candidates.length), `numSamples ${numSamples}, β ${beta}`);
        assert.equal(new Set(accepted).size, accepted.length, `duplicates in ${accepted}`);
        for (const i of accepted) assert.ok(Number.isInteger(i) && i >= 0 && i < candidates.length);
      }
    }
  });

  test('β = ∞ accepts the first picks: each candidate is chosen uniformly (3 of 12 → 1/4 each)', () => {
    const rng = new Rng(11);
    const counts = new Array<number>(candidates.length).fill(0);
    const runs = 12000;
    for (let t = 0; t < runs; t++) {
      const accepted = rsoSample(candidates, 3, Infinity, rng);
      assert.equal(accepted.length, 3);
      for (const i of accepted) counts[i]++;
    }
    // 3 of 12 without replacement in one pass: inclusion probability 1/4 for every candidate.
    assertClose(counts.map((c) => c / runs), new Array<number>(candidates.length).fill(0.25), { atol: 0.02, rtol: 0 }, 'inclusion');
  });

  test('β = 0 accepts only the maximum-reward candidates (top-k-over-N)', () => {
    const rng = new Rng(13);
    for (let t = 0; t < 50; t++) {
      assert.deepEqual(rsoSample(candidates, 2, 0, rng).sort((a, b) => a - b), [2, 4]); // the two rewards of 2.5
      assert.deepEqual(rsoSample(candidates, 3, 0, rng).slice(2), [6]); // then 1.7
      assert.ok([2, 4].includes(rsoSample(candidates, 1, 0, rng)[0]));
    }
  });

  test('rejects bad arguments with the argument named', () => {
    const rng = new Rng(0);
    assert.throws(() => rsoSample(candidates, -1, 1, rng), /numSamples/);
    assert.throws(() => rsoSample(candidates, 1, Number.NaN, rng), /beta/);
    assert.throws(() => rsoSample([{ reward: Number.NaN }], 1, 1, rng), /candidate 0/);
  });
});

describe('rsoPairs', () => {
  const samples = [
    { index: 5, reward: 0.2 }, { index: 9, reward: 1.4 }, // 9 beats 5
    { index: 1, reward: 3.0 }, { index: 4, reward: -1.0 }, // 1 beats 4
    { index: 7, reward: 0.5 }, { index: 0, reward: 0.5 }, // tie: dropped
    { index: 3, reward: 2.0 }, { index: 8, reward: 2.1 }, // 8 beats 3
  ];

  test('first-round: consecutive pairs ranked by reward, the tie dropped', () => {
    assert.deepEqual(rsoPairs(samples, 'first-round'), [
      { chosenIndex: 9, rejectedIndex: 5 }, { chosenIndex: 1, rejectedIndex: 4 }, { chosenIndex: 8, rejectedIndex: 3 },
    ]);
  });

  test('first-round leaves an odd last sample out', () => {
    assert.deepEqual(rsoPairs(samples.slice(0, 3)), [{ chosenIndex: 9, rejectedIndex: 5 }]);
  });

  test('tournament: winners meet again (4 + 2 + 1 matches for 8, minus the tie)', () => {
    // Round 2: 9 vs 1 → 1; 7 (tie, first advances) vs 8 → 8. Final: 1 vs 8 → 1.
    assert.deepEqual(rsoPairs(samples, 'tournament'), [
      { chosenIndex: 9, rejectedIndex: 5 }, { chosenIndex: 1, rejectedIndex: 4 }, { chosenIndex: 8, rejectedIndex: 3 },
      { chosenIndex: 1, rejectedIndex: 9 }, { chosenIndex: 8, rejectedIndex: 7 }, { chosenIndex: 1, rejectedIndex: 8 },
    ]);
  });

  test('every pair prefers the higher reward', () => {
    const reward = new Map(samples.map((s) => [s.index, s.reward]));
    for (const p of rsoPairs(samples, 'tournament')) assert.ok(reward.get(p.chosenIndex)! > reward.get(p.rejectedIndex)!);
  });
});
