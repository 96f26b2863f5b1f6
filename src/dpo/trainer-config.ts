// The trainer's configuration: one flat object with TRL's option names in camelCase (learning_rate → learningRate),
// every default commented, and resolveTrainConfig, which fills the defaults, rejects unknown keys and wrong types, and
// checks ranges with errors that name the TRL option. training_args.json is this object with snake_case keys.
// Not here: flag parsing (cli/train.ts) or what the options do (trainer.ts).
import { defaultLossOptions, lossTypes, parseLossTypes, validateLossOptions, type LossOptions, type LossType } from './losses/index.js';
import { optimizerTypes, type OptimizerType } from './optim.js';
import { schedulerTypes, type SchedulerType } from './schedule.js';

export const evalStrategies = ['no', 'steps', 'epoch'] as const;
export type EvalStrategy = (typeof evalStrategies)[number];
export const truncationModes = ['keep_end', 'keep_start'] as const;

export interface TrainConfig {
  /** 'dpo' trains on preference pairs; 'sft' on prompt/completion, messages or text records (sft-data.ts). */
  task: 'dpo' | 'sft';
  model: string;
  refModel: string | null;
  dataset: string;
  evalDataset: string | null;
  outputDir: string;
  overwriteOutputDir: boolean;
  // ---- optimization (HF TrainingArguments)
  optim: OptimizerType;
  learningRate: number;
  lrSchedulerType: SchedulerType;
  warmupSteps: number;
  warmupRatio: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  maxGradNorm: number;
  perDeviceTrainBatchSize: number;
  perDeviceEvalBatchSize: number;
  gradientAccumulationSteps: number;
  numTrainEpochs: number;
  maxSteps: number;
  seed: number;
  // ---- evaluation, logging, checkpoints
  evalStrategy: EvalStrategy;
  evalSteps: number | null;
  loggingSteps: number;
  saveSteps: number;
  saveTotalLimit: number | null;
  resumeFromCheckpoint: string | null;
  // ---- data (TRL DPOConfig / SFTConfig)
  maxLength: number | null;
  maxPromptLength: number | null;
  maxCompletionLength: number | null;
  truncationMode: 'keep_end' | 'keep_start';
  allowPromptMismatch: boolean;
  completionOnlyLoss: boolean;
  paddingFree: boolean;
  prefixSharing: boolean;
  // ---- the loss (TRL DPOConfig)
  lossType: LossType[];
  lossWeights: number[] | null;
  beta: number;
  labelSmoothing: number;
  simpoGamma: number;
  cpoAlpha: number;
  fAlphaDivergenceCoef: number;
  discopopTau: number;
  ldAlpha: number | null;
  useWeighting: boolean;
  // ---- the reference
  precomputeRefLogProbs: boolean;
  refCacheDir: string | null;
  syncRefModel: boolean;
  refModelMixupAlpha: number;
  refModelSyncSteps: number;
}

/** TRL's DPOConfig defaults (HF TrainingArguments where DPOConfig has none). */
export const defaultTrainConfig: Readonly<TrainConfig> = Object.freeze<TrainConfig>({
  task: 'dpo', // preference pairs
  model: '', // required: the policy's HF model directory
  refModel: null, // null: a frozen copy of `model`, read again from disk (when a loss needs a reference)
  dataset: '', // required: preference data (.jsonl, .json, .parquet or a folder)
  evalDataset: null, // no evaluation set
  outputDir: '', // required: metrics.jsonl, checkpoint-N/, training_args.json and the final model
  overwriteOutputDir: false, // refuse to start over a folder that holds a run
  optim: 'adamw', // torch.optim.AdamW semantics (decoupled weight decay)
  learningRate: 1e-6, // DPOConfig's default (SFTConfig: 2e-5)
  lrSchedulerType: 'linear', // warm-up, then linear decay to 0 at the last step
  warmupSteps: 0, // > 0 wins over warmupRatio
  warmupRatio: 0, // fraction of the total steps used to warm up
  weightDecay: 0, // no decay
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  maxGradNorm: 1, // clip the global gradient norm at 1; 0 turns clipping off
  perDeviceTrainBatchSize: 8, // pairs per micro-batch (one forward/backward)
  perDeviceEvalBatchSize: 8, // pairs per evaluation batch (does not change the results)
  gradientAccumulationSteps: 1, // micro-batches per optimizer step
  numTrainEpochs: 3, // passes over the data, may be fractional; ignored when maxSteps > 0
  maxSteps: -1, // > 0: exactly this many optimizer steps (the data repeats as needed)
  seed: 42, // seeds the per-epoch shuffle
  evalStrategy: 'no', // 'steps': every evalSteps; 'epoch': at the end of each epoch
  evalSteps: null, // null: loggingSteps
  loggingSteps: 10, // one metrics.jsonl line every this many steps (and at the last step)
  saveSteps: 500, // checkpoint-N every this many steps (0: only the final model)
  saveTotalLimit: null, // keep at most this many checkpoints (oldest deleted first); null keeps all
  resumeFromCheckpoint: null, // a checkpoint-N directory, or 'latest' (the newest in outputDir)
  maxLength: 1024, // most tokens in prompt + completion
  maxPromptLength: 512, // most prompt tokens (truncationMode says which end is kept)
  maxCompletionLength: null, // no limit per completion
  truncationMode: 'keep_end', // keep the prompt's end, nearest the answer
  allowPromptMismatch: false, // conversational data: error when the chat template breaks the prompt prefix
  completionOnlyLoss: true, // sft: the loss covers only completion tokens (false: the prompt too)
  paddingFree: false, // true: several sequences per row, no padding between them (same log-probs, fewer tokens run)
  prefixSharing: false, // true: each pair runs as prompt | chosen | rejected, the prompt computed once (same log-probs)
  lossType: ['sigmoid'], // DPO
  lossWeights: null, // all 1
  beta: defaultLossOptions.beta, // KL strength (temperature of the implicit reward)
  labelSmoothing: defaultLossOptions.labelSmoothing, // no assumed label noise
  simpoGamma: defaultLossOptions.simpoGamma,
  cpoAlpha: defaultLossOptions.cpoAlpha,
  fAlphaDivergenceCoef: defaultLossOptions.fAlphaDivergenceCoef,
  discopopTau: defaultLossOptions.discopopTau,
  ldAlpha: null, // LD-DPO off (1 is plain DPO); in [0, 1] weighs the tokens past the shorter completion
  useWeighting: false, // WPO pair weights off
  precomputeRefLogProbs: false, // true: one reference pass before training, cached on disk; no reference in memory
  refCacheDir: null, // null: <output_dir>/ref_logps_cache; a shared folder lets other runs reuse the log-probs
  syncRefModel: false, // TR-DPO off
  refModelMixupAlpha: 0.6, // TR-DPO: ref ← α·policy + (1 − α)·ref
  refModelSyncSteps: 512, // TR-DPO: every this many steps
});

/** A configuration problem, naming the option by its TRL (snake_case) name. */
export class TrainConfigError extends Error {
  override name = 'TrainConfigError';
}

/** learningRate → learning_rate, adamBeta1 → adam_beta1. */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The loss options of a configuration, as losses/ takes them. */
export function lossOptionsOf(c: TrainConfig): LossOptions {
  return { beta: c.beta, labelSmoothing: c.labelSmoothing, simpoGamma: c.simpoGamma, cpoAlpha: c.cpoAlpha, fAlphaDivergenceCoef: c.fAlphaDivergenceCoef, discopopTau: c.discopopTau };
}

/** Fills in the defaults and checks every option; throws TrainConfigError naming the first bad one. */
export function resolveTrainConfig(input: Partial<TrainConfig>): TrainConfig {
  const c: TrainConfig = { ...defaultTrainConfig, lossType: [...defaultTrainConfig.lossType] };
  const fail = (key: string, detail: string): never => {
    throw new TrainConfigError(`${snakeCase(key)}: ${detail}`);
  };
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(defaultTrainConfig, key)) fail(key, `unknown option; the options are ${Object.keys(defaultTrainConfig).map(snakeCase).join(', ')}`);
  }
  // Values arrive untyped from JSON and JS callers; each field is checked below.
  Object.assign(c, Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)));
  const oneOf = (key: keyof TrainConfig, values: readonly string[]) => {
    if (!values.includes(c[key] as string)) fail(key, `must be one of ${values.join(', ')}, got ${JSON.stringify(c[key])}`);
  };
  const positiveInt = (key: keyof TrainConfig, allowNull = false) => {
    const v = c[key];
    if (allowNull && v === null) return;
    if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= 1)) fail(key, `must be a positive integer${allowNull ? ' or null' : ''}, got ${JSON.stringify(v)}`);
  };
  const number = (key: keyof TrainConfig, ok: (v: number) => boolean, expected: string) => {
    const v = c[key];
    if (!(typeof v === 'number' && Number.isFinite(v) && ok(v))) fail(key, `must be ${expected}, got ${JSON.stringify(v)}`);
  };
  const string = (key: keyof TrainConfig, allowNull: boolean) => {
    const v = c[key];
    if (!((allowNull && v === null) || (typeof v === 'string' && v !== ''))) fail(key, `must be a path${allowNull ? ' or null' : ''}, got ${JSON.stringify(v)}`);
  };
  for (const key of Object.keys(defaultTrainConfig) as (keyof TrainConfig)[]) {
    const expected = typeof defaultTrainConfig[key];
    if (expected === 'boolean' && typeof c[key] !== 'boolean') fail(key, `must be true or false, got ${JSON.stringify(c[key])}`);
  }
  oneOf('task', ['dpo', 'sft']);
  for (const key of ['model', 'dataset', 'outputDir'] as const) string(key, false);
  for (const key of ['refModel', 'evalDataset', 'resumeFromCheckpoint', 'refCacheDir'] as const) string(key, true);
  oneOf('optim', optimizerTypes);
  oneOf('lrSchedulerType', schedulerTypes);
  oneOf('evalStrategy', evalStrategies);
  oneOf('truncationMode', truncationModes);
  number('learningRate', (v) => v >= 0, 'a number ≥ 0');
  number('warmupSteps', (v) => Number.isSafeInteger(v) && v >= 0, 'an integer ≥ 0');
  number('warmupRatio', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  number('weightDecay', (v) => v >= 0, 'a number ≥ 0');
  number('adamBeta1', (v) => v >= 0 && v < 1, 'in [0, 1)');
  number('adamBeta2', (v) => v >= 0 && v < 1, 'in [0, 1)');
  number('adamEpsilon', (v) => v > 0, 'a number > 0');
  number('maxGradNorm', (v) => v >= 0, 'a number ≥ 0 (0 turns clipping off)');
  for (const key of ['perDeviceTrainBatchSize', 'perDeviceEvalBatchSize', 'gradientAccumulationSteps', 'loggingSteps', 'refModelSyncSteps'] as const) positiveInt(key);
  for (const key of ['evalSteps', 'saveTotalLimit', 'maxLength', 'maxPromptLength', 'maxCompletionLength'] as const) positiveInt(key, true);
  number('numTrainEpochs', (v) => v > 0, 'a number > 0');
  number('maxSteps', (v) => Number.isSafeInteger(v) && (v === -1 || v >= 1), '-1 (use num_train_epochs) or a positive integer');
  number('seed', (v) => Number.isSafeInteger(v) && v >= 0, 'an integer ≥ 0');
  number('saveSteps', (v) => Number.isSafeInteger(v) && v >= 0, 'an integer ≥ 0 (0: no intermediate checkpoints)');
  number('refModelMixupAlpha', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  if (c.ldAlpha !== null) number('ldAlpha', (v) => v >= 0 && v <= 1, 'in [0, 1] or null');
  const types: unknown = c.lossType;
  if (!(typeof types === 'string' || (Array.isArray(types) && types.length > 0))) fail('lossType', `must be a non-empty list of loss types (${lossTypes.join(', ')})`);
  try {
    c.lossType = parseLossTypes(c.lossType);
  } catch (e) {
    fail('lossType', (e as Error).message);
  }
  if (c.lossWeights !== null && (!Array.isArray(c.lossWeights) || c.lossWeights.length !== c.lossType.length || c.lossWeights.some((w) => !Number.isFinite(w)))) {
    fail('lossWeights', `must be ${c.lossType.length} finite number(s), one per loss type (${c.lossType.join(',')}), got ${JSON.stringify(c.lossWeights)}`);
  }
  try {
    validateLossOptions(c.lossType, lossOptionsOf(c));
  } catch (e) {
    throw new TrainConfigError((e as Error).message);
  }
  if (c.task === 'sft' && c.lossType.some((t) => t !== 'sft')) fail('lossType', `the sft task trains with the sft loss only, got ${c.lossType.join(',')}`);
  if (c.syncRefModel && c.precomputeRefLogProbs) fail('syncRefModel', 'TR-DPO updates the reference during training, so its log-probs cannot be precomputed; drop one of sync_ref_model and precompute_ref_log_probs');
  if (c.evalStrategy !== 'no' && c.evalDataset === null) fail('evalStrategy', `'${c.evalStrategy}' needs an eval_dataset (--eval-dataset FILE)`);
  return c;
}

/** The configuration as training_args.json holds it: TRL's snake_case names. */
export function trainingArgsJson(c: TrainConfig): Record<string, unknown> {
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [snakeCase(k), v]));
}
