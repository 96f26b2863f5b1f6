// Online DPO (OAIF) on the committed demo base model (a trained 4-layer GPT-2 with its tokenizer): labelling rules
// (scores, ties, the missing-EOS penalty, skipped pairwise answers, a throwing reward function), exactness of the
// on-policy pairs (the trainer scores exactly the sampled tokens), TRL's online metrics and files, bit-exact resume,
// a pairwise HTTP judge served on 127.0.0.1 with malformed answers counted as skipped, and the CLI.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { collatePreferenceBatch } from '../src/data/collate.js';
import { committedBaseDir } from '../src/demo/base-model.js';
import { forwardPairs } from '../src/dpo/forward.js';
import { Rng } from '../src/engine/random.js';
import { noGrad } from '../src/engine/tensor.js';
import { loadPretrained } from '../src/io/pretrained.js';
import {
  httpPairwiseJudge, judgePair, loadPrompts, rewardFunctionJudge, sampledPair, samplePolicy, trainOnline,
  type Judge, type OnlineOptions, type PolicySample, type PromptItem,
} from '../src/online/index.js';
import type { TrainConfig } from '../src/dpo/trainer-config.js';
import { ROOT, readMetrics, readWeights, sameWeights, saveTinyModel, scratchDir, writeJsonl } from './trainer-helpers.js';

const BASE = committedBaseDir();
const OPENINGS = ['the movie was', 'i thought the film', 'the acting', 'the ending', 'overall the film', 'my friends and i', 'the music', 'the dialogue'];
const POSITIVE = new Set(['great', 'good', 'excellent', 'wonderful', 'loved', 'best', 'amazing', 'fantastic', 'lovely', 'perfect', 'brilliant', 'delightful', 'fun']);
const positiveWords = (_prompt: string, completion: string) => completion.split(/\W+/).filter((w) => POSITIVE.has(w)).length;
const quiet = { log: () => {}, progress: { write: () => true, isTTY: false } };
const sample = (text: string, containsEos: boolean): PolicySample => ({ prompt: 0, ids: [1], text, logp: -1, containsEos });
const prompt: PromptItem = { index: 7, source: 'p.jsonl:8', text: 'the movie was', messages: null, ids: [0, 1] };

function promptsFile(dir: string): string {
  return writeJsonl(join(dir, 'prompts.jsonl'), OPENINGS.map((p) => ({ prompt: p })));
}

const smallRun = (dir: string, extra: Partial<TrainConfig> = {}): Partial<TrainConfig> => ({
  model: BASE, dataset: promptsFile(dir), outputDir: join(dir, 'out'), maxSteps: 4, perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 2,
  learningRate: 1e-4, loggingSteps: 2, saveSteps: 2, seed: 3, ...extra,
});
const sampling: Partial<OnlineOptions> = { maxNewTokens: 10, temperature: 1 };

describe('judgePair', () => {
  test('a scoring judge picks the higher score; equal scores are a tie; the missing-EOS penalty applies first', async () => {
    const judge = rewardFunctionJudge((_p, c) => c.length);
    const a = await judgePair(judge, prompt, [sample('long one', true), sample('short', true)], null, 0);
    assert.deepEqual([a.winner, a.outcome, a.scores], [0, 'labelled', [8, 5]]);
    const tie = await judgePair(judge, prompt, [sample('abc', true), sample('xyz', true)], null, 0);
    assert.deepEqual([tie.winner, tie.outcome], [null, 'tie']);
    // 'long one' lost its EOS: 8 − 5 = 3 < 5, so the short one wins.
    const penalised = await judgePair(judge, prompt, [sample('long one', false), sample('short', true)], 5, 0);
    assert.deepEqual([penalised.winner, penalised.scores], [1, [3, 5]]);
  });

  test('a pairwise judge that gives up leaves the pair unlabelled and says why', async () => {
    const judge: Judge = { name: 'flaky', prefer: async () => ({ winner: null, status: 'skipped', reason: 'timeout' }) };
    const r = await judgePair(judge, prompt, [sample('a', true), sample('b', true)], null, 0);
    assert.deepEqual([r.winner, r.outcome, r.reason], [null, 'skipped', 'timeout']);
  });

  test('a reward function that throws names the prompt index and its source', async () => {
    const judge = rewardFunctionJudge(() => { throw new Error('boom'); }, 'fragile');
    await assert.rejects(judgePair(judge, prompt, [sample('a', true), sample('b', true)], null, 7), /judge 'fragile' failed on prompt index 7 \(p\.jsonl:8\).*boom/);
  });
});

describe('on-policy pairs', () => {
  test('the trainer scores exactly the sampled tokens: log-probs at temperature 1 equal the sampler\'s', async () => {
    const dir = scratchDir('online-exact');
    const policy = loadPretrained(BASE);
    try {
      const prompts = await loadPrompts(promptsFile(dir), policy.tokenizer!);
      assert.deepEqual(prompts[0].ids.slice(0, 1), [policy.tokenizer!.bosTokenId]);
      const samples = samplePolicy(policy.model, policy.tokenizer!, prompts.slice(0, 3), 2, { maxNewTokens: 8, temperature: 1, batchSize: 6, rng: new Rng(5), eosTokenIds: [0], padTokenId: 0 });
      const examples = samples.map((s, k) => sampledPair(k, 'test', prompts[k], s[0], s[1]));
      const pol = noGrad(() => forwardPairs(policy.model, collatePreferenceBatch(examples, { padTokenId: 0 }), { ldAlpha: null, useWeighting: false, chosenOnly: false }));
      samples.forEach((s, k) => {
        assert.ok(Math.abs(pol.chosen.data[k] - s[0].logp) < 1e-3, `pair ${k} chosen: ${pol.chosen.data[k]} vs sampler ${s[0].logp}`);
        assert.ok(Math.abs(pol.rejected.data[k] - s[1].logp) < 1e-3, `pair ${k} rejected: ${pol.rejected.data[k]} vs sampler ${s[1].logp}`);
      });
    } finally {
      policy.model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('samplePolicy', () => {
  test('a model vocabulary padded past the tokenizer\'s: unknown ids stay in the ids and are left out of the text', async () => {
    const dir = scratchDir('online-padded-vocab');
    try {
      const model = join(dir, 'model');
      await saveTinyModel(model, { model_type: 'gpt2', vocab_size: 300, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2, bos_token_id: 0, eos_token_id: 0 }, 11);
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(BASE, f), join(model, f));
      const p = loadPretrained(model);
      try {
        assert.ok(p.tokenizer!.vocabSize < 300);
        const prompts = await loadPrompts(promptsFile(dir), p.tokenizer!);
        const samples = samplePolicy(p.model, p.tokenizer!, prompts, 2, { maxNewTokens: 12, temperature: 1, batchSize: 16, rng: new Rng(1), eosTokenIds: [0], padTokenId: 0 }).flat();
        const unknown = samples.flatMap((s) => s.ids).filter((id) => id >= p.tokenizer!.vocabSize);
        assert.ok(unknown.length > 0, 'the random model drew ids past the tokenizer');
        for (const s of samples) {
          assert.equal(s.text, p.tokenizer!.decode(s.ids.filter((id) => id < p.tokenizer!.vocabSize), { skipSpecialTokens: true }));
        }
      } finally {
        p.model.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('trainOnline', () => {
  test('trains on judged samples, logs TRL\'s online metrics, and resumes bit-exactly from a checkpoint', async () => {
    const dir = scratchDir('online-train');
    try {
      const judge = rewardFunctionJudge(positiveWords, 'positive-words');
      const full = await trainOnline(smallRun(dir), sampling, judge, quiet);
      assert.equal(full.steps, 4);
      assert.ok(full.labelled > 0, 'some pairs were labelled');
      assert.equal(full.labelled + full.ties + full.skipped, 4 * 4, 'every prompt of every step is accounted for');
      const records = readMetrics(full.outputDir);
      assert.deepEqual(records.map((r) => r.step), [2, 4]);
      for (const key of ['objective/kl', 'objective/entropy', 'objective/non_score_reward', 'objective/rlhf_reward', 'objective/scores', 'val/contain_eos_token',
        'rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen', 'logps/rejected', 'time/generate_s', 'time/judge_s', 'time/train_s', 'beta']) {
        assert.ok(records.some((r) => Number.isFinite(r[key])), `metrics.jsonl has ${key}`);
      }
      for (const r of records) {
        if (r['objective/kl'] !== undefined) assert.ok(Math.abs(r['objective/non_score_reward'] + 0.1 * r['objective/kl']) < 1e-9, 'non_score_reward = −β·kl');
        assert.ok(r['val/contain_eos_token'] >= 0 && r['val/contain_eos_token'] <= 1);
      }
      assert.ok(existsSync(join(full.outputDir, 'online_args.json')) && existsSync(join(full.outputDir, 'checkpoint-2')));
      const trained = readWeights(full.outputDir);
      assert.ok(!sameWeights(trained, readWeights(BASE)), 'the policy moved');

      // Resume: drop what came after step 2 and continue from checkpoint-2 in a copy of the run.
      const copy = join(dir, 'resumed');
      cpSync(full.outputDir, copy, { recursive: true });
      rmSync(join(copy, 'checkpoint-4'), { recursive: true });
      rmSync(join(copy, 'model.safetensors'));
      const resumed = await trainOnline({ ...smallRun(dir), outputDir: copy, resumeFromCheckpoint: join(copy, 'checkpoint-2') }, sampling, judge, quiet);
      assert.equal(resumed.steps, 4);
      assert.ok(sameWeights(readWeights(copy), trained), 'the resumed run ends with the same weights, bit for bit');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('option errors name the option', async () => {
    const dir = scratchDir('online-bad');
    try {
      const judge = rewardFunctionJudge(positiveWords);
      await assert.rejects(trainOnline(smallRun(dir), { temperature: 0 }, judge, quiet), /temperature: must be a number > 0/);
      await assert.rejects(trainOnline(smallRun(dir, { precomputeRefLogProbs: true }), sampling, judge, quiet), /precompute_ref_log_probs/);
      await assert.rejects(trainOnline(smallRun(dir), { maxNewTokens: 100 }, judge, quiet), /exceeds the model's 64 positions/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('with a pairwise HTTP judge, malformed answers are retried, then skipped and counted, never labelled', async () => {
    const dir = scratchDir('online-http');
    let calls = 0;
    // Honest about positive words, except that every third request answers garbage.
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        calls++;
        const text = (JSON.parse(body) as { messages: { content: string }[] }).messages.at(-1)!.content;
        const a = /\[Response A\]\n([\s\S]*?)\n\n\[Response B\]/.exec(text)?.[1] ?? '';
        const b = /\[Response B\]\n([\s\S]*?)\n\nWhich/.exec(text)?.[1] ?? '';
        const answer = calls % 3 === 0 ? 'I cannot decide.' : positiveWords('', a) >= positiveWords('', b) ? 'A' : 'B';
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: answer } }] }));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`;
      process.env.DPO_TEST_ONLINE_KEY = 'sk-test';
      const judge = httpPairwiseJudge({ url, model: 'judge', apiKeyEnv: 'DPO_TEST_ONLINE_KEY', timeoutMs: 5000, retries: 0, concurrency: 4, backoffMs: 1 });
      const r = await trainOnline(smallRun(dir, { maxSteps: 2, saveSteps: 0 }), sampling, judge, quiet);
      assert.equal(r.labelled + r.ties + r.skipped, 2 * 4);
      assert.ok(r.skipped > 0, 'garbage answers were counted as skipped');
      assert.equal(judge.stats().skipped, r.skipped);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dpo online (CLI)', () => {
  test('runs with a reward-function judge and prints the last metrics as JSON; no judge is a usage error', () => {
    const dir = scratchDir('online-cli');
    try {
      const reward = join(dir, 'reward.mjs');
      writeFileSync(reward, `const good = new Set(${JSON.stringify([...POSITIVE])});\nexport default (p, c) => c.split(/\\W+/).filter((w) => good.has(w)).length;\n`);
      const args = ['online', '--model', BASE, '--dataset', promptsFile(dir), '--output-dir', join(dir, 'out'), '--max-steps', '2', '--per-device-train-batch-size', '4',
        '--max-new-tokens', '8', '--logging-steps', '1', '--save-steps', '0', '--missing-eos-penalty', '1'];
      const ok = spawnSync(process.execPath, [join(ROOT, 'bin', 'dpo.js'), ...args, '--reward-fn', reward], { encoding: 'utf8' });
      assert.equal(ok.status, 0, ok.stderr);
      const last = JSON.parse(ok.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
      assert.equal(last.steps, 2);
      assert.ok('generate_s' in last && 'judge_s' in last && 'train_s' in last);
      assert.match(readFileSync(join(dir, 'out', 'online_args.json'), 'utf8'), /"missing_eos_penalty": 1/);
      const bad = spawnSync(process.execPath, [join(ROOT, 'bin', 'dpo.js'), ...args, '--overwrite-output-dir'], { encoding: 'utf8' });
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /give exactly one judge/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
