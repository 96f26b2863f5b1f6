// `dpo eval`: evaluates a model on a preference dataset as TRL's DPOTrainer.evaluate() does and writes
// OUT/metrics.json (TRL's eval_* names) and OUT/per_example.jsonl (one line per input record, in input order; a
// dropped record's line says why), both atomically; prints the metrics as one JSON line. Flags are TRL's option
// names in kebab-case, also accepted from --config FILE.json. The dataset/model wiring here is shared with
// `dpo token-rewards`.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { currentBackend } from '../backends/index.js';
import { defaultPadTokenId, loadPreferenceDataset, preparePreferenceExamples, tokenizeRecord, truncateExample, type PrepareOptions, type TokenizedExample, type TruncationMode } from '../data/index.js';
import { evaluateDpo, EVAL_METRIC_KEYS } from '../dpo/eval.js';
import { defaultLossOptions, parseLossTypes, validateLossOptions, type LossOptions, type LossType } from '../dpo/losses/index.js';
import { describeWriteError, writeFileAtomic } from '../io/atomic.js';
import { loadPretrained, type Pretrained } from '../io/pretrained.js';
import { UsageError, usage, type FlagSpecs, type ParsedFlags } from './args.js';
import { CONFIG_FLAG, parseFlagsWithConfig } from './config.js';

/** Flags every command that reads a preference dataset for a model takes (TRL's names and defaults). */
export const dataFlags = {
  model: { type: 'string', default: undefined, help: 'model directory (config.json, *.safetensors, tokenizer.json for text data)' },
  dataset: { type: 'string', default: undefined, help: 'preference data: .jsonl, .json, .parquet, or a folder of them' },
  'output-dir': { type: 'string', default: undefined, help: 'folder for the output files (created if missing)' },
  'max-length': { type: 'number', default: 1024, help: 'most tokens in prompt + completion; longer completions are cut' },
  'max-prompt-length': { type: 'number', default: 512, help: 'most prompt tokens; longer prompts are cut per --truncation-mode' },
  'max-completion-length': { type: 'number', default: undefined, help: 'most tokens per completion (default: no limit)' },
  'truncation-mode': { type: 'string', default: 'keep_end', help: 'which end of an over-long prompt is kept: keep_end or keep_start' },
  'allow-prompt-mismatch': { type: 'boolean', default: false, help: 'conversational data: tokenize completions apart when the chat template breaks the prompt prefix' },
  'per-device-eval-batch-size': { type: 'number', default: 8, help: 'pairs per forward pass (does not change the results)' },
  config: CONFIG_FLAG,
} as const satisfies FlagSpecs;

const flags = {
  ...dataFlags,
  'ref-model': { type: 'string', default: undefined, help: 'reference model directory (default: the model itself)' },
  beta: { type: 'number', default: defaultLossOptions.beta, help: 'β, the KL strength (temperature of the implicit reward)' },
  'loss-type': { type: 'string', default: 'sigmoid', help: 'loss type, or a comma-separated list (sigmoid, ipo, hinge, …)' },
  'loss-weights': { type: 'string', default: undefined, help: 'comma-separated weight per loss type (default: all 1)' },
  'label-smoothing': { type: 'number', default: defaultLossOptions.labelSmoothing, help: 'ε, the assumed label-flip rate (cDPO, robust, EXO)' },
  'simpo-gamma': { type: 'number', default: defaultLossOptions.simpoGamma, help: 'SimPO target margin γ' },
  'cpo-alpha': { type: 'number', default: defaultLossOptions.cpoAlpha, help: 'weight of the NLL term of CPO' },
  'f-alpha-divergence-coef': { type: 'number', default: defaultLossOptions.fAlphaDivergenceCoef, help: 'α of the alpha_divergence loss' },
  'discopop-tau': { type: 'number', default: defaultLossOptions.discopopTau, help: 'DiscoPOP temperature τ' },
} as const satisfies FlagSpecs;

const COMMAND = 'dpo eval';

export interface PreparedEvalData {
  policy: Pretrained;
  examples: TokenizedExample[];
  /** Why each dropped record was dropped, by record index. */
  dropped: Map<number, string>;
  /** Records in the dataset (kept + dropped). */
  records: number;
  padTokenId: number;
  summaryLine: string;
}

/** Checks the shared flags, loads the model and prepares the dataset (tokenize, truncate) for it. */
export async function prepareEvalData(o: ParsedFlags<typeof dataFlags>, command: string, specs: FlagSpecs): Promise<PreparedEvalData> {
  for (const name of ['model', 'dataset', 'output-dir'] as const) {
    if (o[name] === undefined) throw new UsageError(`${command}: --${name} is required\n${usage(specs)}`);
  }
  const mode = o['truncation-mode'];
  if (mode !== 'keep_end' && mode !== 'keep_start') throw new UsageError(`${command}: --truncation-mode must be keep_end or keep_start, got '${mode}'`);
  for (const name of ['max-length', 'max-prompt-length', 'max-completion-length', 'per-device-eval-batch-size'] as const) {
    const v = o[name];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1)) throw new UsageError(`${command}: --${name} must be a positive integer, got ${v}`);
  }
  currentBackend(); // selects the backend before the first tensor
  const dataset = await loadPreferenceDataset(o.dataset);
  const policy = loadPretrained(o.model);
  const opts: PrepareOptions = {
    maxLength: o['max-length'],
    maxPromptLength: o['max-prompt-length'],
    maxCompletionLength: o['max-completion-length'] ?? null,
    truncationMode: mode as TruncationMode,
    allowPromptMismatch: o['allow-prompt-mismatch'],
    vocabSize: policy.model.vocabSize,
  };
  const prepared = preparePreferenceExamples(dataset, policy.tokenizer, opts); // throws when no pair is usable
  const kept = new Set(prepared.examples.map((e) => e.index));
  const dropped = new Map<number, string>();
  for (const record of dataset.records) {
    if (kept.has(record.index)) continue;
    dropped.set(record.index, truncateExample(tokenizeRecord(record, policy.tokenizer, opts), opts).dropReason ?? 'dropped');
  }
  const longest = Math.max(...prepared.examples.map((e) => e.promptIds.length + Math.max(e.chosenIds.length, e.rejectedIds.length)));
  if (longest > policy.model.maxPositions) {
    throw new UsageError(`${command}: a prompt + completion of ${longest} tokens exceeds the model's ${policy.model.maxPositions} positions; pass --max-length ${policy.model.maxPositions} or less`);
  }
  return { policy, examples: prepared.examples, dropped, records: dataset.records.length, padTokenId: defaultPadTokenId(policy.tokenizer), summaryLine: prepared.summaryLine };
}

/** Loads a reference model directory and checks that it scores the same vocabulary as the policy. */
export function loadReference(dir: string, policy: Pretrained, command: string): Pretrained {
  const ref = loadPretrained(dir);
  if (ref.model.vocabSize !== policy.model.vocabSize) {
    ref.model.dispose();
    throw new UsageError(`${command}: the reference model has a vocabulary of ${ref.model.vocabSize} but the model has ${policy.model.vocabSize}; both must score the same token ids`);
  }
  return ref;
}

/** Writes `name` under the output directory atomically, creating the directory. */
export function writeOutput(dir: string, name: string, text: string): string {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw describeWriteError(dir, e, 'create the directory');
  }
  const path = join(dir, name);
  writeFileAtomic(path, text);
  return path;
}

/** Input-order JSONL: each record's row, or {"index", "dropped": reason} for a record that was not evaluated. */
export function perExampleLines<R extends { index: number }>(rows: readonly R[], dropped: Map<number, string>, records: number): string {
  const byIndex = new Map(rows.map((r) => [r.index, r]));
  const lines: string[] = [];
  for (let i = 0; i < records; i++) lines.push(JSON.stringify(byIndex.get(i) ?? { index: i, dropped: dropped.get(i) ?? 'not evaluated' }));
  return lines.join('\n') + '\n';
}

function parseLossFlags(o: ParsedFlags<typeof flags>): { types: LossType[]; weights: number[] | null; options: LossOptions } {
  let types: LossType[];
  try {
    types = parseLossTypes(o['loss-type']);
  } catch (e) {
    throw new UsageError(`${COMMAND}: --loss-type: ${(e as Error).message}`);
  }
  const w = o['loss-weights'];
  const weights = w === undefined ? null : w.split(',').map((s) => Number(s.trim()));
  if (weights && (weights.length !== types.length || weights.some((x) => !Number.isFinite(x)))) {
    throw new UsageError(`${COMMAND}: --loss-weights '${w}' must be ${types.length} comma-separated number(s), one per loss type (${types.join(',')})`);
  }
  const options: LossOptions = {
    beta: o.beta,
    labelSmoothing: o['label-smoothing'],
    simpoGamma: o['simpo-gamma'],
    cpoAlpha: o['cpo-alpha'],
    fAlphaDivergenceCoef: o['f-alpha-divergence-coef'],
    discopopTau: o['discopop-tau'],
  };
  try {
    validateLossOptions(types, options);
  } catch (e) {
    throw new UsageError(`${COMMAND}: ${(e as Error).message}`);
  }
  return { types, weights, options };
}

export async function runEval(argv: readonly string[]): Promise<void> {
  const o = parseFlagsWithConfig(argv, flags, COMMAND);
  const loss = parseLossFlags(o);
  const data = await prepareEvalData(o, COMMAND, flags);
  const ref = o['ref-model'] === undefined ? null : loadReference(o['ref-model'], data.policy, COMMAND);
  process.stderr.write(`${data.summaryLine}\n`);
  try {
    const result = evaluateDpo({
      model: data.policy.model,
      refModel: ref?.model ?? null,
      examples: data.examples,
      lossTypes: loss.types,
      lossWeights: loss.weights,
      lossOptions: loss.options,
      batchSize: o['per-device-eval-batch-size'],
      padTokenId: data.padTokenId,
      onProgress: (done, total) => process.stderr.write(`\reval: ${done}/${total} pairs`),
    });
    process.stderr.write('\n');
    const metrics = Object.fromEntries(EVAL_METRIC_KEYS.map((k) => [k, result.metrics[k]]));
    writeOutput(o['output-dir'], 'metrics.json', JSON.stringify(metrics, null, 2) + '\n');
    writeOutput(o['output-dir'], 'per_example.jsonl', perExampleLines(result.rows, data.dropped, data.records));
    console.log(JSON.stringify(metrics));
  } finally {
    data.policy.model.dispose();
    ref?.model.dispose();
  }
}
