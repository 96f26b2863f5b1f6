// The theory of src/theory/ as tests: every claim `dpo theory` prints holds within its bound (same functions, seed 0),
// the finite-data curve falls as N grows, and the pieces the claims rest on are checked by value: closed forms by hand,
// gradients against central differences, the pair sampler against its weights, and the CLI against the library.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { Rng } from '../src/index.js';
import {
  dpoEmpiricalGradient, dpoEmpiricalLoss, dpoPopulationGradient, dpoPopulationLoss, logSigmoid, logSumExp, objective,
  objectiveGradient, optimalPolicy, pairSamplers, runTheory, samplePreferences, sigmoid, softValues, tabularPolicy,
  type BanditPrompt, type TokenTree,
} from '../src/theory/index.js';
import { formatReport } from '../src/cli/theory.js';
import { assertClose } from './helpers.js';

const report = runTheory(0);

describe('dpo theory, seed 0: every claim holds', () => {
  for (const c of report.claims) {
    test(`${c.id} ${c.statement}`, () => {
      assert.ok(c.pass, `${c.id}: measured ${c.value}, needs ${c.relation} ${c.bound}`);
    });
  }
});

describe('finite-data DPO (a.iii)', () => {
  const tv = report.curve.map((p) => p.meanTv);
  test('the largest N is under half the smallest N\'s distance to π*', () => {
    assert.ok(tv[tv.length - 1] < 0.5 * tv[0], `TV curve ${tv.join(', ')}`);
  });
  test('the curve falls overall: every N ≥ 1000 is closer to π* than every N ≤ 30', () => {
    const small = report.curve.filter((p) => p.pairsPerPrompt <= 30).map((p) => p.meanTv);
    const large = report.curve.filter((p) => p.pairsPerPrompt >= 1000).map((p) => p.meanTv);
    assert.ok(Math.max(...large) < Math.min(...small), `TV curve ${tv.join(', ')}`);
  });
});

/** Central differences of f at x, one coordinate at a time. */
function numericGradient(f: (x: number[]) => number, x: readonly number[], eps = 1e-6): number[] {
  return x.map((_, i) => {
    const up = x.slice();
    const down = x.slice();
    up[i] += eps;
    down[i] -= eps;
    return (f(up) - f(down)) / (2 * eps);
  });
}

const twoResponses: BanditPrompt = { refProbs: [0.5, 0.5], rewards: [1, 0] };
const rng = new Rng(7);
const bandit: BanditPrompt = { refProbs: [0.1, 0.2, 0.3, 0.4], rewards: [0.3, -1.2, 0.8, 0.1] };
const theta = [0.4, -0.3, 1.1, 0.2];

describe('bandit pieces by value', () => {
  test('π* of two equally likely responses with rewards 1, 0 at β = 1 is (e, 1)/(e + 1)', () => {
    assertClose(optimalPolicy(twoResponses, 1), [Math.E / (Math.E + 1), 1 / (Math.E + 1)], { atol: 1e-15, rtol: 0 });
  });
  test('J(π_ref) = E_ref[r] (no KL) and J(π*) = β·log Z', () => {
    assertClose([objective(twoResponses, [0.5, 0.5], 1)], [0.5], { atol: 1e-15, rtol: 0 });
    assertClose([objective(twoResponses, optimalPolicy(twoResponses, 1), 1)], [Math.log((Math.E + 1) / 2)], { atol: 1e-15, rtol: 0 });
  });
  test('∂J/∂θ matches central differences', () => {
    const J = (t: number[]) => objective(bandit, tabularPolicy(bandit, t), 0.5);
    assertClose(objectiveGradient(bandit, theta, 0.5), numericGradient(J, theta), { atol: 1e-8, rtol: 1e-6 });
  });
  test('∂L_DPO/∂θ (population, both pair distributions) matches central differences', () => {
    for (const k of ['uniform', 'reference'] as const) {
      const W = pairSamplers[k].weights(bandit);
      const L = (t: number[]) => dpoPopulationLoss(bandit, t, 0.7, W);
      assertClose(dpoPopulationGradient(bandit, theta, 0.7, W), numericGradient(L, theta), { atol: 1e-9, rtol: 1e-6 }, k);
    }
  });
  test('∂L_DPO/∂θ (empirical) matches central differences', () => {
    const data = samplePreferences(rng, bandit, pairSamplers.uniform.weights(bandit), 50);
    const L = (t: number[]) => dpoEmpiricalLoss(t, 0.7, data);
    assertClose(dpoEmpiricalGradient(theta, 0.7, data), numericGradient(L, theta), { atol: 1e-9, rtol: 1e-6 });
  });
  test('sampled win fractions match 2·W(a,b)·σ(r_a − r_b) within 5 standard errors', () => {
    const N = 200_000;
    const W = pairSamplers.reference.weights(bandit);
    const data = samplePreferences(rng, bandit, W, N);
    for (let a = 0; a < 4; a++) {
      for (let b = 0; b < 4; b++) {
        if (a === b) continue;
        const expected = 2 * W[a][b] * sigmoid(bandit.rewards[a] - bandit.rewards[b]);
        const se = Math.sqrt(expected * (1 - expected) / N);
        assert.ok(Math.abs(data.wins[a][b] / N - expected) < 5 * se, `wins[${a}][${b}]/N = ${data.wins[a][b] / N}, expected ${expected}`);
      }
    }
  });
  test('the DPO loss of an identical policy and reference (θ = 0) is log 2 for every pair distribution', () => {
    for (const k of ['uniform', 'reference'] as const) {
      assertClose([dpoPopulationLoss(bandit, [0, 0, 0, 0], 1, pairSamplers[k].weights(bandit))], [Math.log(2)], { atol: 1e-15, rtol: 0 }, k);
    }
  });
});

describe('numeric helpers at extreme inputs', () => {
  test('log σ and σ stay finite and exact-ish at ±800', () => {
    assertClose([logSigmoid(-800), logSigmoid(800), sigmoid(-800), sigmoid(800)], [-800, 0, 0, 1], { atol: 1e-300, rtol: 1e-15 });
  });
  test('log-sum-exp of [1000, 1000] is 1000 + log 2, and of −∞s is −∞', () => {
    assertClose([logSumExp([1000, 1000]), logSumExp([-Infinity, -Infinity])], [1000 + Math.log(2), -Infinity], { atol: 1e-12, rtol: 0 });
  });
});

describe('token MDP pieces by value', () => {
  // Depth 2: s₀ has one token (π_ref = 1, r = 1) leading to s₁, which has two equally likely tokens with r = 0 and 2.
  const tree: TokenTree = {
    depth: 2,
    states: [
      { depth: 0, next: [1], refProbs: [1], rewards: [1] },
      { depth: 1, next: [2, 3], refProbs: [0.5, 0.5], rewards: [0, 2] },
      { depth: 2, next: [], refProbs: [], rewards: [] },
      { depth: 2, next: [], refProbs: [], rewards: [] },
    ],
  };
  test('backward induction by hand: V*(s₁) = β·log((1 + e^(2/β))/2), V*(s₀) = 1 + V*(s₁), V = 0 at terminals', () => {
    const beta = 0.5;
    const v1 = beta * Math.log((1 + Math.exp(2 / beta)) / 2);
    const { V, Q } = softValues(tree, beta);
    assertClose(V, [1 + v1, v1, 0, 0], { atol: 1e-14, rtol: 0 }, 'V*');
    assertClose(Q.flat(), [1 + v1, 0, 2], { atol: 1e-14, rtol: 0 }, 'Q*');
  });
});

describe('dpo theory CLI', () => {
  test('--json prints, as its last line, the same claims the library computes, and exits 0', () => {
    const run = spawnSync(process.execPath, ['bin/dpo.js', 'theory', '--json', '--seed', '0'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    const printed = JSON.parse(lines[lines.length - 1]) as { pass: boolean; claims: { id: string; value: number }[] };
    assert.equal(printed.pass, true);
    assert.deepEqual(printed.claims.map((c) => [c.id, c.value]), report.claims.map((c) => [c.id, c.value]));
  });
  test('a claim outside its bound prints FAIL and the report names it', () => {
    const broken = { ...report.claims[0], value: 1, pass: false };
    const text = formatReport({ ...report, claims: [broken, ...report.claims.slice(1)], pass: false }, 0);
    assert.match(text, new RegExp(`^${broken.id} .* FAIL$`, 'm'));
    assert.match(text, new RegExp(`FAILED: ${broken.id.replace(/\./g, '\\.')} `));
  });
  test('an unknown flag is a usage error (exit 2) that names the flag', () => {
    const run = spawnSync(process.execPath, ['bin/dpo.js', 'theory', '--sed', '1'], { encoding: 'utf8' });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /unknown flag --sed/);
  });
});
