// `dpo train` / `dpo sft` as a user runs them, in child processes: usage errors exit 2 (unknown flag, unknown config
// key, an output folder that holds a run), --config FILE.json with TRL's snake_case keys, a diverging run stops
// naming the step, the examples and the values while keeping its last checkpoint, and a run killed with SIGKILL in the
// middle of writing a checkpoint continues with --resume-from-checkpoint latest to the same weights as an
// uninterrupted run.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  FIXTURE_PAIRS, MODEL_FIXTURES, ROOT, TINY_LLAMA, TRAINER_FIXTURES, readMetrics, readWeights, runCli, sameWeights, saveTinyModel, scratchDir, writeJsonl,
} from './trainer-helpers.js';

const scratch = scratchDir('trainer-cli');
after(() => rmSync(scratch, { recursive: true, force: true }));
const GPT2 = join(MODEL_FIXTURES, 'gpt2');
const sgd = ['--optim', 'sgd', '--learning-rate', '0.1', '--lr-scheduler-type', 'constant', '--per-device-train-batch-size', '3'];
const base = (out: string) => ['train', '--model', GPT2, '--ref-model', join(TRAINER_FIXTURES, 'gpt2-ref'), '--dataset', FIXTURE_PAIRS, '--output-dir', out, ...sgd];

describe('usage errors exit with status 2 and say what to fix', () => {
  test('an unknown flag', () => {
    const r = runCli([...base(join(scratch, 'u1')), '--max-stepz', '3']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /dpo train: unknown flag --max-stepz/);
  });
  test('an unknown key in --config FILE.json', () => {
    const file = join(scratch, 'bad.json');
    writeFileSync(file, JSON.stringify({ learning_rate: 0.1, warmup_stepz: 3 }));
    const r = runCli([...base(join(scratch, 'u2')), '--config', file]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /unknown key "warmup_stepz" in config file/);
  });
  test('an option out of range names the TRL option', () => {
    const r = runCli([...base(join(scratch, 'u3')), '--lr-scheduler-type', 'triangle']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /lr_scheduler_type: must be one of constant, linear, cosine/);
  });
  test('dpo sft refuses DPO-only flags', () => {
    const r = runCli(['sft', '--model', GPT2, '--dataset', FIXTURE_PAIRS, '--output-dir', join(scratch, 'u4'), '--beta', '0.1']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /dpo sft: unknown flag --beta/);
  });
});

test('--config FILE.json with snake_case keys, flags winning over the file; the effective config lands in training_args.json', () => {
  const out = join(scratch, 'config');
  const file = join(scratch, 'good.json');
  writeFileSync(file, JSON.stringify({ max_steps: 2, logging_steps: 1, beta: 0.3, loss_type: ['sigmoid', 'sft'], loss_weights: '1,0.5', save_steps: 0 }));
  const r = runCli([...base(out), '--config', file, '--beta', '0.2']);
  assert.equal(r.status, 0, r.stderr);
  const args = JSON.parse(readFileSync(join(out, 'training_args.json'), 'utf8'));
  assert.equal(args.beta, 0.2);
  assert.equal(args.max_steps, 2);
  assert.deepEqual(args.loss_type, ['sigmoid', 'sft']);
  assert.deepEqual(args.loss_weights, [1, 0.5]);
  assert.deepEqual(readMetrics(out).map((m) => m.step), [1, 2]);
  assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).steps, 2, 'the last stdout line is the final metrics as JSON');
});

test('an output folder that holds a run is not overwritten without --overwrite-output-dir', () => {
  const out = join(scratch, 'protect');
  const first = runCli([...base(out), '--max-steps', '1']);
  assert.equal(first.status, 0, first.stderr);
  const again = runCli([...base(out), '--max-steps', '1']);
  assert.equal(again.status, 2, again.stderr);
  assert.match(again.stderr, /already holds a run \(.*metrics\.jsonl.*\); pass --overwrite-output-dir/);
  const overwritten = runCli([...base(out), '--max-steps', '2', '--overwrite-output-dir']);
  assert.equal(overwritten.status, 0, overwritten.stderr);
  assert.deepEqual(readMetrics(out).map((m) => m.step), [2], 'the old metrics are gone');
});

test('a non-finite loss stops the run naming the step, the batch\'s examples and the values; checkpoint-1 stays', () => {
  const out = join(scratch, 'diverge');
  // SGD at lr 1e30 turns the weights to ±1e28-size values after step 1; step 2's forward pass gives NaN.
  const r = runCli(['train', '--model', join(MODEL_FIXTURES, 'llama'), '--dataset', FIXTURE_PAIRS, '--output-dir', out, '--optim', 'sgd',
    '--learning-rate', '1e30', '--max-grad-norm', '0', '--max-steps', '4', '--save-steps', '1', '--per-device-train-batch-size', '3']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /TrainingDivergedError: step 2: the loss is not finite for example\(s\) [\d, ]+ of the batch \[[\d, ]+\]: loss \[NaN/);
  assert.match(r.stderr, /policy logps chosen \[.*\] rejected \[.*\], reference logps chosen \[-?\d/);
  assert.match(r.stderr, /The last good checkpoint is .*checkpoint-1/);
  assert.deepEqual(readdirSync(out).filter((n) => n.startsWith('checkpoint')), ['checkpoint-1']);
  assert.ok(!existsSync(join(out, 'model.safetensors')), 'no final model is written');
});

test('the README walk-through: dpo sft (messages) → dpo train (conversational pairs, precomputed reference) → dpo eval → dpo generate', async () => {
  // A user's own HF model: a tiny Qwen2 with the chatml test tokenizer (vocabulary 307) and its chat template.
  const base = await saveTinyModel(join(scratch, 'my-model'), { ...TINY_LLAMA, model_type: 'qwen2', vocab_size: 320, max_position_embeddings: 128, tie_word_embeddings: true, eos_token_id: 306 }, 11);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(MODEL_FIXTURES, '..', 'tokenizer', 'chatml', f), join(base, f));
  const topics = ['sky', 'sea', 'grass', 'snow', 'sun', 'night', 'fire', 'ice'];
  const user = (t: string) => [{ role: 'user', content: `what color is the ${t}?` }];
  const sftData = writeJsonl(join(scratch, 'sft.jsonl'), topics.map((t) => ({ messages: [...user(t), { role: 'assistant', content: `a nice ${t} color` }] })));
  const prefs = writeJsonl(join(scratch, 'prefs.jsonl'), topics.map((t) => ({
    prompt: user(t), chosen: [{ role: 'assistant', content: `a nice ${t} color` }], rejected: [{ role: 'assistant', content: 'no idea, go away' }],
  })));
  const ok = (r: ReturnType<typeof runCli>) => assert.equal(r.status, 0, r.stderr);
  const [sft, dpo, evalOut] = ['sft-out', 'dpo-out', 'eval-out'].map((n) => join(scratch, n));
  ok(runCli(['sft', '--model', base, '--dataset', sftData, '--output-dir', sft, '--num-train-epochs', '3', '--per-device-train-batch-size', '4', '--learning-rate', '1e-2']));
  assert.ok(existsSync(join(sft, 'tokenizer.json')) && existsSync(join(sft, 'model.safetensors')), 'the SFT model is a complete HF folder');
  ok(runCli(['train', '--model', sft, '--dataset', prefs, '--output-dir', dpo, '--precompute-ref-log-probs', '--num-train-epochs', '4',
    '--per-device-train-batch-size', '4', '--learning-rate', '5e-3', '--beta', '0.1', '--lr-scheduler-type', 'constant']));
  ok(runCli(['eval', '--model', dpo, '--ref-model', sft, '--dataset', prefs, '--output-dir', evalOut]));
  const metrics = JSON.parse(readFileSync(join(evalOut, 'metrics.json'), 'utf8'));
  assert.ok(metrics['eval_rewards/accuracies'] >= 0.75 && metrics.eval_loss < Math.LN2, JSON.stringify(metrics));
  const generated = runCli(['generate', '--model', dpo, '--prompt', 'what color is the sky?', '--chat', '--max-new-tokens', '4']);
  ok(generated);
  assert.match(generated.stderr, /tokens from a \d+-token prompt/);
});

/** Starts a run and SIGKILLs it as soon as checkpoint-N's temporary directory (N ≥ 2) appears. */
function killDuringCheckpointWrite(args: string[], out: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'dpo.js'), ...args], { stdio: 'ignore', env: process.env });
    let seen = '';
    const watcher = watch(out, (_event, name) => {
      if (seen === '' && name && /^checkpoint-([2-9]|\d\d+)\.tmp-/.test(String(name))) {
        seen = String(name);
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (_code, signal) => {
      watcher.close();
      if (signal === 'SIGKILL') resolve(seen);
      else reject(new Error(`the run ended by itself (${_code}) before a checkpoint write could be interrupted`));
    });
  });
}

test('SIGKILL during a checkpoint write, then --resume-from-checkpoint latest, ends with the uninterrupted run\'s weights', async () => {
  const args = (out: string) => [...base(out), '--max-steps', '12', '--save-steps', '1', '--logging-steps', '1', '--optim', 'adamw', '--learning-rate', '1e-3'];
  const whole = join(scratch, 'whole');
  const uninterrupted = runCli(args(whole));
  assert.equal(uninterrupted.status, 0, uninterrupted.stderr);
  let out = '';
  let interrupted = false;
  for (let attempt = 0; attempt < 5 && !interrupted; attempt++) {
    out = join(scratch, `killed-${attempt}`);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    await killDuringCheckpointWrite(args(out), out);
    // The write was interrupted when its temporary directory is still there.
    interrupted = readdirSync(out).some((n) => /^checkpoint-\d+\.tmp-/.test(n));
  }
  assert.ok(interrupted, 'a checkpoint write was interrupted in one of 5 attempts');
  const resumed = runCli([...args(out), '--resume-from-checkpoint']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming from .*checkpoint-\d+ at step \d+ of 12/);
  assert.ok(!readdirSync(out).some((n) => /\.tmp-/.test(n)), 'the dead writer\'s leftovers are cleaned up');
  assert.ok(sameWeights(readWeights(out), readWeights(whole)), 'final weights equal the uninterrupted run\'s');
  assert.deepEqual(readMetrics(out).map((m) => m.step), Array.from({ length: 12 }, (_, i) => i + 1));
});
