// `dpo demo`: the generated corpus (seeded, both polarities, neutral openings), the word-level tokenizer (round trip,
// one token per word, the committed copy matches the grammar), the pure measurements (best-of-N, win rate, s.e.),
// and the --quick pipeline end to end on the committed base model: outputs, resume without work, refusal of other
// options in the same folder, --fresh, and continuing after an interruption.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/index.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { allOpenings, generateReviews, grammarVocabulary, reviewText } from '../src/demo/corpus.js';
import { buildTokenizerJson, writeDemoTokenizer } from '../src/demo/tokenizer-build.js';
import { afinnScore, completionReward } from '../src/demo/reward.js';
import { bestOfN, bestOfNKl, meanAndSe, winRate } from '../src/demo/evaluate.js';
import { committedBaseDir } from '../src/demo/base-model.js';
import { quickPreset } from '../src/demo/options.js';
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

test('--quick sets its preset, and flags given explicitly win over it', () => {
  const { options, fresh } = parseDemoArgs(['--quick', '--beta', '0.2,0.4', '--output-dir', 'x', '--fresh']);
  assert.deepEqual(options.betas, [0.2, 0.4]);
  assert.equal(options.trainPrompts, quickPreset.trainPrompts);
  assert.equal(options.outputDir, 'x');
  assert.equal(fresh, true);
});

test('a --quick demo writes the frontier (base, best-of-N, SFT, DPO), token rewards and the report; a rerun does no work', async () => {
  const dir = join(scratch('e2e'), 'run');
  const first = await runDemo({ ...quickPreset, outputDir: dir }, {}, quiet);
  assert.ok(first.stagesRun.includes('pairs') && first.stagesRun.includes('report'), first.stagesRun.join(','));
  const run = readRunDir(dir);
  const methods = new Set(run.frontier!.map((p) => p.method));
  for (const m of ['base', 'best_of_n', 'sft', 'dpo']) assert.ok(methods.has(m), `frontier lacks ${m}`);
  assert.equal(run.frontier!.find((p) => p.method === 'base')!.kl, 0);
  assert.ok(run.tokenSequences!.length > 0);
  for (const s of run.tokenSequences!) assert.equal(s.tokens.length, s.rewards.length);
  for (const f of ['report.html', 'summary.json', 'pairs.jsonl', 'training_args.json', 'metrics.jsonl']) assert.ok(existsSync(join(dir, f)), f);

  const reportTime = statSync(join(dir, 'report.html')).mtimeMs;
  const again = await runDemo({ ...quickPreset, outputDir: dir }, {}, quiet);
  assert.deepEqual(again.stagesRun, []);
  assert.equal(statSync(join(dir, 'report.html')).mtimeMs, reportTime);
  assert.deepEqual(again.evaluations, first.evaluations);

  // An interruption after training: the lost stages (and only those) run again, with the same results.
  rmSync(join(dir, 'stages', 'eval_sft.json'));
  rmSync(join(dir, 'stages', 'token_rewards.json'));
  rmSync(join(dir, 'stages', 'report.json'));
  const resumed = await runDemo({ ...quickPreset, outputDir: dir }, {}, quiet);
  assert.deepEqual(resumed.stagesRun, ['eval_sft', 'token_rewards', 'report']);
  assert.deepEqual(resumed.evaluations, first.evaluations);

  // Other options in the same folder: refused, naming the option; --fresh starts clean.
  await assert.rejects(runDemo({ ...quickPreset, betas: [0.3], outputDir: dir }, {}, quiet), (e: Error) => e instanceof DemoDirError && /betas/.test(e.message) && /--fresh/.test(e.message));
  const clean = await runDemo({ ...quickPreset, betas: [0.3], outputDir: dir }, { fresh: true }, quiet);
  assert.ok(clean.stagesRun.includes('pairs'));
  assert.ok(!existsSync(join(dir, 'runs', 'dpo_beta_0.1')), 'the old run was removed');
  rmSync(dir, { recursive: true });
});

test('a folder that is not a demo run is never used or deleted, even with --fresh', async () => {
  const dir = scratch('foreign');
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  await assert.rejects(runDemo({ ...quickPreset, outputDir: dir }, { fresh: true }, quiet), DemoDirError);
  assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine');
  rmSync(dir, { recursive: true });
});
