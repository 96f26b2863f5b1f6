// `dpo demo`: the generated corpus (seeded, both polarities, neutral openings), the word-level tokenizer (round trip,
// one token per word, the committed copy matches the grammar), the pure measurements (best-of-N, win rate, s.e.),
// the on-policy pieces (online prompts tokenized as the demo's, RSO's pairs and label count), and the --quick
// pipeline end to end on the committed base model: outputs (online DPO and RSO points included, at the offline label
// budget), resume without work, refusal of other options in the same folder, --fresh, continuing after an
// interruption, and the switches that leave the on-policy stages out. No test says which method wins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/index.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { Rng } from '../src/engine/random.js';
import { loadPrompts } from '../src/online/prompts.js';
import { allOpenings, generateReviews, grammarVocabulary, reviewText } from '../src/demo/corpus.js';
import { buildTokenizerJson, writeDemoTokenizer } from '../src/demo/tokenizer-build.js';
import { afinnScore, completionReward } from '../src/demo/reward.js';
import { bestOfN, bestOfNKl, meanAndSe, winRate } from '../src/demo/evaluate.js';
import { committedBaseDir } from '../src/demo/base-model.js';
import { DemoOptionsError, onPolicyBetaOf, quickPreset } from '../src/demo/options.js';
import { rsoDemoPairs, writeOnlinePrompts } from '../src/demo/on-policy.js';
import { promptIds, type Sample } from '../src/demo/sampling.js';
import { runDemo } from '../src/demo/run.js';
import { DemoDirError } from '../src/demo/stages.js';
import { parseDemoArgs } from '../src/cli/demo.js';
import { compareAtEqualKl } from '../src/demo/summary.js';
import type { PolicyEvaluation } from '../src/demo/evaluate.js';
import { readRunDir } from '../src/report/index.js';
import { assertClose } from './helpers.js';

const scratch = (name: string) => mkdtempSync(join(tmpdir(), `dpo-demo-${name}-`));
const quiet = { log: () => {}, progress: { write: () => true, isTTY: false } };

test('the corpus is seeded: the same seed gives the same reviews, another seed others', () => {
  assert.deepEqual(generateReviews(50, 7), generateReviews(50, 7));
  assert.notDeepEqual(generateReviews(50, 7), generateReviews(50, 8));
});

test('the corpus holds both polarities by AFINN score, and the openings used as prompts are neutral', () => {
  const scores = generateReviews(1000, 3).map((r) => afinnScore(reviewText(r)));
  const positive = scores.filter((s) => s > 0).length;
  const negative = scores.filter((s) => s < 0).length;
  assert.ok(positive > 300 && negative > 300, `positive ${positive}, negative ${negative} of 1000`);
  assert.equal(allOpenings().filter((o) => afinnScore(o) !== 0).length, 0);
});

test('the reward is the sentiment a completion adds, negation across the boundary included', () => {
  assert.equal(completionReward('we saw this film.', 'the acting was superb.'), 5);
  assert.equal(completionReward('we saw this film.', 'the plot was not good.'), -3);
  assert.equal(completionReward('we saw this film.', 'it runs about two hours.'), 0);
});

test('the tokenizer round-trips the corpus and gives every grammar word (sentiment words included) one token', () => {
  const dir = scratch('tok');
  writeDemoTokenizer(dir, 64);
  const tok = loadTokenizer(dir)!;
  for (const r of generateReviews(200, 11)) {
    const text = reviewText(r);
    const ids = tok.encode(text);
    assert.ok(!ids.includes(tok.unkTokenId!), `unknown token in "${text}"`);
    assert.equal(tok.decode(ids), text);
  }
  for (const word of grammarVocabulary()) assert.deepEqual(tok.encode(word).length, 1, word);
  assert.equal(tok.bosTokenId, 0);
  assert.equal(tok.eosTokenId, 0);
  rmSync(dir, { recursive: true });
});

test('the committed base model carries the tokenizer that the grammar builds today', () => {
  const committed: unknown = JSON.parse(readFileSync(join(committedBaseDir(), 'tokenizer.json'), 'utf8'));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(buildTokenizerJson())));
  const config = JSON.parse(readFileSync(join(committedBaseDir(), 'config.json'), 'utf8')) as { vocab_size: number };
  assert.equal(config.vocab_size, grammarVocabulary().length + 2);
});

test('best-of-N takes the maximum of disjoint groups; its KL bound is log N − (N−1)/N', () => {
  assert.deepEqual(bestOfN([[1, 5, 2, 2], [0, -1, 3, 4]], 2), [[5, 2], [0, 4]]);
  assert.deepEqual(bestOfN([[1, 5, 2, 2]], 4), [[5]]);
  assert.equal(bestOfNKl(1), 0);
  assertClose([bestOfNKl(4)], [Math.log(4) - 0.75], { atol: 1e-12 });
});

test('win rate counts ties as half; mean and s.e. match hand values', () => {
  assert.equal(winRate([[3, 1], [2]], [[1], [2]]), (1 + 0.5 + 0.5) / 3);
  const { mean, se } = meanAndSe([1, 2, 3, 4]);
  assertClose([mean, se], [2.5, Math.sqrt(5 / 3 / 4)], { atol: 1e-12 });
});

test('DPO is compared with SFT at SFT\'s KL on the line from the base through the DPO points', () => {
  const point = (method: string, kl: number, reward: number, beta?: number): PolicyEvaluation => ({ method, kl, reward, reward_se: 0, win_rate: 0.5, samples: 1, ...(beta ? { beta } : {}) });
  const evals = [point('base', 0, 1), point('dpo', 4, 9, 0.1), point('dpo', 2, 5, 1), point('sft', 1, 2.5)];
  assert.equal(compareAtEqualKl(evals)!.dpoReward, 3); // halfway from (0, 1) to (2, 5)
  const beyond = compareAtEqualKl([...evals.slice(0, 3), point('sft', 6, 2)])!;
  assert.equal(beyond.dpoReward, null);
  assert.equal(beyond.nearest!.beta, 0.1);
});

test('the online prompt file gives every opening the ids the demo samples from (BOS, then its words)', async () => {
  const dir = scratch('prompts');
  const tok = loadTokenizer(committedBaseDir())!;
  const openings = allOpenings();
  const path = join(dir, 'online_prompts.jsonl');
  await writeOnlinePrompts(path, openings, tok); // throws on the first opening tokenized otherwise
  const loaded = await loadPrompts(path, tok);
  assert.deepEqual(loaded.map((p) => p.ids), openings.map((o) => promptIds(tok, o)));
  assert.deepEqual(loaded.map((p) => p.text), openings);
  rmSync(dir, { recursive: true });
});

test('RSO at β_rso = 0 pairs the two best candidates of a prompt; a tie between them costs a label and gives no pair', () => {
  const tok = loadTokenizer(committedBaseDir())!;
  const sample = (prompt: number, reward: number): Sample => ({ prompt, ids: [5 + reward, 0], text: `r${reward}`, logp: -1, reward });
  const prompts = ['the movie was', 'the acting'];
  const candidates = [[0, 2, 7, 1].map((r) => sample(0, r)), [1, 5, 3, 5].map((r) => sample(1, r))];
  const { pairs, accepted, stats } = rsoDemoPairs(prompts, candidates, 0, new Rng(1), tok);
  assert.deepEqual(accepted[0], [2, 1]); // 7, then the best of the rest
  assert.deepEqual(new Set(accepted[1]), new Set([1, 3])); // the two 5s
  assert.equal(pairs.length, 1);
  assert.deepEqual([pairs[0].chosen_reward, pairs[0].rejected_reward, pairs[0].prompt], [7, 2, 'the movie was']);
  assert.deepEqual(pairs[0].prompt_input_ids, promptIds(tok, 'the movie was'));
  assert.deepEqual([stats.labels, stats.pairs, stats.ties, stats.candidates], [2, 1, 1, 8]);
  assert.equal(stats.meanAcceptedReward, (7 + 2 + 5 + 5) / 4);
});

test('the on-policy β is the middle β unless given, and must be one of the offline βs', async () => {
  assert.equal(onPolicyBetaOf({ betas: [2, 0.1, 0.5], onPolicyBeta: null }), 0.5);
  assert.equal(onPolicyBetaOf({ betas: [0.1, 2], onPolicyBeta: null }), 0.1);
  assert.equal(onPolicyBetaOf({ betas: [0.1, 2], onPolicyBeta: 2 }), 2);
  await assert.rejects(runDemo({ ...quickPreset, onPolicyBeta: 0.3, outputDir: join(scratch('beta'), 'run') }, {}, quiet), (e: Error) => e instanceof DemoOptionsError && /--on-policy-beta must be one of --beta/.test(e.message));
});

test('--no-on-policy switches online DPO and RSO off; --no-rso and --no-online-dpo one each', () => {
  const off = parseDemoArgs(['--quick', '--no-on-policy']).options;
  assert.deepEqual([off.onlineDpo, off.rso], [false, false]);
  const noRso = parseDemoArgs(['--no-rso', '--on-policy-beta', '2', '--rso-candidates', '16', '--rso-beta', '1']).options;
  assert.deepEqual([noRso.onlineDpo, noRso.rso, noRso.onPolicyBeta, noRso.rsoCandidates, noRso.rsoBeta], [undefined, false, 2, 16, 1]);
  assert.deepEqual([parseDemoArgs(['--no-online-dpo']).options.onlineDpo, parseDemoArgs([]).options.rso], [false, undefined]);
});

test('--quick sets its preset, and flags given explicitly win over it', () => {
  const { options, fresh } = parseDemoArgs(['--quick', '--beta', '0.2,0.4', '--output-dir', 'x', '--fresh']);
  assert.deepEqual(options.betas, [0.2, 0.4]);
  assert.equal(options.trainPrompts, quickPreset.trainPrompts);
  assert.equal(options.outputDir, 'x');
  assert.equal(fresh, true);
});

test('a --quick demo writes the frontier (base, best-of-N, SFT, DPO, online DPO, RSO), token rewards and the report; a rerun does no work', async () => {
  const dir = join(scratch('e2e'), 'run');
  const first = await runDemo({ ...quickPreset, outputDir: dir }, {}, quiet);
  assert.ok(first.stagesRun.includes('pairs') && first.stagesRun.includes('report'), first.stagesRun.join(','));
  const run = readRunDir(dir);
  const methods = new Set(run.frontier!.map((p) => p.method));
  for (const m of ['base', 'best_of_n', 'sft', 'dpo', 'online_dpo', 'rso_dpo']) assert.ok(methods.has(m), `frontier lacks ${m}`);
  assert.equal(run.frontier!.find((p) => p.method === 'base')!.kl, 0);
  assert.ok(run.tokenSequences!.length > 0);
  for (const s of run.tokenSequences!) assert.equal(s.tokens.length, s.rewards.length);
  for (const f of ['report.html', 'summary.json', 'pairs.jsonl', 'training_args.json', 'metrics.jsonl', 'online_prompts.jsonl', 'rso_pairs.jsonl', 'samples/rso_candidates.jsonl',
    'samples/online_dpo_beta_0.1.jsonl', 'samples/rso_dpo_beta_0.1.jsonl', 'runs/online_dpo_beta_0.1/model.safetensors', 'runs/rso_dpo_beta_0.1/model.safetensors']) assert.ok(existsSync(join(dir, f)), f);

  // The label budget: online DPO judges each training prompt once, as many labels as the offline pairs spent.
  const point = (method: string) => run.frontier!.find((p) => p.method === method)!;
  assert.equal(point('dpo').labels, quickPreset.trainPrompts);
  assert.equal(point('online_dpo').labels, point('dpo').labels);
  assert.equal(point('rso_dpo').labels, quickPreset.trainPrompts);
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as {
    pairs: { pairs: number }; evaluations: PolicyEvaluation[];
    on_policy: { beta: number; online_dpo: { labels: number; pairs: number; ties: number; skipped: number }; rso: { labels: number; pairs: number; ties: number; candidates: number; betaRso: number } };
  };
  const { online_dpo: online, rso } = summary.on_policy;
  assert.equal(summary.on_policy.beta, 0.1);
  assert.equal(online.pairs + online.ties + online.skipped, online.labels);
  assert.equal(point('online_dpo').pairs, online.pairs);
  assert.equal(point('dpo').pairs, summary.pairs.pairs);
  assert.deepEqual([rso.pairs + rso.ties, rso.candidates, rso.betaRso, point('rso_dpo').pairs], [rso.labels, quickPreset.trainPrompts! * quickPreset.rsoCandidates!, 0.1, rso.pairs]);
  assert.equal(readFileSync(join(dir, 'rso_pairs.jsonl'), 'utf8').trim().split('\n').length, rso.pairs);
  for (const m of ['online_dpo', 'rso_dpo']) {
    const e = summary.evaluations.find((x) => x.method === m)!;
    assert.ok(Number.isFinite(e.kl) && Number.isFinite(e.reward) && e.win_rate >= 0 && e.win_rate <= 1, m);
    assert.equal(e.samples, quickPreset.evalPrompts! * quickPreset.samplesPerPrompt!);
    assert.match(first.text, new RegExp(`^${m} β=0\\.1: KL -?[\\d.]+, reward -?[\\d.]+ ± [\\d.]+ from ${e.labels} labels \\(${e.pairs} pairs\\); offline dpo β=0\\.1`, 'm'));
  }

  const reportTime = statSync(join(dir, 'report.html')).mtimeMs;
  const again = await runDemo({ ...quickPreset, outputDir: dir }, {}, quiet);
  assert.deepEqual(again.stagesRun, []);
  assert.equal(statSync(join(dir, 'report.html')).mtimeMs, reportTime);
  assert.deepEqual(again.evaluations, first.evaluations);

  // Lost stages (online DPO's training among them) run again, and only those, with the same results: online DPO
  // retrained from scratch ends with the same policy.
  const lost = ['train_online_dpo_beta_0.1', 'eval_sft', 'eval_online_dpo_beta_0.1', 'eval_rso_dpo_beta_0.1', 'token_rewards', 'report'];
  for (const stage of lost) rmSync(join(dir, 'stages', `${stage}.json`));
  const resumed = await runDemo({ ...quickPreset, outputDir: dir }, {}, quiet);
  assert.deepEqual(resumed.stagesRun, lost);
  assert.deepEqual(resumed.evaluations, first.evaluations);

  // Other options in the same folder: refused, naming the option; --fresh starts clean. Without the on-policy stages
  // the run has no such points or stages.
  await assert.rejects(runDemo({ ...quickPreset, betas: [0.3], outputDir: dir }, {}, quiet), (e: Error) => e instanceof DemoDirError && /betas/.test(e.message) && /--fresh/.test(e.message));
  const clean = await runDemo({ ...quickPreset, betas: [0.3], onlineDpo: false, rso: false, outputDir: dir }, { fresh: true }, quiet);
  assert.ok(clean.stagesRun.includes('pairs'));
  assert.ok(!existsSync(join(dir, 'runs', 'dpo_beta_0.1')), 'the old run was removed');
  assert.deepEqual(clean.evaluations.map((e) => e.method).filter((m) => m === 'online_dpo' || m === 'rso_dpo'), []);
  assert.deepEqual(clean.stagesRun.filter((name) => /online|rso/.test(name)), []);
  assert.ok(!existsSync(join(dir, 'rso_pairs.jsonl')) && !existsSync(join(dir, 'online_prompts.jsonl')));
  rmSync(dir, { recursive: true });
});

test('a folder that is not a demo run is never used or deleted, even with --fresh', async () => {
  const dir = scratch('foreign');
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  await assert.rejects(runDemo({ ...quickPreset, outputDir: dir }, { fresh: true }, quiet), DemoDirError);
  assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine');
  rmSync(dir, { recursive: true });
});
