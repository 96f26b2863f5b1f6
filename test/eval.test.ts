// dpo/eval, the loss registry on real log-probs, and the `dpo eval` / `dpo token-rewards` commands, against the
// float64 PyTorch fixture (test/fixtures/dpo, scripts/fixtures/make_dpo_fixtures.py): GPT-2 as the policy and a
// perturbed copy as the reference, on five pre-tokenized pairs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { currentBackend, scope, tensor } from '../src/index.js';
import { loadPretrained } from '../src/io/pretrained.js';
import { computeLoss, defaultLossOptions, lossTypes, needsReference, type LossOptions } from '../src/dpo/losses/index.js';
import { evaluateDpo, EVAL_METRIC_KEYS, type DpoEvalResult } from '../src/dpo/eval.js';
import type { CausalLM } from '../src/models/index.js';
import { assertClose, type Tolerance } from './helpers.js';
import { MODEL_FIXTURES } from './model-fixtures.js';
import { DPO_FIXTURES, fixtureExamples, readDpoExpected } from './dpo-fixtures.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const POLICY_DIR = join(MODEL_FIXTURES, 'gpt2');
const REF_DIR = join(DPO_FIXTURES, 'gpt2-ref');
const PAIRS = join(DPO_FIXTURES, 'pairs.jsonl');
const ex = readDpoExpected();

// float32 log-probs (|Σ| ≤ 45) against float64: 1e-4 absolute; losses and rewards are smooth in them.
const FLOAT32: Tolerance = { atol: 1e-4, rtol: 1e-4 };
// Loss formulas on the fixture's own float64 log-probs: only float64 rounding separates the two implementations.
const FLOAT64: Tolerance = { atol: 1e-10, rtol: 1e-9 };
// The fixture's loss_options (TRL's names) as LossOptions.
const o = ex.loss_options;
const options: LossOptions = {
  beta: o.beta, labelSmoothing: o.label_smoothing, simpoGamma: o.simpo_gamma, cpoAlpha: o.cpo_alpha,
  fAlphaDivergenceCoef: o.f_alpha_divergence_coef, discopopTau: o.discopop_tau,
};
const ROW_KEYS = ['index', 'chosen_logps', 'rejected_logps', 'ref_chosen_logps', 'ref_rejected_logps', 'chosen_rewards', 'rejected_rewards', 'loss'];

const policy = loadPretrained(POLICY_DIR).model;
const reference = loadPretrained(REF_DIR).model;
const scratch = mkdtempSync(join(tmpdir(), 'dpo-eval-test-'));
after(() => {
  policy.dispose();
  reference.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

function evaluate(refModel: CausalLM | null, batchSize: number, lossTypesUsed = ['sigmoid'] as (typeof lossTypes)[number][], lossOptions: Partial<LossOptions> = {}): DpoEvalResult {
  return scope(() => evaluateDpo({ model: policy, refModel, examples: fixtureExamples(), lossTypes: lossTypesUsed, lossOptions, batchSize }));
}

function checkAgainstFixture(result: DpoEvalResult): void {
  assert.deepEqual(Object.keys(result.metrics), [...EVAL_METRIC_KEYS]);
  for (const key of EVAL_METRIC_KEYS) assertClose([result.metrics[key]], [ex.eval.metrics[key]], FLOAT32, key);
  assert.deepEqual(result.rows.map((r) => r.index), [0, 1, 2, 3, 4], 'rows in input order');
  for (const key of ROW_KEYS) assertClose(result.rows.map((r) => r[key as keyof typeof r] as number), ex.eval.per_example.map((r) => r[key]), FLOAT32, `per-example ${key}`);
}

describe(`evaluateDpo (${currentBackend().name} backend)`, () => {
  test('metrics have exactly TRL\'s eval names and match the PyTorch values; rows match per example', () => {
    checkAgainstFixture(evaluate(reference, 2));
  });

  // The reference backend's loops are bit-identical at any padding; the native kernels' SIMD sums over a padded
  // row may group the same terms differently, so there the results agree to float32 rounding.
  test('the batch size does not change any result: 1, 3 and 5 pairs per batch agree', () => {
    const [one, three, five] = [1, 3, 5].map((b) => evaluate(reference, b));
    if (currentBackend().name === 'reference') {
      assert.deepEqual(three, one);
      assert.deepEqual(five, one);
    }
    for (const other of [three, five]) {
      assertClose(Object.values(other.metrics), Object.values(one.metrics), { atol: 1e-6, rtol: 1e-6 }, 'metrics');
      for (const key of ROW_KEYS) assertClose(other.rows.map((r) => r[key as keyof typeof r] as number), one.rows.map((r) => r[key as keyof typeof r] as number), { atol: 1e-5, rtol: 1e-6 }, key);
    }
  });

  test('with no reference model the policy is its own reference: every reward is 0, every sigmoid loss is log 2', () => {
    const r = evaluate(null, 3);
    assertClose(r.rows.map((x) => x.loss), r.rows.map(() => Math.LN2), { atol: 1e-7 }, 'loss');
    assert.ok(r.rows.every((x) => x.chosen_rewards === 0 && x.rejected_rewards === 0 && x.ref_chosen_logps === x.chosen_logps));
    assert.equal(r.metrics['eval_rewards/accuracies'], 0, 'accuracy counts strictly greater chosen rewards');
  });

  test('a reference-free loss skips the reference: ref_* are null and simpo matches its formula', () => {
    const r = evaluate(reference, 5, ['simpo'], options);
    assert.ok(r.rows.every((x) => x.ref_chosen_logps === null && x.ref_rejected_logps === null));
    assertClose(r.rows.map((x) => x.loss), ex.losses.simpo.losses, FLOAT32, 'simpo loss');
  });
});

describe(`every registered loss against its formula in the PyTorch fixture (${currentBackend().name} backend)`, () => {
  test('the fixture covers exactly the registry\'s loss types', () => {
    assert.deepEqual(Object.keys(ex.losses).sort(), [...lossTypes].sort());
  });
  for (const type of lossTypes) {
    test(`${type}: per-pair losses and rewards on the float64 log-probs, and through evaluateDpo in float32`, () => {
      const want = ex.losses[type];
      assert.ok(want, `the fixture has no values for '${type}'; add it to make_dpo_fixtures.py`);
      scope(() => {
        const t = (xs: number[]) => tensor(xs, [xs.length], 'float64');
        const { policy: p, reference: r } = ex.gpt2;
        const out = computeLoss([type], null, {
          chosen: t(p.chosen), rejected: t(p.rejected), refChosen: t(r.chosen), refRejected: t(r.rejected),
          chosenLength: t(p.chosen_length), rejectedLength: t(p.rejected_length),
        }, options);
        assertClose(out.losses.data, want.losses, FLOAT64, `${type} losses`);
        assertClose(out.chosenRewards.data, want.chosen_rewards, FLOAT64, `${type} chosen rewards`);
        assertClose(out.rejectedRewards.data, want.rejected_rewards, FLOAT64, `${type} rejected rewards`);
      });
      // One batch of all five pairs, as the fixture computes batch-coupled losses (aot, bco_pair, the NLL terms).
      const res = evaluate(reference, 5, [type], options);
      assertClose(res.rows.map((x) => x.loss), want.losses, FLOAT32, `${type} evaluateDpo loss`);
      assertClose(res.rows.map((x) => x.chosen_rewards), want.chosen_rewards, FLOAT32, `${type} evaluateDpo chosen rewards`);
      assert.equal(res.rows[0].ref_chosen_logps === null, !needsReference(type), 'reference log-probs only when the loss reads them');
    });
  }
  test('defaults are TRL\'s: β = 0.1, no label smoothing', () => {
    assert.equal(defaultLossOptions.beta, 0.1);
    assert.equal(defaultLossOptions.labelSmoothing, 0);
  });
});

// ------------------------------------------------------------------------------------------------ the CLI
function dpo(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'dpo.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const evalArgs = (out: string, ...more: string[]) => ['eval', '--model', POLICY_DIR, '--ref-model', REF_DIR, '--dataset', PAIRS, '--output-dir', out, '--max-length', '12', ...more];
const readJsonl = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string | null>);

describe('dpo eval and dpo token-rewards (child processes)', () => {
  test('writes metrics.json with exactly TRL\'s keys and the fixture\'s values, and per_example.jsonl in input order', () => {
    const out = join(scratch, 'eval');
    const r = dpo(...evalArgs(out));
    assert.equal(r.status, 0, r.stderr);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as Record<string, number>;
    assert.deepEqual(Object.keys(metrics), [...EVAL_METRIC_KEYS]);
    for (const key of EVAL_METRIC_KEYS) assertClose([metrics[key]], [ex.eval.metrics[key]], FLOAT32, key);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), metrics, 'the metrics are printed as the last line');
    const rows = readJsonl(join(out, 'per_example.jsonl'));
    assert.deepEqual(rows.map((x) => x.index), [0, 1, 2, 3, 4]);
    for (const key of ROW_KEYS) assertClose(rows.map((x) => x[key] as number), ex.eval.per_example.map((x) => x[key]), FLOAT32, key);
  });

  test('--per-device-eval-batch-size 1 and 3 write the same results', () => {
    const [a, b] = ['bs1', 'bs3'].map((d) => join(scratch, d));
    assert.equal(dpo(...evalArgs(a, '--per-device-eval-batch-size', '1')).status, 0);
    assert.equal(dpo(...evalArgs(b, '--per-device-eval-batch-size', '3')).status, 0);
    const [ma, mb] = [a, b].map((d) => JSON.parse(readFileSync(join(d, 'metrics.json'), 'utf8')) as Record<string, number>);
    assertClose(Object.values(mb), Object.values(ma), { atol: 1e-6, rtol: 1e-6 }, 'metrics');
    const [ra, rb] = [a, b].map((d) => readJsonl(join(d, 'per_example.jsonl')));
    for (const key of ROW_KEYS) assertClose(rb.map((x) => x[key] as number), ra.map((x) => x[key] as number), { atol: 1e-5, rtol: 1e-6 }, key);
  });

  test('a config file with TRL names sets options, and flags override it', () => {
    const config = join(scratch, 'config.json');
    writeFileSync(config, JSON.stringify({ beta: 0.5, loss_type: ['ipo'], per_device_eval_batch_size: 2, max_length: 12 }));
    const out = join(scratch, 'config-ipo');
    assert.equal(dpo('eval', '--model', POLICY_DIR, '--ref-model', REF_DIR, '--dataset', PAIRS, '--output-dir', out, '--config', config).status, 0);
    assertClose(readJsonl(join(out, 'per_example.jsonl')).map((x) => x.loss as number), ex.losses.ipo.losses, FLOAT32, 'ipo with β 0.5 from the file');
    const over = join(scratch, 'config-override');
    assert.equal(dpo('eval', '--model', POLICY_DIR, '--ref-model', REF_DIR, '--dataset', PAIRS, '--output-dir', over, '--config', config, '--loss-type', 'sigmoid', '--beta', '0.1').status, 0);
    const metrics = JSON.parse(readFileSync(join(over, 'metrics.json'), 'utf8')) as Record<string, number>;
    assertClose([metrics.eval_loss], [ex.eval.metrics.eval_loss], FLOAT32, 'flags win over the file');
  });

  test('an unknown flag or config key exits with status 2 and names it', () => {
    const flag = dpo(...evalArgs(join(scratch, 'x'), '--learning-rat', '1'));
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /unknown flag --learning-rat/);
    const config = join(scratch, 'bad-config.json');
    writeFileSync(config, JSON.stringify({ beta: 0.2, bta: 0.1 }));
    const key = dpo(...evalArgs(join(scratch, 'y'), '--config', config));
    assert.equal(key.status, 2);
    assert.match(key.stderr, /unknown key "bta" in config file .*bad-config\.json/);
    const type = dpo(...evalArgs(join(scratch, 'z'), '--loss-type', 'sigmod'));
    assert.equal(type.status, 2);
    assert.match(type.stderr, /'sigmod' is unknown/);
  });

  test('a dropped record gets a line saying why; a dataset with no usable pair fails with a clear message', () => {
    const data = join(scratch, 'with-drop.jsonl');
    const lines = readFileSync(PAIRS, 'utf8').trim().split('\n');
    lines.splice(1, 0, JSON.stringify({ prompt_input_ids: [3, 4], chosen_input_ids: [], rejected_input_ids: [5] }));
    writeFileSync(data, lines.join('\n') + '\n');
    const out = join(scratch, 'drop');
    const r = dpo('eval', '--model', POLICY_DIR, '--ref-model', REF_DIR, '--dataset', data, '--output-dir', out, '--max-length', '12');
    assert.equal(r.status, 0, r.stderr);
    const rows = readJsonl(join(out, 'per_example.jsonl'));
    assert.deepEqual(rows.map((x) => x.index), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(rows[1], { index: 1, dropped: 'empty_completion' });
    assertClose([rows[2].chosen_logps as number], [ex.eval.per_example[1].chosen_logps], FLOAT32, 'the next record is unaffected');

    const empty = join(scratch, 'unusable.jsonl');
    writeFileSync(empty, JSON.stringify({ prompt_input_ids: [3], chosen_input_ids: [], rejected_input_ids: [] }) + '\n');
    const bad = dpo('eval', '--model', POLICY_DIR, '--dataset', empty, '--output-dir', join(scratch, 'none'));
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /no usable preference pairs/);
  });

  test('token-rewards: per-token log-probs whose rewards sum to the sequence rewards of dpo eval', () => {
    const out = join(scratch, 'tokens');
    const r = dpo('token-rewards', '--model', POLICY_DIR, '--ref-model', REF_DIR, '--dataset', PAIRS, '--output-dir', out, '--beta', '0.1');
    assert.equal(r.status, 0, r.stderr);
    const rows = readFileSync(join(out, 'token_rewards.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const pairs = fixtureExamples();
    rows.forEach((row, i) => {
      assert.equal(row.index, i);
      assert.deepEqual(row.chosen.token_ids, pairs[i].chosenIds);
      assert.deepEqual(row.rejected.token_ids, pairs[i].rejectedIds);
      assertClose(row.chosen.logps, ex.gpt2.policy.chosen_tokens[i], FLOAT32, 'policy token log-probs');
      assertClose(row.rejected.ref_logps, ex.gpt2.reference.rejected_tokens[i], FLOAT32, 'reference token log-probs');
      assertClose([row.chosen.reward], [ex.eval.per_example[i].chosen_rewards], FLOAT32, 'Σ token rewards = chosen reward');
    });
    assert.equal(dpo('token-rewards', '--model', POLICY_DIR, '--dataset', PAIRS, '--output-dir', out).status, 2, '--ref-model is required');
  });
});
