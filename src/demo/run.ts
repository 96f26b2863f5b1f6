// `dpo demo`: a miniature of the DPO paper's controlled-sentiment experiment, top to bottom. The base model (the
// committed one, or pretrained here) samples two completions per training prompt; AFINN labels the pairs; DPO at each
// β and SFT on the chosen completions train against the base; beside them, online DPO with the AFINN judge at the
// same number of judge labels, and DPO on RSO's pairs (on-policy.ts); every policy, the base and best-of-N are scored
// on held-out prompts (reward, KL, win rate); the best DPO policy's token rewards are checked against the lexicon;
// then frontier.json, summary.json and report.html. Each step is a resumable stage (stages.ts).
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { currentBackend } from '../backends/index.js';
import { train, type TrainHooks } from '../dpo/trainer.js';
import type { TrainConfig } from '../dpo/trainer-config.js';
import { Rng } from '../engine/random.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadPretrained, type Pretrained } from '../io/pretrained.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { machineInfo, writeReport } from '../report/index.js';
import { committedBaseDir, defaultPretrainOptions, baseArchitecture, pretrainBase } from './base-model.js';
import { splitOpenings } from './corpus.js';
import { evaluateBaselines, evaluatePolicy, frontierPoints, type PolicyEvaluation } from './evaluate.js';
import { baseWeightsFile, checkDemoOptions, defaultDemoOptions, demoFingerprint, onPolicyBetaOf, type DemoOptions } from './options.js';
import { ONLINE_PROMPTS_FILE, RSO_CANDIDATES_FILE, RSO_PAIRS_FILE, rsoCandidateRows, rsoDemoPairs, trainOnlineDpo, writeOnlinePrompts, type LabelBudget, type OnlineRun } from './on-policy.js';
import { jsonl, labelPairs, writePairFiles, PAIRS_FILE, SFT_FILE } from './pairs.js';
import { completionLogps, completionTokenLogps, promptIds, sampleCompletions, type Sample, type SamplingSetup } from './sampling.js';
import { openDemoDir, Stages } from './stages.js';
import { compareAtEqualKl, formatComparison, formatCredit, formatOnPolicy, formatTable, type EqualKlComparison } from './summary.js';
import { lexiconCredit, tokenRewardRow, type LexiconCredit, type TokenRewardRow } from './token-credit.js';

/** Where the demo's and the trainer's messages go (default: stderr). */
export type DemoHooks = TrainHooks;

export interface DemoResult {
  outputDir: string;
  /** base, best-of-N, then the trained policies: DPO per β, SFT, online DPO, DPO on RSO's pairs (those that ran). */
  evaluations: PolicyEvaluation[];
  comparison: EqualKlComparison | null;
  credit: LexiconCredit;
  /** β of the DPO run with the highest reward (its metrics are the folder's metrics.jsonl). */
  bestBeta: number;
  /** The stages computed by this call (the others were finished before). */
  stagesRun: string[];
  /** The printed summary: table, comparison and token-credit lines. */
  text: string;
  seconds: number;
}

/** One trained policy: offline DPO at a β, SFT, online DPO, or DPO on RSO's pairs. */
type PolicyMethod = 'dpo' | 'sft' | 'online_dpo' | 'rso_dpo';
interface PolicyRun {
  name: string;
  method: PolicyMethod;
  beta?: number;
}

/** What a training stage records; online DPO adds its judge counts. */
interface TrainedRun {
  steps: number;
  last_metrics: Record<string, number> | null;
  online?: OnlineRun;
}

/** Completions of one model on the evaluation prompts, as samples/NAME.jsonl holds them. */
function writeSamples(path: string, prompts: readonly string[], samples: readonly Sample[][]): void {
  const rows = samples.flat().map((s) => JSON.stringify({ prompt_index: s.prompt, prompt: prompts[s.prompt], completion: s.text, reward: s.reward, logp: s.logp, ids: s.ids }));
  writeFileAtomic(path, rows.join('\n') + '\n');
}

function readSamples(path: string): Sample[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((line) => {
    const r = JSON.parse(line) as { prompt_index: number; completion: string; reward: number; logp: number; ids: number[] };
    return { prompt: r.prompt_index, ids: r.ids, text: r.completion, logp: r.logp, reward: r.reward };
  });
}

const rewardsOf = (samples: readonly Sample[][]) => samples.map((g) => g.map((s) => s.reward));

/** A token as the heatmap shows it: words with a leading space, punctuation attached. */
function tokenLabel(tokenizer: Tokenizer, id: number): string {
  const text = tokenizer.idToToken(id) ?? `⟨${id}⟩`;
  return /^\w/.test(text) ? ` ${text}` : text;
}

/** Runs (or continues) the demo in options.outputDir; `fresh` deletes an earlier demo run there first. */
export async function runDemo(input: Partial<DemoOptions> & Pick<DemoOptions, 'outputDir'>, control: { fresh?: boolean } = {}, hooks: DemoHooks = {}): Promise<DemoResult> {
  const started = performance.now();
  const o = checkDemoOptions({ ...defaultDemoOptions, ...input, betas: [...(input.betas ?? defaultDemoOptions.betas)], bestOfN: [...(input.bestOfN ?? defaultDemoOptions.bestOfN)] });
  const log = hooks.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const out = o.outputDir;
  const pretrainedHere = o.baseModel === null && o.retrainBase;
  const baseDir = o.baseModel ?? (o.retrainBase ? join(out, 'base') : committedBaseDir());
  const fingerprint = demoFingerprint(o, pretrainedHere ? null : baseWeightsFile(baseDir));
  const resumed = openDemoDir(out, fingerprint, { ...o }, control.fresh ?? false);
  if (resumed) log(`[demo] continuing the run in ${out}`);
  const stages = new Stages(out, log);
  const loadAtStart = loadavg();
  const trainHooks: TrainHooks = { log: hooks.log, progress: hooks.progress };
  const seedOf = (stage: number) => o.seed * 1000 + stage; // one sampling stream per stage

  // ---- the base model: committed, or pretrained into OUT/base
  if (pretrainedHere) {
    await stages.run('pretrain_base', async () => {
      const r = await pretrainBase(baseDir, join(out, 'base-work'), { ...defaultPretrainOptions, reviews: o.pretrainReviews }, trainHooks);
      return { steps: r.steps, final_loss: r.finalLoss, parameters: r.parameters };
    });
  }
  const loaded: { base: Pretrained | null } = { base: null }; // read on first use: a finished run needs no model
  const base = (): Pretrained => (loaded.base ??= loadPretrained(baseDir));
  const tokenizer = (): Tokenizer => {
    const t = base().tokenizer;
    if (t === null) throw new Error(`${baseDir} has no tokenizer.json; the demo needs its word-level tokenizer (assets/demo/base has one)`);
    return t;
  };
  const setup = (): SamplingSetup => ({ tokenizer: tokenizer(), maxNewTokens: o.maxNewTokens, batchSize: 64 });
  const padId = () => tokenizer().eosTokenId ?? 0;
  const split = splitOpenings(o.trainPrompts, o.evalPrompts, o.seed);
  const maxN = Math.max(...o.bestOfN);
  mkdirSync(join(out, 'samples'), { recursive: true });

  try {
    // ---- pairs: two base samples per training prompt, labelled by AFINN, ties dropped
    const pairs = await stages.run('pairs', () => {
      const samples = sampleCompletions(base().model, split.train, 2, seedOf(1), setup());
      const labelled = labelPairs(split.train, samples, tokenizer());
      writePairFiles(out, labelled.pairs);
      return labelled.stats;
    });
    log(`[demo] ${pairs.value.pairs} pairs from ${pairs.value.prompts} prompts (${pairs.value.ties} ties dropped); mean reward chosen ${pairs.value.meanChosenReward.toFixed(2)}, rejected ${pairs.value.meanRejectedReward.toFixed(2)}`);

    // ---- the base on the held-out prompts: reference samples (win rates) and a pool for best-of-N
    const baseSamples = await stages.run('base_samples', () => {
      const reference = sampleCompletions(base().model, split.eval, o.samplesPerPrompt, seedOf(2), setup());
      const pool = sampleCompletions(base().model, split.eval, maxN, seedOf(3), setup());
      writeSamples(join(out, 'samples', 'base.jsonl'), split.eval, reference);
      writeSamples(join(out, 'samples', 'base_best_of_n_pool.jsonl'), split.eval, pool);
      return { reference: rewardsOf(reference), pool: rewardsOf(pool) };
    });

    // ---- RSO's pairs: N base candidates per training prompt, two accepted by the rejection sampler, ranked into one pair
    const onPolicyBeta = onPolicyBetaOf(o);
    const rsoBeta = o.rsoBeta ?? onPolicyBeta;
    const rso = !o.rso ? null : await stages.run('rso_pairs', () => {
      const candidates = sampleCompletions(base().model, split.train, o.rsoCandidates, seedOf(5), setup());
      const built = rsoDemoPairs(split.train, candidates, rsoBeta, new Rng(seedOf(6)), tokenizer());
      if (built.pairs.length === 0) throw new Error('RSO: every accepted pair was a tie; sample more prompts (--train-prompts) or candidates (--rso-candidates)');
      writeFileAtomic(join(out, RSO_PAIRS_FILE), jsonl(built.pairs));
      writeFileAtomic(join(out, 'samples', RSO_CANDIDATES_FILE), rsoCandidateRows(split.train, candidates, built.accepted));
      return built.stats;
    });
    if (rso) log(`[demo] RSO (β_rso ${rsoBeta}): ${rso.value.candidates} candidates, ${rso.value.labels} labels → ${rso.value.pairs} pairs; mean reward candidates ${rso.value.meanCandidateReward.toFixed(2)}, chosen ${rso.value.meanChosenReward.toFixed(2)}, rejected ${rso.value.meanRejectedReward.toFixed(2)}`);

    // ---- training, all against the base: DPO (sigmoid) at each β and SFT on the chosen completions; online DPO and
    //      DPO on RSO's pairs at the on-policy β
    const runs: PolicyRun[] = [
      ...o.betas.map((beta): PolicyRun => ({ name: `dpo_beta_${beta}`, method: 'dpo', beta })),
      { name: 'sft', method: 'sft' },
      ...(o.onlineDpo ? [{ name: `online_dpo_beta_${onPolicyBeta}`, method: 'online_dpo', beta: onPolicyBeta } satisfies PolicyRun] : []),
      ...(rso ? [{ name: `rso_dpo_beta_${onPolicyBeta}`, method: 'rso_dpo', beta: onPolicyBeta } satisfies PolicyRun] : []),
    ];
    const runDir = (r: PolicyRun) => join(out, 'runs', r.name);
    const common = (r: PolicyRun): Partial<TrainConfig> => ({
      model: baseDir, outputDir: runDir(r), overwriteOutputDir: true, numTrainEpochs: o.epochs, maxSteps: o.maxSteps,
      perDeviceTrainBatchSize: o.batchSize, lrSchedulerType: 'linear', warmupRatio: 0.1, seed: o.seed,
      loggingSteps: 2, saveSteps: 0, maxLength: baseArchitecture.n_positions, maxPromptLength: null,
    });
    const offlineDpo = async (r: PolicyRun, dataset: string): Promise<TrainedRun> => {
      const result = await train({ ...common(r), task: 'dpo', lossType: ['sigmoid'], beta: r.beta, learningRate: o.learningRate, dataset, precomputeRefLogProbs: true, refCacheDir: join(out, 'ref_logps_cache') }, trainHooks);
      return { steps: result.steps, last_metrics: result.lastMetrics };
    };
    const trainers: Record<PolicyMethod, (r: PolicyRun) => Promise<TrainedRun>> = {
      dpo: (r) => offlineDpo(r, join(out, PAIRS_FILE)),
      rso_dpo: (r) => offlineDpo(r, join(out, RSO_PAIRS_FILE)),
      sft: async (r) => {
        const result = await train({ ...common(r), task: 'sft', lossType: ['sft'], learningRate: o.sftLearningRate, dataset: join(out, SFT_FILE) }, trainHooks);
        return { steps: result.steps, last_metrics: result.lastMetrics };
      },
      online_dpo: async (r) => {
        const promptsPath = join(out, ONLINE_PROMPTS_FILE);
        await writeOnlinePrompts(promptsPath, split.train, tokenizer());
        const online = await trainOnlineDpo({ common: common(r), promptsPath, prompts: split.train.length, beta: r.beta!, learningRate: o.learningRate, maxNewTokens: o.maxNewTokens }, trainHooks);
        return { steps: online.steps, last_metrics: online.last_metrics, online };
      },
    };
    const trained = new Map<string, TrainedRun>();
    for (const r of runs) trained.set(r.name, (await stages.run(`train_${r.name}`, () => trainers[r.method](r))).value);
    // The judge labels each policy's training data spent, and the pairs it kept (on-policy.ts defines a label).
    const budgetOf = (r: PolicyRun): LabelBudget => {
      const online = trained.get(r.name)?.online;
      if (r.method === 'online_dpo' && online) return { labels: online.labels, pairs: online.pairs };
      if (r.method === 'rso_dpo') return { labels: rso!.value.labels, pairs: rso!.value.pairs };
      return { labels: pairs.value.prompts, pairs: pairs.value.pairs };
    };

    // ---- evaluation of each policy on the held-out prompts: reward, Monte-Carlo KL, win rate against the base
    const policyEvals: PolicyEvaluation[] = [];
    for (const r of runs) {
      const e = await stages.run(`eval_${r.name}`, () => {
        const policy = loadPretrained(runDir(r));
        try {
          const samples = sampleCompletions(policy.model, split.eval, o.samplesPerPrompt, seedOf(4), setup());
          writeSamples(join(out, 'samples', `${r.name}.jsonl`), split.eval, samples);
          const seqs = samples.flat().map((s) => ({ promptIds: promptIds(tokenizer(), split.eval[s.prompt]), completionIds: s.ids }));
          const policyLogps = completionLogps(policy.model, seqs, 64, padId());
          const refLogps = completionLogps(base().model, seqs, 64, padId());
          return evaluatePolicy({ method: r.method, ...(r.beta !== undefined ? { beta: r.beta } : {}), ...budgetOf(r) }, rewardsOf(samples), policyLogps, refLogps, baseSamples.value.reference);
        } finally {
          policy.model.dispose();
        }
      });
      policyEvals.push(e.value);
    }
    const evaluations = [...evaluateBaselines(baseSamples.value.reference, baseSamples.value.pool, o.bestOfN), ...policyEvals];
    const dpoEvals = policyEvals.filter((e) => e.method === 'dpo');
    const best = dpoEvals.reduce((a, b) => (b.reward > a.reward ? b : a));
    const bestRun = runs.find((r) => r.method === 'dpo' && r.beta === best.beta)!;

    // ---- token rewards of the best DPO policy: heatmaps, and the lexicon check over all its and the base's samples
    const credit = await stages.run('token_rewards', () => {
      const policy = loadPretrained(runDir(bestRun));
      try {
        const tagged = [
          ...readSamples(join(out, 'samples', `${bestRun.name}.jsonl`)).map((s) => ({ s, who: `dpo β=${best.beta}` })),
          ...readSamples(join(out, 'samples', 'base.jsonl')).map((s) => ({ s, who: 'base sample' })),
        ];
        const seqs = tagged.map(({ s }) => ({ promptIds: promptIds(tokenizer(), split.eval[s.prompt]), completionIds: s.ids }));
        const policyLps = completionTokenLogps(policy.model, seqs, 64, padId());
        const refLps = completionTokenLogps(base().model, seqs, 64, padId());
        const rows: TokenRewardRow[] = tagged.map(({ s, who }, i) => tokenRewardRow({
          label: `${who} · reward ${s.reward > 0 ? '+' : ''}${s.reward} · "${split.eval[s.prompt]}"`,
          tokens: s.ids.map((id) => tokenLabel(tokenizer(), id)), policyLogps: policyLps[i], refLogps: refLps[i],
        }, best.beta!));
        // Heatmaps: the policy's first samples, then as many of the base's.
        const policyRows = rows.filter((_, i) => tagged[i].who !== 'base sample').slice(0, o.heatmapSamples);
        const baseRows = rows.filter((_, i) => tagged[i].who === 'base sample').slice(0, Math.ceil(o.heatmapSamples / 2));
        writeFileAtomic(join(out, 'token_rewards.jsonl'), [...policyRows, ...baseRows].map((row) => JSON.stringify(row)).join('\n') + '\n');
        return lexiconCredit(rows);
      } finally {
        policy.model.dispose();
      }
    });

    // ---- the folder's summary files and the report
    const comparison = compareAtEqualKl(evaluations);
    const text = [formatTable(evaluations), formatComparison(comparison), formatOnPolicy(evaluations), formatCredit(credit.value, best.beta!)].filter((s) => s !== '').join('\n');
    await stages.run('report', () => {
      writeFileAtomic(join(out, 'frontier.json'), JSON.stringify(frontierPoints(evaluations), null, 2) + '\n');
      copyFileSync(join(runDir(bestRun), 'metrics.jsonl'), join(out, 'metrics.jsonl'));
      const args = JSON.parse(readFileSync(join(runDir(bestRun), 'training_args.json'), 'utf8')) as Record<string, unknown>;
      writeFileAtomic(join(out, 'training_args.json'), JSON.stringify({ ...args, demo: { ...o, base_model: baseDir }, machine: machineInfo() }, null, 2) + '\n');
      const backend = currentBackend();
      writeFileAtomic(join(out, 'summary.json'), JSON.stringify({
        options: o, fingerprint, base_model: baseDir, pairs: pairs.value, evaluations, best_beta: best.beta, equal_kl: comparison,
        on_policy: {
          beta: onPolicyBeta,
          online_dpo: o.onlineDpo ? trained.get(runs.find((r) => r.method === 'online_dpo')!.name)!.online : null,
          rso: rso?.value ?? null,
        },
        token_credit: credit.value, stages: stages.timings, backend: backend.name, threads: backend.threads,
        load_average: { start: loadAtStart, end: loadavg() }, seconds_this_call: (performance.now() - started) / 1000,
      }, null, 2) + '\n');
      writeReport(out, { title: `dpo demo: controlled sentiment (${out})` });
      return { files: ['frontier.json', 'metrics.jsonl', 'training_args.json', 'summary.json', 'token_rewards.jsonl', 'report.html'] };
    });

    const stagesRun = Object.entries(stages.timings).filter(([, t]) => !t.cached).map(([name]) => name);
    return { outputDir: out, evaluations, comparison, credit: credit.value, bestBeta: best.beta!, stagesRun, text, seconds: (performance.now() - started) / 1000 };
  } finally {
    loaded.base?.model.dispose();
  }
}
