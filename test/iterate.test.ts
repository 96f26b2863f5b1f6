// `dpo iterate` (online/iterate.ts) on a tiny GPT-2 with the demo's word-level tokenizer, built on the fly, and a JS
// reward function written to a temporary .mjs file: two rounds of iterative DPO (the files of each round, round 2
// sampling from round 1's weights, resuming after round 2's DONE marker is deleted redoes round 2 only and repeats it
// bit for bit, other options are refused), two rounds of pairwise Cringe, the pairwise Cringe training lowering the
// rejected completions' likelihood on a fixed pair set, pairs from a compare-only judge, and a judge that throws.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Rng, currentBackend, noGrad, scope } from '../src/index.js';
import { collatePreferenceBatch } from '../src/data/collate.js';
import type { TokenizedExample } from '../src/data/tokenize.js';
import { allOpenings } from '../src/demo/corpus.js';
import { writeDemoTokenizer } from '../src/demo/tokenizer-build.js';
import { concatenatedLogps } from '../src/dpo/logps.js';
import { loadPretrained, savePretrained } from '../src/io/pretrained.js';
import { createModelFromHFConfig } from '../src/models/index.js';
import { defaultCringeOptions, trainPairwiseCringe } from '../src/online/cringe.js';
import {
  DONE_FILE, IterateConfigError, pairFromPreferences, pairFromScores, runIterate, type IterateConfig, type RoundSummary,
} from '../src/online/iterate.js';
import { loadRewardFunction, rewardFunctionJudge, type Judge, type Preference } from '../src/online/judges.js';
import { assertClose } from './helpers.js';
import { scratchDir, writeJsonl } from './trainer-helpers.js';

const scratch = scratchDir('iterate');
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A GPT-2 of 1 layer and width 16 over the demo's 253-word vocabulary, with its tokenizer files. */
async function tinyModel(dir: string, seed: number): Promise<string> {
  const tokenizerDir = join(scratch, `tokenizer-${seed}`);
  mkdirSync(tokenizerDir, { recursive: true });
  const vocab = writeDemoTokenizer(tokenizerDir, 32);
  const config = { model_type: 'gpt2', vocab_size: vocab, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0 };
  const model = createModelFromHFConfig(config, new Rng(seed));
  await savePretrained(model, dir, { config, tokenizerFrom: tokenizerDir });
  model.dispose();
  return dir;
}

const BASE = await tinyModel(join(scratch, 'base'), 1);
const PROMPTS = writeJsonl(join(scratch, 'prompts.jsonl'), allOpenings().filter((_, i) => i % 997 === 0).slice(0, 4).map((prompt) => ({ prompt })));
const REWARD = join(scratch, 'reward.mjs');
// The number of letters "e" in the completion: varied enough on random words that most prompts get a pair.
writeFileSync(REWARD, 'export default function letterE(prompt, completion) { return [...completion].filter((ch) => ch === "e").length; }\n');
const JUDGE = rewardFunctionJudge(await loadRewardFunction(REWARD), REWARD);
const letterE = (text: string) => [...text].filter((ch) => ch === 'e').length;

const config = (outputDir: string, over: Partial<IterateConfig> = {}): IterateConfig => ({
  model: BASE, prompts: PROMPTS, outputDir, rounds: 2, samplesPerPrompt: 3, lossType: ['sigmoid'],
  temperature: 1, topK: 0, topP: 1, maxNewTokens: 6, generationBatchSize: 16, maxPromptLength: null, maxPrompts: null,
  learningRate: 0.02, beta: 0.5, numTrainEpochs: 2, maxSteps: -1, perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 1, maxLength: null,
  lrSchedulerType: 'constant', warmupRatio: 0, weightDecay: 0, maxGradNorm: 1, seed: 7, cringe: { ...defaultCringeOptions },
  ...over,
});

function quiet(): { log: (line: string) => void; progress: { write: () => boolean; isTTY: boolean }; lines: string[] } {
  const lines: string[] = [];
  return { log: (line) => lines.push(line), progress: { write: () => true, isTTY: false }, lines };
}
const readJsonl = <T>(path: string): T[] => readFileSync(path, 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as T);

interface SampleRow { prompt_index: number; prompt: string; completions: string[]; scores: number[] | null; wins: number[] | null; logps: number[]; outcome: string; chosen?: number; rejected?: number }
interface PairRow { prompt_input_ids: number[]; chosen_input_ids: number[]; rejected_input_ids: number[]; chosen: string; rejected: string; score_chosen: number; score_rejected: number; prompt_index: number }

/** Σ log π(chosen), Σ log π(rejected) of the pairs under the model in `dir`. */
function pairLogps(dir: string, pairs: readonly PairRow[]): { chosen: number[]; rejected: number[] } {
  const { model } = loadPretrained(dir);
  try {
    const examples: TokenizedExample[] = pairs.map((p, i) => ({ index: i, source: 'p', promptIds: p.prompt_input_ids, chosenIds: p.chosen_input_ids, rejectedIds: p.rejected_input_ids, promptMismatch: false }));
    return noGrad(() => scope(() => {
      const lp = concatenatedLogps(model, collatePreferenceBatch(examples, { padTokenId: 0 }));
      return { chosen: Array.from(lp.chosen.data), rejected: Array.from(lp.rejected.data) };
    }));
  } finally {
    model.dispose();
  }
}

const withoutTimes = (s: RoundSummary) => ({ ...s, generate_seconds: 0, judge_seconds: 0, train_seconds: 0 });

describe(`dpo iterate (${currentBackend().name} backend)`, () => {
  test('two rounds of iterative DPO: the files of each round, round 2 samples from round 1\'s weights', async () => {
    const out = join(scratch, 'dpo');
    const hooks = quiet();
    const result = await runIterate(config(out), JUDGE, hooks);
    assert.deepEqual(result.ran, [1, 2]);
    assert.equal(result.finalModel, join(out, 'round-2'));
    assert.deepEqual(readJsonl<RoundSummary>(join(out, 'rounds.jsonl')), result.rounds, 'rounds.jsonl holds one summary per round');
    for (const n of [1, 2]) {
      const dir = join(out, `round-${n}`);
      for (const file of ['samples.jsonl', 'pairs.jsonl', 'metrics.jsonl', 'config.json', 'model.safetensors', 'tokenizer.json', DONE_FILE]) assert.ok(existsSync(join(dir, file)), `round ${n}: ${file}`);
      const summary = result.rounds[n - 1];
      assert.deepEqual(JSON.parse(readFileSync(join(dir, DONE_FILE), 'utf8')), summary);
      assert.equal(summary.start_model, n === 1 ? BASE : join(out, 'round-1'));
      const samples = readJsonl<SampleRow>(join(dir, 'samples.jsonl'));
      assert.equal(samples.length, 4);
      for (const s of samples) {
        assert.equal(s.completions.length, 3);
        assert.deepEqual(s.scores, s.completions.map(letterE), 'the judge\'s scores are the reward function\'s');
      }
      const scores = samples.flatMap((s) => s.scores!);
      assertClose([summary.mean_score!], [scores.reduce((a, b) => a + b, 0) / scores.length], { atol: 1e-12 }, 'mean score');
      const pairs = readJsonl<PairRow>(join(dir, 'pairs.jsonl'));
      assert.equal(summary.pairs, pairs.length);
      assert.equal(summary.pairs + summary.tied + summary.skipped, 4, 'every prompt gives a pair or is counted as tied or skipped');
      assert.ok(summary.pairs >= 2, `round ${n}: ${summary.pairs} pairs`);
      for (const p of pairs) {
        const row = samples.find((s) => s.prompt_index === p.prompt_index)!;
        assert.equal(p.score_chosen, Math.max(...row.scores!));
        assert.equal(p.score_rejected, Math.min(...row.scores!));
        assert.ok(p.score_chosen > p.score_rejected);
        assert.deepEqual([p.chosen, p.rejected], [row.completions[row.chosen!], row.completions[row.rejected!]]);
      }
      assert.equal(readJsonl(join(dir, 'metrics.jsonl')).length, summary.train_steps);
      assert.ok(summary.train_steps > 0 && Number.isFinite(summary.train_loss));
    }
    const args = JSON.parse(readFileSync(join(out, 'round-2', 'training_args.json'), 'utf8')) as { model: string; ref_model: string | null };
    assert.deepEqual([args.model, args.ref_model], [join(out, 'round-1'), null], 'round 2 trains round 1\'s model; the reference is that same starting model');

    // Round 2's samples were drawn from round 1's weights: their log-probs are round 1's, not the base model's.
    const samples2 = readJsonl<SampleRow>(join(out, 'round-2', 'samples.jsonl'));
    const pairs2 = readJsonl<PairRow>(join(out, 'round-2', 'pairs.jsonl'));
    const logged = pairs2.map((p) => {
      const row = samples2.find((s) => s.prompt_index === p.prompt_index)!;
      return [row.logps[row.chosen!], row.logps[row.rejected!]];
    });
    const underRound1 = pairLogps(join(out, 'round-1'), pairs2);
    const underBase = pairLogps(BASE, pairs2);
    assertClose(logged.flat(), underRound1.chosen.flatMap((c, i) => [c, underRound1.rejected[i]]), { atol: 2e-4, rtol: 1e-5 }, 'round-2 sample log-probs under round 1');
    const moved = Math.max(...underBase.chosen.map((c, i) => Math.abs(c - underRound1.chosen[i])));
    assert.ok(moved > 1e-2, `round 1's training moved the log-probs (max |Δ| ${moved})`);

    // Resume: without round 2's marker, round 2 is redone (identically), round 1 is left alone.
    const round1Weights = readFileSync(join(out, 'round-1', 'model.safetensors'));
    const round1Time = statSync(join(out, 'round-1', 'model.safetensors')).mtimeMs;
    const round2Weights = readFileSync(join(out, 'round-2', 'model.safetensors'));
    rmSync(join(out, 'round-2', DONE_FILE));
    const again = quiet();
    const resumed = await runIterate(config(out), JUDGE, again);
    assert.deepEqual(resumed.ran, [2]);
    assert.ok(again.lines.some((l) => l.includes('round 2: unfinished')), again.lines.join('\n'));
    assert.ok(readFileSync(join(out, 'round-1', 'model.safetensors')).equals(round1Weights) && statSync(join(out, 'round-1', 'model.safetensors')).mtimeMs === round1Time, 'round 1 untouched');
    assert.ok(readFileSync(join(out, 'round-2', 'model.safetensors')).equals(round2Weights), 'the redone round 2 repeats itself bit for bit');
    assert.deepEqual(resumed.rounds.map(withoutTimes), result.rounds.map(withoutTimes));
    assert.equal(readJsonl(join(out, 'rounds.jsonl')).length, 2);

    // Nothing left to do with the same options; other options are refused.
    assert.deepEqual((await runIterate(config(out), JUDGE, quiet())).ran, []);
    await assert.rejects(runIterate(config(out, { learningRate: 0.5 }), JUDGE, quiet()), (e: Error) => e instanceof IterateConfigError && /--learning-rate: 0\.02 there, 0\.5 now/.test(e.message));
  });

  test('two rounds of pairwise Cringe: the round\'s model, samples, pairs and per-step Cringe metrics', async () => {
    const out = join(scratch, 'cringe');
    const result = await runIterate(config(out, { lossType: ['pairwise_cringe'], learningRate: 0.01 }), JUDGE, quiet());
    assert.deepEqual(result.ran, [1, 2]);
    for (const n of [1, 2]) {
      const dir = join(out, `round-${n}`);
      const metrics = readJsonl<Record<string, number>>(join(dir, 'metrics.jsonl'));
      assert.equal(metrics.length, result.rounds[n - 1].train_steps);
      for (const key of ['loss', 'nll', 'cringe', 'cringe/gate', 'cringe/margin', 'logps/chosen', 'logps/rejected', 'grad_norm', 'learning_rate']) assert.ok(Number.isFinite(metrics[0][key]), `${key} in metrics.jsonl`);
      assert.ok(existsSync(join(dir, 'model.safetensors')) && existsSync(join(dir, 'tokenizer.json')) && existsSync(join(dir, DONE_FILE)));
    }
    assert.equal(result.rounds[1].start_model, join(out, 'round-1'));
    assert.ok(!readFileSync(join(out, 'round-2', 'model.safetensors')).equals(readFileSync(join(out, 'round-1', 'model.safetensors'))), 'round 2 changed the weights');
  });

  test('pairwise Cringe training lowers every rejected completion\'s likelihood on a fixed pair set; the NLL alone does not', async () => {
    // Six pairs of random words ending with EOS, as sampled completions do. The gate is held open (b = 10: the Cringe
    // term applies until y_w leads y_l by ~10 nats); with b = 0 it closes as soon as y_w is the likelier, by design.
    const dir = await tinyModel(join(scratch, 'fixed'), 5);
    const rng = new Rng(3);
    const words = (n: number) => Array.from({ length: n }, () => 2 + rng.int(250));
    const pairs: PairRow[] = Array.from({ length: 6 }, (_, i) => ({
      prompt_input_ids: [0, ...words(3)], chosen_input_ids: [...words(3), 0], rejected_input_ids: [...words(3), 0], chosen: '', rejected: '', score_chosen: 1, score_rejected: 0, prompt_index: i,
    }));
    const examples = pairs.map((p, i) => ({ index: i, source: 'fixed', promptIds: p.prompt_input_ids, chosenIds: p.chosen_input_ids, rejectedIds: p.rejected_input_ids, promptMismatch: false }));
    const before = pairLogps(dir, pairs);
    const trainWith = async (alpha: number) => {
      const policy = loadPretrained(dir);
      const records = trainPairwiseCringe(policy.model, examples, {
        cringe: { ...defaultCringeOptions, alpha, margin: 10 }, learningRate: 0.01, lrSchedulerType: 'constant', warmupRatio: 0, weightDecay: 0, maxGradNorm: 1,
        perDeviceTrainBatchSize: 3, gradientAccumulationSteps: 2, numTrainEpochs: 20, maxSteps: -1, seed: 1, padTokenId: 0,
      });
      assert.equal(records.length, 20, 'one step per epoch of 6 pairs in micro-batches of 3 × 2');
      const trained = join(scratch, `fixed-alpha-${alpha}`);
      await savePretrained(policy.model, trained, { config: policy.config });
      policy.model.dispose();
      return pairLogps(trained, pairs);
    };
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const cringe = await trainWith(1);
    const nllOnly = await trainWith(0);
    assert.ok(cringe.rejected.every((r, i) => r < before.rejected[i] - 1), `Σ log π(y_l) per pair: ${before.rejected} → ${cringe.rejected}`);
    assert.ok(mean(cringe.chosen) > mean(before.chosen) + 5, `mean Σ log π(y_w): ${mean(before.chosen)} → ${mean(cringe.chosen)}`);
    assert.ok(mean(nllOnly.rejected) > mean(before.rejected), `the NLL alone drags y_l up with y_w (shared EOS, shared features): ${mean(before.rejected)} → ${mean(nllOnly.rejected)}`);
  });

  test('pairs from scores: best against worst, first index on equal scores, no pair when all are equal', () => {
    assert.deepEqual(pairFromScores([1, 3, 0, 3, 0]), { kind: 'pair', chosen: 1, rejected: 2 });
    assert.deepEqual(pairFromScores([2, 2, 2]), { kind: 'tied' });
    assert.deepEqual(pairFromScores([5]), { kind: 'tied' });
  });

  test('pairs from a compare-only judge: most wins against fewest, only if their own comparison agrees; skips are never labels', async () => {
    const compareOnly = (decide: (a: string, b: string) => Preference): Judge => ({ name: 'compare-only', prefer: async (_p, a, b) => decide(a, b) });
    const byLength = compareOnly((a, b) => (a.length === b.length ? { winner: null, status: 'ok' } : { winner: a.length > b.length ? 0 : 1, status: 'ok' }));
    assert.deepEqual(await pairFromPreferences(byLength, 'p', ['bb', 'cccc', 'a']), { outcome: { kind: 'pair', chosen: 1, rejected: 2 }, wins: [1, 2, 0], skippedComparisons: 0 });
    const cycle = compareOnly((a, b) => ({ winner: ({ rs: 0, sp: 0, pr: 0 } as Record<string, 0>)[a + b] ?? 1, status: 'ok' })); // rock > scissors > paper > rock
    assert.deepEqual((await pairFromPreferences(cycle, 'p', ['r', 's', 'p'])).outcome, { kind: 'tied' });
    // The judge gives up on the longest against the shortest: deciding for ['cccc', 'bb', 'a'] (wins 1, 1, 0), so no
    // pair; not deciding for ['bb', 'cccc', 'a'] (wins 1, 1, 0 again: bb against a, whose own comparison stands).
    const flaky = compareOnly((a, b) => ([a, b].sort().join() === 'a,cccc' ? { winner: null, status: 'skipped', reason: 'timed out' } : { winner: a.length > b.length ? 0 : 1, status: 'ok' }));
    assert.deepEqual(await pairFromPreferences(flaky, 'p', ['cccc', 'bb', 'a']), { outcome: { kind: 'skipped', reason: 'timed out' }, wins: [1, 1, 0], skippedComparisons: 1 });
    assert.deepEqual(await pairFromPreferences(flaky, 'p', ['bb', 'cccc', 'a']), { outcome: { kind: 'pair', chosen: 0, rejected: 2 }, wins: [1, 1, 0], skippedComparisons: 1 });
    assert.deepEqual((await pairFromPreferences(flaky, 'p', ['cccc', 'a'])).outcome, { kind: 'skipped', reason: 'timed out' });

    // A whole round with a compare-only judge: wins in samples.jsonl, pairs from them.
    const out = join(scratch, 'compare-only');
    const result = await runIterate(config(out, { rounds: 1, samplesPerPrompt: 3 }), byLength, quiet());
    const summary = result.rounds[0];
    assert.equal(summary.mean_score, null);
    const samples = readJsonl<SampleRow>(join(out, 'round-1', 'samples.jsonl'));
    for (const s of samples) assert.ok(s.scores === null && s.wins!.length === 3 && s.wins!.reduce((a, b) => a + b, 0) <= 3);
    for (const p of readJsonl<PairRow & { wins_chosen: number }>(join(out, 'round-1', 'pairs.jsonl'))) assert.ok(p.chosen.length > p.rejected.length, `${p.chosen} over ${p.rejected}`);
    assert.equal(summary.pairs + summary.tied + summary.skipped, 4);
  });

  test('a reward function that throws stops the round, naming the prompt index, its source and the completion', async () => {
    const judge = rewardFunctionJudge((prompt) => {
      if (prompt === allOpenings()[997]) throw new Error('no reward for this one');
      return 1;
    }, 'picky');
    await assert.rejects(runIterate(config(join(scratch, 'throws'), { rounds: 1 }), judge, quiet()),
      /round 1: judge 'picky' failed on prompt index 1 \(.*prompts\.jsonl:2\), completion \d of 3: no reward for this one/);
  });
});
