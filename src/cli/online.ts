// `dpo online`: online DPO with AI feedback (OAIF). The training options are `dpo train`'s (TRL names), with
// --dataset a prompt-only file; the sampling options are OnlineDPOConfig's; the judge is any of judge-flags.ts.
import { currentBackend } from '../backends/index.js';
import { TrainConfigError, type TrainConfig } from '../dpo/trainer-config.js';
import { defaultOnlineOptions, onlineTrainDefaults, trainOnline, type OnlineOptions } from '../online/oaif.js';
import { writeReport } from '../report/index.js';
import { UsageError, aliasFlag, usage, type FlagSpec, type FlagSpecs } from './args.js';
import { parseFlagsWithConfig } from './config.js';
import { judgeFlags, judgeFromFlags, type JudgeFlagValues } from './judge-flags.js';
import { bareResumeMeansLatest, camelCase, trainFlags } from './train.js';

/** `dpo train` options that mean nothing online: the data is sampled, not read as pairs, and there is no eval set. */
const OFFLINE_ONLY = ['eval-dataset', 'eval-strategy', 'eval-steps', 'per-device-eval-batch-size', 'precompute-ref-log-probs', 'ref-cache-dir',
  'use-weighting', 'completion-only-loss', 'allow-prompt-mismatch', 'max-length', 'max-completion-length', 'truncation-mode'];

const onlineOnlyFlags = {
  'max-new-tokens': { type: 'number', default: defaultOnlineOptions.maxNewTokens, help: 'new tokens per sampled completion at most' },
  temperature: { type: 'number', default: defaultOnlineOptions.temperature, help: 'sampling temperature of the two completions' },
  'top-k': { type: 'number', default: defaultOnlineOptions.topK, help: 'top-k filter when sampling (0: off)' },
  'top-p': { type: 'number', default: defaultOnlineOptions.topP, help: 'nucleus filter when sampling (1: off)' },
  'missing-eos-penalty': { type: 'number', default: undefined, help: 'subtracted from the score of a completion without EOS (scoring judges)' },
  'generation-batch-size': { type: 'number', default: undefined, help: 'rows per generate() call (default: the whole micro-batch)' },
} satisfies Record<string, FlagSpec>;

export const onlineFlags: FlagSpecs = {
  ...Object.fromEntries(Object.entries(trainFlags).filter(([k]) => !OFFLINE_ONLY.includes(k))),
  dataset: { type: 'string', default: undefined, help: 'prompt-only data (alias --prompts): a "prompt" column (text or chat messages) in .jsonl, .json, .parquet, or a folder' },
  'learning-rate': { type: 'number', default: onlineTrainDefaults.learningRate, help: 'peak learning rate (OnlineDPOConfig: 5e-7)' },
  ...onlineOnlyFlags,
  ...judgeFlags,
};

export async function runOnline(argv: readonly string[]): Promise<void> {
  const command = 'dpo online';
  const args = bareResumeMeansLatest(aliasFlag(argv, 'prompts', 'dataset')); // --prompts, as dpo iterate and dpo winrate name it
  const f: Record<string, string | number | boolean | undefined> = parseFlagsWithConfig(args, onlineFlags, command);
  for (const name of ['model', 'dataset', 'output-dir'] as const) {
    if (f[name] === undefined) throw new UsageError(`${command}: --${name} is required\n${usage(onlineFlags)}`);
  }
  const config: Record<string, unknown> = {};
  const online: Record<string, unknown> = {};
  for (const [flag, value] of Object.entries(f)) {
    if (flag === 'config' || value === undefined || flag in judgeFlags) continue;
    if (flag in onlineOnlyFlags) online[camelCase(flag)] = value;
    else if (flag === 'loss-weights') config.lossWeights = String(value).split(',').map((w) => Number(w.trim()));
    else config[camelCase(flag)] = value;
  }
  currentBackend();
  const judge = await judgeFromFlags(f as unknown as JudgeFlagValues, command);
  try {
    const result = await trainOnline(config as Partial<TrainConfig>, online as Partial<OnlineOptions>, judge);
    try {
      process.stderr.write(`report: ${writeReport(result.outputDir).path}\n`);
    } catch (e) {
      process.stderr.write(`report: not written (${e instanceof Error ? e.message : String(e)})\n`);
    }
    const t = result.times;
    console.log(JSON.stringify({
      output_dir: result.outputDir, steps: result.steps, labelled: result.labelled, ties: result.ties, skipped: result.skipped,
      generate_s: t.generate, judge_s: t.judge, train_s: t.train, ...result.lastMetrics,
    }));
  } catch (e) {
    if (e instanceof TrainConfigError) throw new UsageError(`${command}: ${e.message}`);
    throw e;
  }
}
