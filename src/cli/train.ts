// `dpo train` and `dpo sft`: TRL's options as kebab-case flags (or snake_case keys of --config FILE.json) parsed into a
// TrainConfig and handed to the trainer. The flag table is typed against TrainConfig, so an option without a flag (or
// a flag without an option) does not compile. Configuration errors exit with status 2, training failures with 1.
import { currentBackend } from '../backends/index.js';
import { defaultTrainConfig, TrainConfigError, type TrainConfig } from '../dpo/trainer-config.js';
import { train } from '../dpo/trainer.js';
import { UsageError, usage, type FlagSpec, type FlagSpecs } from './args.js';
import { CONFIG_FLAG, parseFlagsWithConfig } from './config.js';
import { writeReport } from '../report/index.js';

/** learningRate → learning-rate, adamBeta1 → adam-beta1: the flag of a TrainConfig key. */
type Kebab<S extends string> = S extends `${infer H}${infer T}` ? `${H extends Lowercase<H> ? H : `-${Lowercase<H>}`}${Kebab<T>}` : S;
type TrainFlag = Kebab<Exclude<keyof TrainConfig, 'task'>>;

const d = defaultTrainConfig;
const num = (help: string, value: number | null): FlagSpec => ({ type: 'number', default: value ?? undefined, help });
const str = (help: string, value: string | null): FlagSpec => ({ type: 'string', default: value ?? undefined, help });
const bool = (help: string, value: boolean): FlagSpec => ({ type: 'boolean', default: value, help });

export const trainFlags = {
  model: str('policy model directory (config.json, *.safetensors, tokenizer.json for text data)', null),
  'ref-model': str('reference model directory (default: a frozen copy of --model)', null),
  dataset: str('training data: .jsonl, .json, .parquet, or a folder of them', null),
  'eval-dataset': str('evaluation data in the same shape', null),
  'output-dir': str('folder for metrics.jsonl, checkpoint-N/, training_args.json and the final model', null),
  'overwrite-output-dir': bool('replace a previous run in --output-dir', d.overwriteOutputDir),
  optim: str('optimizer: adamw or sgd', d.optim),
  'learning-rate': num('peak learning rate', d.learningRate),
  'lr-scheduler-type': str('constant, linear or cosine (after the warm-up)', d.lrSchedulerType),
  'warmup-steps': num('linear warm-up steps (wins over --warmup-ratio when > 0)', d.warmupSteps),
  'warmup-ratio': num('warm-up as a fraction of the total steps', d.warmupRatio),
  'weight-decay': num('weight decay (decoupled for adamw, L2 for sgd)', d.weightDecay),
  'adam-beta1': num('AdamW β1', d.adamBeta1),
  'adam-beta2': num('AdamW β2', d.adamBeta2),
  'adam-epsilon': num('AdamW ε', d.adamEpsilon),
  'max-grad-norm': num('clip the global gradient norm (0: off)', d.maxGradNorm),
  'per-device-train-batch-size': num('pairs per micro-batch', d.perDeviceTrainBatchSize),
  'per-device-eval-batch-size': num('pairs per evaluation batch', d.perDeviceEvalBatchSize),
  'gradient-accumulation-steps': num('micro-batches per optimizer step', d.gradientAccumulationSteps),
  'num-train-epochs': num('passes over the data (ignored when --max-steps > 0)', d.numTrainEpochs),
  'max-steps': num('optimizer steps (-1: from --num-train-epochs)', d.maxSteps),
  seed: num('seed of the per-epoch shuffle', d.seed),
  'eval-strategy': str('no, steps or epoch', d.evalStrategy),
  'eval-steps': num('evaluate every N steps (default: --logging-steps)', d.evalSteps),
  'logging-steps': num('one metrics.jsonl line every N steps', d.loggingSteps),
  'save-steps': num('checkpoint-N every N steps (0: none)', d.saveSteps),
  'save-total-limit': num('keep at most this many checkpoints', d.saveTotalLimit),
  'resume-from-checkpoint': str('a checkpoint-N directory, or latest (the flag alone means latest)', d.resumeFromCheckpoint),
  'max-length': num('most tokens in prompt + completion', d.maxLength),
  'max-prompt-length': num('most prompt tokens', d.maxPromptLength),
  'max-completion-length': num('most tokens per completion (default: no limit)', d.maxCompletionLength),
  'truncation-mode': str('which end of an over-long prompt is kept: keep_end or keep_start', d.truncationMode),
  'allow-prompt-mismatch': bool('conversational data: tokenize completions apart when the chat template breaks the prompt prefix', d.allowPromptMismatch),
  'completion-only-loss': bool('sft: loss on completion tokens only (false: on the prompt too)', d.completionOnlyLoss),
  'padding-free': bool('pack several sequences into each row instead of padding them (same results, fewer tokens run)', d.paddingFree),
  'prefix-sharing': bool('run each pair as prompt | chosen | rejected, the prompt computed once (same results, fewer tokens run)', d.prefixSharing),
  'loss-type': str('loss type, or a comma-separated list (sigmoid, ipo, hinge, …)', d.lossType.join(',')),
  'loss-weights': str('comma-separated weight per loss type (default: all 1)', null),
  beta: num('β, the KL strength (temperature of the implicit reward)', d.beta),
  'label-smoothing': num('ε, the assumed label-flip rate (cDPO, robust, EXO)', d.labelSmoothing),
  'simpo-gamma': num('SimPO target margin γ', d.simpoGamma),
  'cpo-alpha': num('weight of the NLL term of CPO', d.cpoAlpha),
  'f-alpha-divergence-coef': num('α of the alpha_divergence loss', d.fAlphaDivergenceCoef),
  'discopop-tau': num('DiscoPOP temperature τ', d.discopopTau),
  'ld-alpha': num('LD-DPO α in [0, 1]: weight of the tokens past the shorter completion (default: off)', d.ldAlpha),
  'use-weighting': bool('WPO: weigh each pair by its completions\' probability under the policy', d.useWeighting),
  'precompute-ref-log-probs': bool('compute the reference log-probs once before training and cache them on disk', d.precomputeRefLogProbs),
  'ref-cache-dir': str('folder of the reference log-prob cache (default: OUT/ref_logps_cache)', d.refCacheDir),
  'sync-ref-model': bool('TR-DPO: move the reference towards the policy during training', d.syncRefModel),
  'ref-model-mixup-alpha': num('TR-DPO α: ref ← α·policy + (1 − α)·ref', d.refModelMixupAlpha),
  'ref-model-sync-steps': num('TR-DPO: sync every N steps', d.refModelSyncSteps),
  config: CONFIG_FLAG,
} as const satisfies Record<TrainFlag | 'config', FlagSpec>;

/** The options `dpo sft` takes: no reference, no preference loss. */
const SFT_ONLY_DPO = ['ref-model', 'prefix-sharing', 'loss-type', 'loss-weights', 'beta', 'label-smoothing', 'simpo-gamma', 'cpo-alpha', 'f-alpha-divergence-coef', 'discopop-tau',
  'ld-alpha', 'use-weighting', 'precompute-ref-log-probs', 'ref-cache-dir', 'sync-ref-model', 'ref-model-mixup-alpha', 'ref-model-sync-steps'];
export const sftFlags: FlagSpecs = {
  ...Object.fromEntries(Object.entries(trainFlags).filter(([k]) => !SFT_ONLY_DPO.includes(k))),
  'learning-rate': num('peak learning rate', 2e-5), // SFTConfig's default
  'max-prompt-length': num('most prompt tokens (default: no limit)', null),
};

/** `--resume-from-checkpoint` with no value (last, or before another flag) means 'latest'. */
export function bareResumeMeansLatest(argv: readonly string[]): string[] {
  const out = [...argv];
  const i = out.indexOf('--resume-from-checkpoint');
  if (i >= 0 && (i + 1 >= out.length || out[i + 1].startsWith('--'))) out.splice(i + 1, 0, 'latest');
  return out;
}

/** learning-rate → learningRate: the option of a flag. */
export const camelCase = (flag: string) => flag.replace(/-([a-z0-9])/g, (_, ch: string) => ch.toUpperCase());

/** Parses argv (and --config) into TrainConfig fields; the values are checked by resolveTrainConfig. */
export function parseTrainArgs(argv: readonly string[], specs: FlagSpecs, command: string): Partial<TrainConfig> {
  const o: Record<string, string | number | boolean | undefined> = parseFlagsWithConfig(bareResumeMeansLatest(argv), specs, command);
  for (const name of ['model', 'dataset', 'output-dir'] as const) {
    if (o[name] === undefined) throw new UsageError(`${command}: --${name} is required\n${usage(specs)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [flag, value] of Object.entries(o)) {
    if (flag === 'config' || value === undefined) continue;
    if (flag === 'loss-weights') out.lossWeights = String(value).split(',').map((w) => Number(w.trim()));
    else out[camelCase(flag)] = value;
  }
  return out as Partial<TrainConfig>; // every field is validated by resolveTrainConfig
}

async function run(command: string, config: Partial<TrainConfig>): Promise<void> {
  currentBackend(); // selects the backend before the first tensor
  try {
    const result = await train(config);
    try {
      const report = writeReport(result.outputDir);
      process.stderr.write(`report: ${report.path}\n`);
    } catch (e) {
      // The run itself succeeded; a report that cannot be drawn (e.g. no logging step) is only a warning.
      process.stderr.write(`report: not written (${e instanceof Error ? e.message : String(e)})\n`);
    }
    console.log(JSON.stringify({ output_dir: result.outputDir, steps: result.steps, ...result.lastMetrics }));
  } catch (e) {
    if (e instanceof TrainConfigError) throw new UsageError(`${command}: ${e.message}`);
    throw e;
  }
}

export async function runTrain(argv: readonly string[]): Promise<void> {
  await run('dpo train', { ...parseTrainArgs(argv, trainFlags, 'dpo train'), task: 'dpo' });
}

export async function runSft(argv: readonly string[]): Promise<void> {
  // SFTConfig has no max_prompt_length: only --max-length bounds a sequence unless the flag is given.
  await run('dpo sft', { maxPromptLength: null, ...parseTrainArgs(argv, sftFlags, 'dpo sft'), task: 'sft', lossType: ['sft'] });
}
