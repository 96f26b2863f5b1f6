// `dpo iterate`: iterative DPO or pairwise Cringe optimisation (online/iterate.ts). Flags are TRL's names where TRL has
// the option, the judge flags are judge-flags.ts's, and --config FILE.json takes the same options in snake_case.
// Prints one JSON object (the output folder, the final model and every round's summary) as its last line.
import { currentBackend } from '../backends/index.js';
import { defaultTrainConfig } from '../dpo/trainer-config.js';
import { defaultCringeOptions } from '../online/cringe.js';
import { IterateConfigError, PAIRWISE_CRINGE, runIterate, type IterateConfig } from '../online/iterate.js';
import { aliasFlag, UsageError, usage, type FlagSpec } from './args.js';
import { CONFIG_FLAG, parseFlagsWithConfig } from './config.js';
import { judgeFlags, judgeFromFlags, type JudgeFlagValues } from './judge-flags.js';

const COMMAND = 'dpo iterate';
const d = defaultTrainConfig;
const c = defaultCringeOptions;
const num = (help: string, value?: number) => ({ type: 'number' as const, default: value, help });
const str = (help: string, value?: string) => ({ type: 'string' as const, default: value, help });
const bool = (help: string, value: boolean) => ({ type: 'boolean' as const, default: value, help });

export const iterateFlags = {
  model: str('the round-1 model directory (config.json, *.safetensors, tokenizer.json)'),
  prompts: str('prompt-only data: a "prompt" column (text or chat messages) in .jsonl, .json, .parquet or a folder'),
  'output-dir': str('folder for round-N/ (samples, pairs, metrics, model), rounds.jsonl and iterate_args.json'),
  rounds: num('rounds of sample → judge → train', 2),
  'samples-per-prompt': num('completions sampled per prompt each round (K); best and worst become a pair', 4),
  'loss-type': str(`${PAIRWISE_CRINGE}, or DPO loss type(s) as in dpo train (sigmoid, ipo, …, comma-separated)`, 'sigmoid'),
  // ---- sampling
  temperature: num('sampling temperature (> 0)', 1),
  'top-k': num('sample among the k most likely tokens (0: all)', 0),
  'top-p': num('nucleus sampling threshold (1: off)', 1),
  'max-new-tokens': num('new tokens per completion at most', 64),
  'generation-batch-size': num('rows per generate() call', 16),
  'max-prompt-length': num('most prompt tokens (keeps the end)', d.maxPromptLength ?? undefined),
  'max-prompts': num('use only the first N prompts (default: all)'),
  // ---- training, every round
  'learning-rate': num('peak learning rate', d.learningRate),
  beta: num('β of the DPO losses (unused by pairwise_cringe)', d.beta),
  'num-train-epochs': num('passes over the round\'s pairs', 1),
  'max-steps': num('optimizer steps per round (-1: from --num-train-epochs)', d.maxSteps),
  'per-device-train-batch-size': num('pairs per micro-batch', d.perDeviceTrainBatchSize),
  'gradient-accumulation-steps': num('micro-batches per optimizer step', d.gradientAccumulationSteps),
  'max-length': num('most tokens in prompt + completion when training', d.maxLength ?? undefined),
  'lr-scheduler-type': str('constant, linear or cosine', d.lrSchedulerType),
  'warmup-ratio': num('warm-up as a fraction of each round\'s steps', d.warmupRatio),
  'weight-decay': num('AdamW weight decay', d.weightDecay),
  'max-grad-norm': num('clip the global gradient norm (0: off)', d.maxGradNorm),
  seed: num('seeds sampling, shuffling and the Cringe top-k draws (one stream per round)', d.seed),
  // ---- pairwise Cringe
  'cringe-alpha': num('α: weight of the Cringe term', c.alpha),
  'cringe-margin': num('b: the log-likelihood margin where the gate σ((b − M)/τ) is 1/2', c.margin),
  'cringe-temperature': num('τ: temperature of the gate', c.temperature),
  'cringe-top-k': num('k: positive tokens are drawn from the model\'s top-k (the negative token excluded)', c.topK),
  'cringe-length-normalized-margin': bool('compare per-token average log-likelihoods in M instead of sums', c.lengthNormalizedMargin),
  'cringe-gate-gradient': bool('let the gradient flow through the gate too (default: the gate is a constant weight)', !c.detachGate),
  ...judgeFlags,
  config: CONFIG_FLAG,
} satisfies Record<string, FlagSpec>;

/** The flags as an IterateConfig (values are checked by runIterate). */
export function parseIterateArgs(argv: readonly string[]): { config: IterateConfig; judge: JudgeFlagValues } {
  const f = parseFlagsWithConfig(aliasFlag(argv, 'dataset', 'prompts'), iterateFlags, COMMAND); // --dataset, as dpo online and dpo rso name it
  for (const name of ['model', 'prompts', 'output-dir'] as const) {
    if (f[name] === undefined) throw new UsageError(`${COMMAND}: --${name} is required\n${usage(iterateFlags)}`);
  }
  const orNull = (v: number | undefined) => (v === undefined ? null : v);
  const config: IterateConfig = {
    model: f.model, prompts: f.prompts, outputDir: f['output-dir'], rounds: f.rounds, samplesPerPrompt: f['samples-per-prompt'],
    lossType: f['loss-type'].split(',').map((s) => s.trim()),
    temperature: f.temperature, topK: f['top-k'], topP: f['top-p'], maxNewTokens: f['max-new-tokens'], generationBatchSize: f['generation-batch-size'],
    maxPromptLength: orNull(f['max-prompt-length']), maxPrompts: orNull(f['max-prompts']),
    learningRate: f['learning-rate'], beta: f.beta, numTrainEpochs: f['num-train-epochs'], maxSteps: f['max-steps'],
    perDeviceTrainBatchSize: f['per-device-train-batch-size'], gradientAccumulationSteps: f['gradient-accumulation-steps'],
    maxLength: orNull(f['max-length']), lrSchedulerType: f['lr-scheduler-type'] as IterateConfig['lrSchedulerType'], warmupRatio: f['warmup-ratio'],
    weightDecay: f['weight-decay'], maxGradNorm: f['max-grad-norm'], seed: f.seed,
    cringe: {
      alpha: f['cringe-alpha'], margin: f['cringe-margin'], temperature: f['cringe-temperature'], topK: f['cringe-top-k'],
      lengthNormalizedMargin: f['cringe-length-normalized-margin'], detachGate: !f['cringe-gate-gradient'],
    },
  };
  // The judge flags come typed loosely from judge-flags.ts's table; judgeFromFlags checks their values.
  const given: Record<string, unknown> = f;
  const judge = Object.fromEntries(Object.keys(judgeFlags).map((k) => [k, given[k]])) as JudgeFlagValues;
  return { config, judge };
}

export async function runIterateCommand(argv: readonly string[]): Promise<void> {
  const { config, judge: judgeValues } = parseIterateArgs(argv);
  const judge = await judgeFromFlags(judgeValues, COMMAND);
  currentBackend(); // selects the backend before the first tensor
  try {
    const result = await runIterate(config, judge);
    console.log(JSON.stringify({ output_dir: result.outputDir, final_model: result.finalModel, ran: result.ran, rounds: result.rounds }));
  } catch (e) {
    if (e instanceof IterateConfigError) throw new UsageError(`${COMMAND}: ${e.message}`);
    throw e;
  }
}
