// `dpo rso`: Statistical Rejection Sampling Optimization. --dataset is prompt-only data; the sampler's options
// (--rso-*, --temperature, --top-k, …) build RsoOptions, the judge comes from judge-flags.ts, and `dpo train`'s
// options that make sense here pass through to the trainer (the reference is always the SFT model itself).
import { currentBackend } from '../backends/index.js';
import { TrainConfigError, type TrainConfig } from '../dpo/trainer-config.js';
import { RsoConfigError, defaultRsoOptions, runRso, rsoTrainDefaults, type RsoOptions } from '../online/rso-run.js';
import { writeReport } from '../report/index.js';
import { aliasFlag, UsageError, usage, type FlagSpec, type FlagSpecs } from './args.js';
import { parseFlagsWithConfig } from './config.js';
import { judgeFlags, judgeFromFlags, type JudgeFlagValues } from './judge-flags.js';
import { bareResumeMeansLatest, camelCase, trainFlags } from './train.js';

const COMMAND = 'dpo rso';
const r = defaultRsoOptions;
const num = (help: string, value: number | null): FlagSpec => ({ type: 'number', default: value ?? undefined, help });

/** `dpo train` options that RSO fixes or does not use: its reference is π_sft, its loss one of sigmoid and hinge, its data pre-tokenized. */
const NOT_FOR_RSO = ['ref-model', 'loss-weights', 'label-smoothing', 'simpo-gamma', 'cpo-alpha', 'f-alpha-divergence-coef', 'discopop-tau', 'ld-alpha',
  'use-weighting', 'sync-ref-model', 'ref-model-mixup-alpha', 'ref-model-sync-steps', 'completion-only-loss', 'allow-prompt-mismatch', 'truncation-mode'];

/** The flags that become RsoOptions, and the option each sets. */
const RSO_OPTION_OF = {
  'rso-num-candidates': 'numCandidates', 'rso-num-samples': 'numSamples', 'rso-beta': 'beta', 'rso-pair-mode': 'pairMode',
  temperature: 'temperature', 'top-k': 'topK', 'top-p': 'topP', 'max-new-tokens': 'maxNewTokens', 'generation-batch-size': 'generationBatchSize',
  'max-prompts': 'maxPrompts', seed: 'seed', 'max-prompt-length': 'maxPromptLength',
} as const satisfies Record<string, keyof RsoOptions>;

export const rsoFlags: FlagSpecs = {
  ...Object.fromEntries(Object.entries(trainFlags).filter(([k]) => !NOT_FOR_RSO.includes(k))),
  model: { type: 'string', default: undefined, help: 'the SFT model directory (with tokenizer.json): the sampler, the initial policy and the reference' },
  dataset: { type: 'string', default: undefined, help: 'prompt-only data: a "prompt" column (text or chat messages) in .jsonl, .json, .parquet, or a folder' },
  'output-dir': { type: 'string', default: undefined, help: 'folder for candidates.jsonl, pairs.jsonl, rso_summary.json, then the trainer\'s files and model' },
  'loss-type': { type: 'string', default: rsoTrainDefaults.lossType!.join(','), help: 'sigmoid (rso-sigmoid: DPO on the sampled pairs) or hinge (rso-hinge: hinge-norm, eq. 10)' },
  beta: num('the loss temperature, γ in the paper (0.05, §5); the sampler\'s β is --rso-beta', rsoTrainDefaults.beta!),
  'rso-num-candidates': num('candidates drawn from the SFT policy per prompt', r.numCandidates),
  'rso-num-samples': num('candidates accepted per prompt at most by statistical rejection sampling', r.numSamples),
  'rso-beta': num('β of π* ∝ π_sft·exp(r/β): 0 keeps the best (best-of-N), large values accept uniformly', r.beta),
  'rso-pair-mode': { type: 'string', default: r.pairMode, help: 'first-round (consecutive accepted samples: n/2 pairs) or tournament (winners meet again: n − 1 pairs)' },
  temperature: num('sampling temperature of the candidates', r.temperature),
  'top-k': num('top-k filter when sampling (0: off)', r.topK),
  'top-p': num('nucleus filter when sampling (1: off)', r.topP),
  'max-new-tokens': num('new tokens per candidate at most', r.maxNewTokens),
  'generation-batch-size': num('rows per generate() call', r.generationBatchSize),
  'max-prompts': num('use only the first N prompts (default: all)', r.maxPrompts),
  seed: num('seeds the sampling, the rejection sampler and the trainer\'s shuffle', r.seed),
  'max-prompt-length': num('most prompt tokens (the last ones are kept)', r.maxPromptLength),
  'skip-train': { type: 'boolean', default: false, help: 'write candidates.jsonl, pairs.jsonl and rso_summary.json, then stop' },
  ...judgeFlags,
};


export async function runRsoCommand(argv: readonly string[]): Promise<void> {
  const f: Record<string, string | number | boolean | undefined> = parseFlagsWithConfig(bareResumeMeansLatest(aliasFlag(argv, 'prompts', 'dataset')), rsoFlags, COMMAND);
  for (const name of ['model', 'dataset', 'output-dir'] as const) {
    if (f[name] === undefined) throw new UsageError(`${COMMAND}: --${name} is required\n${usage(rsoFlags)}`);
  }
  const options: Record<string, unknown> = {};
  const trainOptions: Record<string, unknown> = {};
  for (const [flag, value] of Object.entries(f)) {
    if (value === undefined || flag === 'config' || flag === 'skip-train' || flag in judgeFlags || ['model', 'dataset', 'output-dir'].includes(flag)) continue;
    if (flag in RSO_OPTION_OF) options[RSO_OPTION_OF[flag as keyof typeof RSO_OPTION_OF]] = value;
    else trainOptions[camelCase(flag)] = value;
  }
  currentBackend(); // selects the backend before the first tensor
  const judgeValues = Object.fromEntries(Object.keys(judgeFlags).map((k) => [k, f[k]])) as JudgeFlagValues;
  const judge = await judgeFromFlags(judgeValues, COMMAND);
  try {
    const result = await runRso({
      model: String(f.model), dataset: String(f.dataset), outputDir: String(f['output-dir']), judge,
      options: options as Partial<RsoOptions>, // each value is checked by resolveRsoOptions
      train: f['skip-train'] === true ? null : (trainOptions as Partial<TrainConfig>), // … and by resolveTrainConfig
    });
    const s = result.summary;
    const figures = {
      output_dir: String(f['output-dir']), prompts: s.prompts, candidates: s.candidates, accepted: s.accepted, acceptance_rate: s.acceptance_rate, expected_acceptance_rate: s.expected_acceptance_rate,
      pairs: s.pairs, mean_reward_candidates: s.mean_reward_candidates, mean_reward_accepted: s.mean_reward_accepted,
      judge_calls: s.judge_calls, skipped_judge_calls: s.skipped_judge_calls, reused: s.reused,
    };
    if (result.train === null) {
      console.log(JSON.stringify(figures));
      return;
    }
    try {
      process.stderr.write(`report: ${writeReport(result.train.outputDir).path}\n`);
    } catch (e) {
      process.stderr.write(`report: not written (${e instanceof Error ? e.message : String(e)})\n`); // the run itself succeeded
    }
    console.log(JSON.stringify({ ...figures, steps: result.train.steps, ...result.train.lastMetrics }));
  } catch (e) {
    if (e instanceof TrainConfigError || e instanceof RsoConfigError) throw new UsageError(`${COMMAND}: ${e.message}`);
    throw e;
  }
}
