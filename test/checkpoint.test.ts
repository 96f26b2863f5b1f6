// Checkpoints: a save → load round trip resumes training bit-exactly, save_total_limit rotation, incomplete
// checkpoints are skipped, load errors name the file and the fix, and a writer SIGKILLed mid-save (a real child
// process, test/fixtures/checkpoint/kill-writer.mjs) leaves the previous checkpoint usable.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Rng, createModelFromHFConfig, currentBackend, randn, type CausalLM } from '../src/index.js';
import { findLatestCheckpoint, listCheckpoints, loadCheckpoint, saveCheckpoint, type TrainerState } from '../src/dpo/checkpoint.js';
import { loadPretrained } from '../src/io/pretrained.js';
import { createOptimizer, type Optimizer, type OptimizerType } from '../src/dpo/optim.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..'); // tests run from dist/test/
const KILL_WRITER = join(REPO, 'test', 'fixtures', 'checkpoint', 'kill-writer.mjs');
const CONFIG = { model_type: 'gpt2', vocab_size: 61, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2 };

const root = mkdtempSync(join(tmpdir(), 'dpo-checkpoint-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (name: string) => join(root, `${name}-${dirCount++}`);

function setup(seed: number, config: Record<string, unknown> = CONFIG, type: OptimizerType = 'adamw'): { model: CausalLM; optimizer: Optimizer } {
  const model = createModelFromHFConfig(config, new Rng(seed));
  const optimizer = createOptimizer([...model.namedParameters()], { type, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
  return { model, optimizer };
}

/** One AdamW step on synthetic gradients drawn from `gradSeed` (the same seed gives the same gradients). */
function trainStep(model: CausalLM, optimizer: Optimizer, gradSeed: number): void {
  const rng = new Rng(gradSeed);
  for (const p of model.parameters()) p.grad = randn(p.shape, rng);
  optimizer.step(1e-2);
  for (const p of model.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
}

const weightsOf = (model: CausalLM) => new Map([...model.namedParameters()].map(([n, p]) => [n, Array.from(p.data)]));
const momentsOf = (optimizer: Optimizer) => new Map([...optimizer.stateTensors()].map(([n, t]) => [n, Array.from(t.data)]));

function trainerState(step: number, rng: Rng): TrainerState {
  return {
    globalStep: step,
    epoch: step / 4,
    dataPosition: { epoch: 0, batchIndex: step, order: [3, 0, 7, 1, 6, 2, 5, 4] },
    rngState: rng.getState(),
    bestMetric: 0.6931471805599453,
    logHistory: [{ step, loss: 0.69, 'rewards/accuracies': 0.5 }],
    lossState: { running_mean: 0.125, count: 3 },
    schedulerState: { type: 'linear', base_lr: 1e-2, warmup_steps: 1, total_steps: 8 },
  };
}

const save = (out: string, step: number, model: CausalLM, optimizer: Optimizer, saveTotalLimit?: number) =>
  saveCheckpoint(out, step, { model, modelConfig: CONFIG, optimizer, trainerState: trainerState(step, new Rng(step)), saveTotalLimit });

describe(`checkpoints (${currentBackend().name} backend)`, () => {
  test('save → load restores identical weights, AdamW moments, step count, RNG stream and data position; training then continues bit-exactly', async () => {
    const a = setup(1);
    trainStep(a.model, a.optimizer, 100);
    trainStep(a.model, a.optimizer, 101);
    const rng = new Rng(42);
    rng.normal(); // leaves a cached second normal in the state, which must survive the round trip too
    const state = trainerState(2, rng);
    const out = freshDir('roundtrip');
    const path = await saveCheckpoint(out, 2, { model: a.model, modelConfig: CONFIG, optimizer: a.optimizer, trainerState: state });
    assert.equal(path, join(out, 'checkpoint-2'));
    assert.deepEqual(readdirSync(path).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'optimizer.safetensors', 'scheduler.json', 'trainer_state.json']);
    const hf = JSON.parse(readFileSync(join(path, 'trainer_state.json'), 'utf8'));
    assert.equal(hf.global_step, 2);
    assert.deepEqual(hf.log_history, state.logHistory);

    const b = setup(2); // different initial weights, fresh moments
    const loaded = loadCheckpoint(path, b);
    assert.deepEqual(loaded, state);
    assert.deepEqual(weightsOf(b.model), weightsOf(a.model));
    assert.deepEqual(momentsOf(b.optimizer), momentsOf(a.optimizer));
    assert.equal(b.optimizer.steps, 2);
    const resumed = new Rng(0);
    resumed.setState(loaded.rngState);
    assert.deepEqual([resumed.normal(), resumed.normal(), resumed.uniform()], [rng.normal(), rng.normal(), rng.uniform()]);

    assert.deepEqual(weightsOf(loadPretrained(path).model), weightsOf(a.model), 'the checkpoint is also an HF model directory');

    trainStep(a.model, a.optimizer, 102);
    trainStep(b.model, b.optimizer, 102);
    assert.deepEqual(weightsOf(b.model), weightsOf(a.model), 'the step after resuming equals the uninterrupted step');
  });

  test('save_total_limit keeps the newest checkpoints by step number (checkpoint-10 is newer than checkpoint-9)', async () => {
    const { model, optimizer } = setup(3);
    const out = freshDir('rotation');
    for (const step of [8, 9, 10, 11]) await save(out, step, model, optimizer, 2);
    assert.deepEqual(listCheckpoints(out).map((c) => c.step), [10, 11]);
    assert.deepEqual(readdirSync(out).sort(), ['checkpoint-10', 'checkpoint-11'], 'no temporary or deleted directories remain');
    await save(out, 12, model, optimizer); // no limit: nothing is deleted
    assert.deepEqual(listCheckpoints(out).map((c) => c.step), [10, 11, 12]);
  });

  test('rotation never deletes the checkpoint just written, even when it has the lowest step', async () => {
    const { model, optimizer } = setup(3);
    const out = freshDir('rotation-low');
    for (const step of [10, 20]) await save(out, step, model, optimizer);
    await save(out, 5, model, optimizer, 1);
    assert.deepEqual(listCheckpoints(out).map((c) => c.step), [5]);
  });

  test('save_total_limit must be an integer ≥ 1', async () => {
    const { model, optimizer } = setup(3);
    await assert.rejects(save(freshDir('limit'), 1, model, optimizer, 0), /save_total_limit must be an integer ≥ 1/);
  });

  test('findLatestCheckpoint skips temporary directories and incomplete checkpoints, warning about each incomplete one', async () => {
    const { model, optimizer } = setup(4);
    const out = freshDir('incomplete');
    assert.equal(findLatestCheckpoint(out), null, 'a missing output directory has no checkpoint');
    for (const step of [1, 2]) await save(out, step, model, optimizer);
    const good = join(out, 'checkpoint-2');
    const copy = (name: string) => { cpSync(good, join(out, name), { recursive: true }); return join(out, name); };
    rmSync(join(copy('checkpoint-4'), 'trainer_state.json'));
    truncateSync(join(copy('checkpoint-5'), 'model.safetensors'), 1000);
    writeFileSync(join(copy('checkpoint-6'), 'trainer_state.json'), '{"global_step": 6,');
    truncateSync(join(copy('checkpoint-7'), 'optimizer.safetensors'), 100);
    copy('checkpoint-9.tmp-999999999-0badc0de'); // complete-looking, but never renamed into place
    writeFileSync(join(out, 'checkpoint-10'), 'a file, not a directory');
    const warnings: string[] = [];
    assert.equal(findLatestCheckpoint(out, { warn: (m) => warnings.push(m) }), good);
    assert.equal(warnings.length, 4);
    for (const [i, what] of [[7, 'optimizer.safetensors'], [6, 'trainer_state.json'], [5, 'model.safetensors'], [4, 'trainer_state.json']] as const) {
      assert.match(warnings[7 - i], new RegExp(`checkpoint-${i}.*${what.replace('.', '\\.')}`));
    }
  });

  test('a save removes leftovers of dead writers but not those of running ones', async () => {
    const { model, optimizer } = setup(5);
    const out = freshDir('leftovers');
    const dead = join(out, 'checkpoint-3.tmp-999999999-0badc0de');
    const alive = join(out, `checkpoint-3.tmp-${process.pid}-0badc0de`);
    for (const d of [dead, alive]) mkdirSync(d, { recursive: true });
    await save(out, 1, model, optimizer);
    assert.equal(existsSync(dead), false);
    assert.equal(existsSync(alive), true);
  });

  test('loading into a model of another size fails naming the checkpoint and the fix, and changes nothing', async () => {
    const a = setup(6);
    const out = freshDir('mismatch');
    const path = await save(out, 1, a.model, a.optimizer);
    const b = setup(7, { ...CONFIG, n_embd: 12 });
    const before = weightsOf(b.model);
    assert.throws(() => loadCheckpoint(path, b), (e: Error) => e.message.includes(path) && /wrong shape/.test(e.message) && /model configuration of the run/.test(e.message));
    assert.deepEqual(weightsOf(b.model), before);
  });

  test('loading AdamW state into SGD fails naming optimizer.safetensors, and leaves the weights untouched', async () => {
    const a = setup(6);
    const path = await save(freshDir('optim'), 1, a.model, a.optimizer);
    const sgd = setup(8, CONFIG, 'sgd');
    const before = weightsOf(sgd.model);
    assert.throws(() => loadCheckpoint(path, sgd), (e: Error) => e.message.includes(join(path, 'optimizer.safetensors')) && /unexpected \(\d+\): exp_avg/.test(e.message));
    assert.deepEqual(weightsOf(sgd.model), before);
  });

  test('a trainer_state.json without dpo-ts state is refused with the reason', async () => {
    const a = setup(6);
    const path = await save(freshDir('hf'), 1, a.model, a.optimizer);
    writeFileSync(join(path, 'trainer_state.json'), JSON.stringify({ global_step: 1, epoch: 0, log_history: [] }));
    assert.throws(() => loadCheckpoint(path, setup(6)), /trainer_state\.json: has no "dpo_ts" object/);
  });
});

// ------------------------------------------------------------------------------------------------ SIGKILL
// ~4.2M parameters: 17 MB of weights and 34 MB of AdamW moments, so one save takes long enough (~0.2 s) to interrupt.
const KILL_CONFIG = { model_type: 'gpt2', vocab_size: 4096, n_positions: 64, n_embd: 256, n_layer: 4, n_head: 4 };
const stampOf = (step: number, k: number) => Math.fround(step + k / 1000); // as kill-writer.mjs stamps parameter k

/**
 * Runs the writer until it has completed one save, then SIGKILLs it `fraction` of one save's duration after it
 * begins the next. Returns the last step it reported saved.
 */
function runAndKill(out: string, fraction: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KILL_WRITER, out, JSON.stringify(KILL_CONFIG)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let lastSaved = -1;
    let lastMs = 0;
    let armed = false;
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const lines = stdout.split('\n');
      stdout = lines.pop() ?? '';
      for (const line of lines) {
        const [what, step, ms] = line.split(' ');
        if (what === 'saved') [lastSaved, lastMs] = [Number(step), Number(ms)];
        if (what === 'begin' && lastSaved >= 0 && !armed) {
          armed = true;
          setTimeout(() => child.kill('SIGKILL'), Math.floor(fraction * lastMs));
        }
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(lastSaved);
      else reject(new Error(`the writer exited by itself (code ${code}, signal ${signal}):\n${stderr}`));
    });
  });
}

test('a writer SIGKILLed mid-save leaves the previous checkpoint usable, and findLatestCheckpoint returns a complete one', { timeout: 120_000 }, async (t) => {
  const out = freshDir('killed');
  const rng = new Rng(2024);
  const { model, optimizer } = setup(0, KILL_CONFIG);
  let interrupted = 0;
  let previousLeftovers: string[] = [];
  const TRIALS = 4;
  for (let trial = 0; trial < TRIALS; trial++) {
    const lastSaved = await runAndKill(out, 0.05 + 0.9 * rng.uniform());
    for (const name of previousLeftovers) assert.equal(existsSync(join(out, name)), false, `${name}, left by a killed writer, is removed by the next one`);
    previousLeftovers = readdirSync(out).filter((n) => !/^checkpoint-\d+$/.test(n));
    if (previousLeftovers.length > 0) interrupted++;

    const latest = findLatestCheckpoint(out, { warn: (m) => assert.fail(`no checkpoint-N may be incomplete: ${m}`) });
    assert.notEqual(latest, null);
    const state = loadCheckpoint(latest!, { model, optimizer });
    const step = state.globalStep;
    assert.ok(step === lastSaved || step === lastSaved + 1, `the latest checkpoint is step ${step}; the writer last reported ${lastSaved}`);
    assert.equal(latest, join(out, `checkpoint-${step}`));
    [...model.namedParameters()].forEach(([name, p], k) => assert.ok(p.data.every((v) => v === stampOf(step, k)), `${name} holds step ${step}'s values`));
    for (const [name, m] of optimizer.stateTensors()) {
      assert.ok(m.data.every((v) => v === (name.startsWith('exp_avg_sq.') ? 2 * step : step)), `${name} holds step ${step}'s values`);
    }
    assert.equal(optimizer.steps, 0, 'the writer never stepped its optimizer');
    assert.deepEqual(state.rngState, new Rng(step).getState());
    assert.deepEqual(state.dataPosition.order, Array.from({ length: 100 }, (_, i) => (i * 37 + step) % 100));
  }
  t.diagnostic(`${interrupted} of ${TRIALS} kills left a partly written or partly deleted checkpoint behind`);
  assert.ok(interrupted > 0, 'at least one kill landed during a save');
});
