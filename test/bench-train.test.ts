// `dpo bench train` and dpo/bench-step.ts checked for correctness only, never for speed: the workload matches
// bench_torch.py's (shared prompts, completion-only targets, the FLOP formula), the first step's loss is log 2 (policy =
// reference), training lowers the loss, precomputed reference log-probs give the live reference's losses, and the
// last line of the command is a JSON object with every documented key, and the packed layouts give the padded
// run's losses. The command runs in child processes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { IGNORE_INDEX, Rng } from '../src/index.js';
import { countParams, createBenchModel, makeBenchBatches, stepFlops, type BenchShape } from '../src/dpo/bench-step.js';
import { assertClose } from './helpers.js';

const tiny = ['--layers', '1', '--heads', '2', '--hidden', '32', '--vocab', '64', '--seq', '16', '--prompt-len', '4', '--pairs', '2'];
const small = [...tiny, '--steps', '2', '--warmup', '1', '--gemm-size', '64'];

function benchTrain(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['bin/dpo.js', 'bench', 'train', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  const lines = r.stdout.trim().split('\n');
  return { status: r.status, stderr: r.stderr, stdout: r.stdout, json: r.status === 0 ? JSON.parse(lines[lines.length - 1]) as Record<string, unknown> : {} };
}

const losses = (json: Record<string, unknown>) => json.losses as number[];

describe('dpo bench train', () => {
  const live = benchTrain(small);

  test('the last line is one JSON object with every documented key', () => {
    assert.equal(live.status, 0, live.stderr);
    const keys = ['tokens_per_s', 'step_s_median', 'step_s_mean', 'mfu', 'flops_per_step', 'gemm_ceiling_gflops', 'gemm_native_gflops',
      'peak_memory_mb', 'engine_peak_live_mb', 'threads', 'backend', 'arch', 'layers', 'heads', 'hidden', 'vocab', 'seq', 'pairs',
      'prompt_len', 'reference', 'prompt_logits', 'loss_first', 'loss_last', 'losses', 'phase_s_median'];
    for (const k of keys) assert.ok(k in live.json, `missing key ${k}`);
    assert.equal(live.json.tokens_per_step, 2 * 2 * 16);
    assert.equal(losses(live.json).length, 3); // warm-up + timed steps
    assert.equal(live.json.reference, 'live');
  });

  test('logps of an identical policy and reference give loss = log 2 at step 0', () => {
    assertClose([live.json.loss_first as number], [Math.log(2)], { atol: 1e-6, rtol: 0 }, 'loss_first');
  });

  test('the loss decreases step by step when the same batch is repeated', () => {
    const r = benchTrain([...tiny, '--steps', '4', '--warmup', '1', '--gemm-size', '64', '--batches', '1', '--lr', '1e-2']);
    assert.equal(r.status, 0, r.stderr);
    const l = losses(r.json);
    for (let i = 1; i < l.length; i++) assert.ok(l[i] < l[i - 1], `loss rose from ${l[i - 1]} to ${l[i]} at step ${i}: ${l.join(', ')}`);
  });

  test('--precompute-ref-log-probs gives the live reference\'s losses within float32 round-off', () => {
    const pre = benchTrain([...small, '--precompute-ref-log-probs']);
    assert.equal(pre.status, 0, pre.stderr);
    assert.equal(pre.json.reference, 'precomputed');
    assertClose(losses(pre.json), losses(live.json), { atol: 1e-6, rtol: 1e-5 }, 'losses');
    assert.ok((pre.json.flops_per_step as number) < (live.json.flops_per_step as number), 'no reference forward is counted');
  });

  test('--prefix-sharing and --padding-free, alone and together, give the padded run\'s losses and run fewer tokens', () => {
    const varied = [...small, '--min-completion-len', '2'];
    const padded = benchTrain(varied);
    assert.equal(padded.status, 0, padded.stderr);
    for (const levers of [['--prefix-sharing'], ['--padding-free'], ['--prefix-sharing', '--padding-free', '--precompute-ref-log-probs']]) {
      const r = benchTrain([...varied, ...levers]);
      assert.equal(r.status, 0, r.stderr);
      assertClose(losses(r.json), losses(padded.json), { atol: 1e-6, rtol: 1e-5 }, `losses with ${levers.join(' ')}`);
      assert.equal(r.json.tokens_per_step, padded.json.tokens_per_step, 'the same real tokens');
      assert.ok((r.json.forward_tokens_per_step as number) < (padded.json.forward_tokens_per_step as number), `${levers.join(' ')} runs fewer tokens`);
    }
  });

  test('DPO_PROFILE=1 prints the time per kernel category before the JSON line', () => {
    const r = benchTrain(small, { DPO_PROFILE: '1' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /profile \(mean of the timed steps\):/);
    const profile = r.json.profile as Record<string, { ms: number }>;
    for (const k of ['GEMM (blocks)', 'attention', 'norms', 'optimizer', 'JS overhead']) assert.ok(k in profile, `profile lacks ${k}`);
  });

  test('a prompt as long as the sequence is a usage error (exit 2) naming the flags', () => {
    const r = benchTrain([...small, '--prompt-len', '16']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--prompt-len \(16\) must be below --seq \(16\)/);
  });
});

describe('the bench workload', () => {
  const shape: BenchShape = { arch: 'gpt2', layers: 2, heads: 2, hidden: 16, vocab: 40, seq: 12, pairs: 3, promptLen: 5 };

  test('rejected rows share their chosen row\'s prompt, and only completion tokens are scored', () => {
    const [batch] = makeBenchBatches(shape, 1, new Rng(3));
    const { pairs: p, seq: t, promptLen: tp } = shape;
    for (let i = 0; i < p; i++) {
      assert.deepEqual(batch.inputIds.subarray((p + i) * t, (p + i) * t + tp), batch.inputIds.subarray(i * t, i * t + tp));
    }
    for (let r = 0; r < 2 * p; r++) {
      for (let j = 0; j < t; j++) {
        const expected = j >= tp - 1 && j < t - 1 ? batch.inputIds[r * t + j + 1] : IGNORE_INDEX;
        assert.equal(batch.targets[r * t + j], expected, `row ${r} position ${j}`);
      }
    }
  });

  test('model FLOPs per step: 3 policy forwards + 1 reference forward of 2·12LC²·RT + 2VC·R(T−Tp) + 2LC·RT(T+1)', () => {
    const model = createBenchModel(shape, 0);
    const params = countParams(model);
    const { layers: l, hidden: c, vocab: v, seq: t, promptLen: tp } = shape;
    const rows = 2 * shape.pairs;
    assert.equal(params.blockMatmul, 12 * l * c * c);
    assert.equal(params.head, v * c);
    const forward = 2 * 12 * l * c * c * rows * t + 2 * v * c * rows * (t - tp) + 2 * l * c * rows * t * (t + 1);
    assert.deepEqual(stepFlops(shape, params, true), { forward, policy: 3 * forward, reference: forward, perStep: 4 * forward });
    assert.equal(stepFlops(shape, params, false).perStep, 3 * forward);
    assert.equal(stepFlops(shape, params, true, makeBenchBatches(shape, 2, new Rng(1))).forward, forward, 'counted per sequence, full-length rows give the same');
    const shorter = makeBenchBatches({ ...shape, minCompletionLen: 1 }, 2, new Rng(1));
    assert.ok(stepFlops(shape, params, true, shorter).forward < forward, 'shorter completions count fewer FLOPs');
    model.dispose();
  });
});
