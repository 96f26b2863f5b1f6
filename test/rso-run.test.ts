// `dpo rso` end to end on a tiny random Qwen2 with the chatml test tokenizer and a JS reward function: the files agree
// with the rewards (chosen beats rejected, at most k accepted per prompt, the pairs are the first-round matches of the
// accepted samples, the ids are the prompts' and the candidates' own), the trainer ran on them with π_ref = π_sft,
// the seed fixes everything, the candidates are reused when the options match, the pairwise-judge path (rewards from
// an anchor, eq. 7), and the errors: a throwing reward function names the prompt index, a bad prompts file its record.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import '../src/index.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { TrainConfigError } from '../src/dpo/trainer-config.js';
import { loadRewardFunction, rewardFunctionJudge, type Judge, type RewardFunction } from '../src/online/judges.js';
import { loadPrompts } from '../src/online/prompts.js';
import { rsoPairs } from '../src/online/rso.js';
import {
  ANCHOR_PROBABILITY_CLIP, RsoConfigError, anchorReward, judgedPairs, preferenceProbability, runRso, type RsoOptions, type RsoRunInput,
} from '../src/online/rso-run.js';
import { assertClose } from './helpers.js';
import { MODEL_FIXTURES, TINY_LLAMA, readMetrics, runCli, saveTinyModel, scratchDir, writeJsonl } from './trainer-helpers.js';

interface CandidateRow {
  prompt_index: number; candidate: number; completion: string; completion_input_ids: number[]; reward: number | null;
  accepted: boolean; accept_order: number | null; duplicate_of: number | null; anchor: boolean;
}
interface PairRow {
  prompt_index: number; prompt: string; chosen: string; rejected: string; prompt_input_ids: number[]; chosen_input_ids: number[]; rejected_input_ids: number[];
  chosen_reward: number; rejected_reward: number; chosen_candidate: number; rejected_candidate: number;
}
const readJsonl = <T>(path: string): T[] => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as T);
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

const scratch = scratchDir('rso-run');
after(() => rmSync(scratch, { recursive: true, force: true }));
const quiet = (lines: string[] = []) => ({ log: (line: string) => lines.push(line), progress: { write: () => true, isTTY: false } });

const TOPICS = ['sky', 'sea', 'grass', 'snow'];
const N = 16; // candidates per prompt
const K = 4; // accepted at most
const SAMPLING: Partial<RsoOptions> = { numCandidates: N, numSamples: K, maxNewTokens: 6, seed: 3 };
const samplingFlags = ['--rso-num-candidates', String(N), '--rso-num-samples', String(K), '--max-new-tokens', '6', '--seed', '3'];
// Vowels count up, length counts down: completions of random tokens get varied, mostly distinct rewards.
const REWARD_SOURCE = 'export default function reward(prompt, completion) {\n  let s = 0;\n  for (const ch of completion) s += /[aeiou]/.test(ch) ? 1 : 0;\n  return s - 0.1 * completion.length;\n}\n';
let model = '';
let prompts = '';
let rewardPath = '';
let reward: RewardFunction;

before(async () => {
  // The chatml tokenizer has 307 ids, so the model's vocabulary is 307 too: every sampled id decodes.
  model = await saveTinyModel(join(scratch, 'sft'), { ...TINY_LLAMA, model_type: 'qwen2', vocab_size: 307, max_position_embeddings: 64, tie_word_embeddings: true, eos_token_id: 306 }, 11);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(MODEL_FIXTURES, '..', 'tokenizer', 'chatml', f), join(model, f));
  prompts = writeJsonl(join(scratch, 'prompts.jsonl'), TOPICS.map((t) => ({ prompt: `what color is the ${t}?` })));
  rewardPath = join(scratch, 'reward.mjs');
  writeFileSync(rewardPath, REWARD_SOURCE);
  reward = await loadRewardFunction(rewardPath);
});

const judgeOf = async (path: string): Promise<Judge> => rewardFunctionJudge(await loadRewardFunction(path), path);
const input = (outputDir: string, judge: Judge, options: Partial<RsoOptions> = SAMPLING, train: RsoRunInput['train'] = null): RsoRunInput =>
  ({ model, dataset: prompts, outputDir, judge, options, train });

describe('dpo rso end to end with a reward function', () => {
  const out = () => join(scratch, 'cli');
  test('candidates, pairs and summary agree with the rewards; the trainer ran on the pairs with the SFT model as reference', async () => {
    const r = runCli(['rso', '--model', model, '--dataset', prompts, '--output-dir', out(), '--reward-fn', rewardPath, ...samplingFlags,
      '--max-steps', '2', '--per-device-train-batch-size', '4', '--learning-rate', '1e-3', '--logging-steps', '1']);
    assert.equal(r.status, 0, r.stderr);
    const candidates = readJsonl<CandidateRow>(join(out(), 'candidates.jsonl'));
    const pairs = readJsonl<PairRow>(join(out(), 'pairs.jsonl'));
    const summary = readJson(join(out(), 'rso_summary.json'));
    const items = await loadPrompts(prompts, loadTokenizer(model)!);
    assert.equal(candidates.length, TOPICS.length * N);

    const expectedPairs: PairRow[] = [];
    for (const item of items) {
      const group = candidates.filter((c) => c.prompt_index === item.index);
      assert.deepEqual(group.map((c) => c.candidate), [...Array(N).keys()]);
      for (const c of group) {
        assert.equal(c.reward, await reward(item.text, c.completion), `the reward of prompt ${item.index} candidate ${c.candidate} is the function's`);
        if (c.duplicate_of !== null) assert.deepEqual(c.completion_input_ids, group[c.duplicate_of].completion_input_ids);
      }
      const distinct = group.filter((c) => c.duplicate_of === null).length;
      const accepted = group.filter((c) => c.accepted).sort((a, b) => a.accept_order! - b.accept_order!);
      assert.equal(accepted.length, Math.min(K, distinct), 'the sampler fills k slots while distinct candidates remain');
      assert.deepEqual(accepted.map((c) => c.accept_order), [...accepted.keys()]);
      assert.ok(accepted.every((c) => c.duplicate_of === null), 'a duplicate is never accepted');
      const matches = rsoPairs(accepted.map((c) => ({ index: c.candidate, reward: c.reward! })), 'first-round');
      for (const m of matches) expectedPairs.push({ ...pairFields(group[m.chosenIndex], group[m.rejectedIndex]), prompt_index: item.index, prompt: item.text, prompt_input_ids: item.ids });
    }
    assert.deepEqual(pairs, expectedPairs, 'pairs.jsonl holds the first-round matches of the accepted samples, in order');
    assert.ok(pairs.length > 0);
    for (const p of pairs) assert.ok(p.chosen_reward > p.rejected_reward, `prompt ${p.prompt_index}: chosen ${p.chosen_reward} > rejected ${p.rejected_reward}`);

    const rewards = candidates.map((c) => c.reward!);
    const acceptedRewards = candidates.filter((c) => c.accepted).map((c) => c.reward!);
    assert.equal(summary.candidates, candidates.length);
    assert.equal(summary.accepted, acceptedRewards.length);
    assert.equal(summary.pairs, pairs.length);
    assert.equal(summary.acceptance_rate, acceptedRewards.length / candidates.length);
    assertClose([summary.mean_reward_candidates as number, summary.mean_reward_accepted as number],
      [rewards.reduce((a, b) => a + b) / rewards.length, acceptedRewards.reduce((a, b) => a + b) / acceptedRewards.length], { atol: 1e-12 });
    assert.ok((summary.mean_reward_accepted as number) > (summary.mean_reward_candidates as number), 'rejection sampling tilts towards high rewards');
    const theorem1 = items.map((item) => {
      const pool = candidates.filter((c) => c.prompt_index === item.index && c.duplicate_of === null).map((c) => c.reward!);
      const rMax = Math.max(...pool);
      return pool.reduce((a, r) => a + Math.exp((r - rMax) / 0.5), 0) / pool.length; // --rso-beta 0.5 (the default)
    });
    assertClose([summary.expected_acceptance_rate as number], [theorem1.reduce((a, b) => a + b) / theorem1.length], { atol: 1e-12 });
    assert.deepEqual([summary.judge_calls, summary.skipped_judge_calls], [candidates.filter((c) => c.duplicate_of === null).length, 0]);

    const args = readJson(join(out(), 'training_args.json'));
    assert.deepEqual([args.loss_type, args.beta, args.ref_model, args.dataset], [['sigmoid'], 0.05, null, join(out(), 'pairs.jsonl')]);
    assert.deepEqual(readMetrics(out()).map((m) => m.step), [1, 2]);
    assert.match(r.stdout.trim().split('\n').at(-1)!, /"pairs":\d+.*"steps":2/);
  });

  test('the same seed gives the same files, another seed other candidates', async () => {
    const judge = await judgeOf(rewardPath); // the CLI names the judge by its path too
    await runRso(input(join(scratch, 'same'), judge), quiet());
    for (const f of ['candidates.jsonl', 'pairs.jsonl']) assert.equal(readFileSync(join(scratch, 'same', f), 'utf8'), readFileSync(join(out(), f), 'utf8'), f);
    await runRso(input(join(scratch, 'other'), judge, { ...SAMPLING, seed: 4 }), quiet());
    assert.notEqual(readFileSync(join(scratch, 'other', 'candidates.jsonl'), 'utf8'), readFileSync(join(out(), 'candidates.jsonl'), 'utf8'));
  });

  test('a second run with the same options reuses candidates.jsonl and pairs.jsonl; another --rso-beta reuses only the candidates', async () => {
    const dir = join(scratch, 'same');
    const before = readFileSync(join(dir, 'pairs.jsonl'), 'utf8');
    let calls = 0;
    const base = await judgeOf(rewardPath);
    const counting: Judge = { ...base, score: (p, c) => { calls++; return base.score!(p, c); } };
    const lines: string[] = [];
    const again = await runRso(input(dir, counting), quiet(lines));
    assert.equal(again.summary.reused, 'all');
    assert.match(lines.join('\n'), /reusing .*candidates\.jsonl and .*pairs\.jsonl \(same options\)/);
    assert.equal(readFileSync(join(dir, 'pairs.jsonl'), 'utf8'), before);
    const idsBefore = readJsonl<CandidateRow>(join(dir, 'candidates.jsonl')).map((c) => c.completion_input_ids);
    const greedy = await runRso(input(dir, counting, { ...SAMPLING, beta: 0 }), quiet(lines));
    assert.equal(greedy.summary.reused, 'candidates');
    assert.equal(calls, 0, 'the judge is not asked again');
    const rows = readJsonl<CandidateRow>(join(dir, 'candidates.jsonl'));
    assert.deepEqual(rows.map((c) => c.completion_input_ids), idsBefore);
    for (const p of TOPICS.keys()) {
      // β = 0: each pass accepts only the best remaining candidate, so the accepted ones are the top k (top-k-over-N).
      const group = rows.filter((c) => c.prompt_index === p && c.duplicate_of === null).map((c) => c.reward!).sort((a, b) => b - a);
      const accepted = rows.filter((c) => c.prompt_index === p && c.accepted).sort((a, b) => a.accept_order! - b.accept_order!).map((c) => c.reward!);
      assert.deepEqual(accepted, group.slice(0, K));
    }
  });
});

function pairFields(chosen: CandidateRow, rejected: CandidateRow): Omit<PairRow, 'prompt_index' | 'prompt' | 'prompt_input_ids'> {
  return {
    chosen: chosen.completion, rejected: rejected.completion, chosen_input_ids: chosen.completion_input_ids, rejected_input_ids: rejected.completion_input_ids,
    chosen_reward: chosen.reward!, rejected_reward: rejected.reward!, chosen_candidate: chosen.candidate, rejected_candidate: rejected.candidate,
  };
}

describe('a pairwise judge (prefer() only): rewards against an anchor candidate, pairs labelled by the judge', () => {
  test('r = logit(P(y ≻ anchor)) with the anchor at 0, and every pair\'s chosen is the one the judge prefers', async () => {
    const hidden = (completion: string) => [...completion].filter((ch) => /[aeiou]/.test(ch)).length;
    let calls = 0;
    const judge: Judge = {
      name: 'vowels-pairwise',
      async prefer(_prompt, a, b) {
        calls++;
        return hidden(a) === hidden(b) ? { winner: null, status: 'ok' } : { winner: hidden(a) > hidden(b) ? 0 : 1, status: 'ok' };
      },
    };
    const dir = join(scratch, 'pairwise');
    const result = await runRso(input(dir, judge, { ...SAMPLING, pairMode: 'tournament' }), quiet());
    const rows = readJsonl<CandidateRow>(join(dir, 'candidates.jsonl'));
    const win = anchorReward(1);
    assertClose([win], [Math.log((1 - ANCHOR_PROBABILITY_CLIP) / ANCHOR_PROBABILITY_CLIP)], { atol: 1e-12 });
    for (const p of TOPICS.keys()) {
      const group = rows.filter((c) => c.prompt_index === p);
      const anchors = group.filter((c) => c.anchor);
      assert.equal(anchors.length, 1, 'one anchor per prompt');
      assert.equal(anchors[0].reward, 0);
      for (const c of group) {
        const expected = Math.sign(hidden(c.completion) - hidden(anchors[0].completion)) * win;
        assertClose([c.reward!], [expected], { atol: 1e-12 }, `prompt ${p} candidate ${c.candidate}`);
      }
    }
    const pairs = readJsonl<PairRow>(join(dir, 'pairs.jsonl'));
    assert.ok(pairs.length > 0);
    for (const pair of pairs) assert.ok(hidden(pair.chosen) > hidden(pair.rejected), `${pair.chosen} over ${pair.rejected}`);
    const s = result.summary;
    assert.deepEqual([s.judge_kind, s.judge_calls, s.skipped_judge_calls], ['pairwise-anchor', calls, 0]);
    assert.equal(s.judge_counts.scoring_calls, rows.filter((c) => c.duplicate_of === null && !c.anchor).length);
  });

  test('a verdict becomes P(candidate ≻ other): tie 1/2, a win (1 + c)/2, skipped null; judgedPairs plays rsoPairs\' rounds', async () => {
    assert.equal(preferenceProbability({ winner: null, status: 'ok' }, true), 0.5);
    assert.equal(preferenceProbability({ winner: 0, status: 'ok' }, true), 1);
    assert.equal(preferenceProbability({ winner: 0, confidence: 0.75, status: 'ok' }, false), 0.25);
    assert.equal(preferenceProbability({ winner: 1, confidence: 0.75, status: 'ok' }, false), 0.75);
    assert.equal(preferenceProbability({ winner: 1, confidence: 0.9, status: 'ok' }, true), 1 - 0.9);
    assert.equal(preferenceProbability({ winner: null, status: 'skipped', reason: 'timeout' }, true), null);
    assert.equal(anchorReward(0.5), 0);
    assertClose([anchorReward(0.75), anchorReward(0)], [Math.log(3), -Math.log(99)], { atol: 1e-12 });
    const rewards = [3, 1, 4, 1.5, 5, 9, 2, 6, 0.5];
    const compare = async (a: number, b: number) => (rewards[a] === rewards[b] ? null : rewards[a] > rewards[b] ? 0 : 1);
    const order = [...rewards.keys()];
    for (const mode of ['first-round', 'tournament'] as const) {
      assert.deepEqual(await judgedPairs(order, mode, compare), rsoPairs(order.map((i) => ({ index: i, reward: rewards[i] })), mode), mode);
    }
  });
});

describe('errors', () => {
  test('a reward function that throws names the prompt index and its line', async () => {
    const path = join(scratch, 'fragile.mjs');
    writeFileSync(path, 'export default (prompt, completion) => { if (prompt.includes("snow")) throw new Error("no snow today"); return completion.length; };\n');
    await assert.rejects(runRso(input(join(scratch, 'fragile'), await judgeOf(path)), quiet()),
      /judge '.*fragile\.mjs' failed on prompt index 3 \(.*prompts\.jsonl:4\), candidate \d+: no snow today/);
  });

  test('a bad prompts file: a record without a prompt names its line, a missing file says so', async () => {
    const judge = await judgeOf(rewardPath);
    const bad = writeJsonl(join(scratch, 'bad-prompts.jsonl'), [{ prompt: 'fine' }, { question: 'where is the prompt?' }]);
    await assert.rejects(runRso({ ...input(join(scratch, 'bad'), judge), dataset: bad }, quiet()), /bad-prompts\.jsonl:2 \(record 1\): no usable 'prompt' column/);
    await assert.rejects(runRso({ ...input(join(scratch, 'bad'), judge), dataset: join(scratch, 'nowhere.jsonl') }, quiet()), /nowhere\.jsonl: dataset not found/);
  });

  test('options are checked before any sampling: RSO losses only, k ≤ N; the CLI exits 2 on them', async () => {
    const judge = await judgeOf(rewardPath);
    await assert.rejects(runRso(input(join(scratch, 'ipo'), judge, SAMPLING, { lossType: ['ipo'] }), quiet()), (e: unknown) => e instanceof TrainConfigError && /RSO trains with one of sigmoid, hinge/.test(e.message));
    await assert.rejects(runRso(input(join(scratch, 'k'), judge, { ...SAMPLING, numSamples: N + 1 }), quiet()), RsoConfigError);
    const r = runCli(['rso', '--model', model, '--dataset', prompts, '--output-dir', join(scratch, 'u1'), '--reward-fn', rewardPath, '--rso-pair-mode', 'swiss']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /dpo rso: --rso-pair-mode must be 'first-round' or 'tournament', got "swiss"/);
    const noJudge = runCli(['rso', '--model', model, '--dataset', prompts, '--output-dir', join(scratch, 'u2')]);
    assert.equal(noJudge.status, 2, noJudge.stderr);
    assert.match(noJudge.stderr, /give exactly one judge/);
  });
});
