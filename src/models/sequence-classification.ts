// HF's sequence classifiers (reward models) on our causal bodies: GPT2ForSequenceClassification,
// LlamaForSequenceClassification and Qwen2ForSequenceClassification. The body is the architecture's causal LM built
// with a tied head, so its parameters are exactly the base model's (transformer.* or model.*, no lm_head); score.weight
// (L, C), no bias, maps the final hidden state at each row's pooled token to L logits. Also the right-padding helpers
// the judges share. Not here: reading a model directory or tokenizing (online/reward-model-judge.ts).
// Legend: B batch, T tokens, C hidden, L num_labels.
import { ShapeError, fmtShape } from '../engine/errors.js';
import { gather, reshape } from '../engine/ops/index.js';
import type { Rng } from '../engine/random.js';
import { noGrad, scope, tensor, type Tensor } from '../engine/tensor.js';
import { Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { ConfigError, hfArchitectures, parseModelConfig, supportedModelTypes, type ModelConfig, type ModelType } from './config.js';
import { createModel } from './registry.js';
import { StateDictError, loadStateDict, type NamedArray } from './state-dict.js';
import type { CausalLM } from './types.js';

/** The HF sequence-classification class of each model_type, as config.json's architectures[0] names it. */
export const sequenceClassificationArchitectures: { [K in ModelType]: string } = {
  gpt2: 'GPT2ForSequenceClassification',
  llama: 'LlamaForSequenceClassification',
  qwen2: 'Qwen2ForSequenceClassification',
};

export interface SequenceClassifierConfig {
  /** architectures[0], e.g. 'Qwen2ForSequenceClassification'. */
  architecture: string;
  /** The body's config (its tie_word_embeddings is irrelevant: a classifier has no LM head). */
  model: ModelConfig;
  /** L: len(id2label) or num_labels when config.json gives them, else null (HF's default would be 2). */
  numLabels: number | null;
  /** config.json's pad_token_id; null: each row is read at its last real token. */
  padTokenId: number | null;
}

/** Parses a *ForSequenceClassification config.json object; `source` (the file) names it in errors. */
export function parseSequenceClassifierConfig(raw: unknown, source = 'config.json'): SequenceClassifierConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${source}: expected a JSON object, got ${JSON.stringify(raw)}`);
  const json = raw as Record<string, unknown>;
  const architecture = Array.isArray(json.architectures) ? json.architectures[0] : undefined;
  const type = supportedModelTypes.find((t) => sequenceClassificationArchitectures[t] === architecture);
  if (type === undefined) {
    const supported = Object.values(sequenceClassificationArchitectures).join(', ');
    const causal = supportedModelTypes.some((t) => hfArchitectures[t] === architecture);
    throw new ConfigError(`${source}: "architectures" is ${JSON.stringify(json.architectures ?? null)}; a reward model must be one of ${supported}. ` +
      (causal ? `${String(architecture)} is a causal LM, not a reward model: use it as a pairwise judge (--local-judge), or train a reward model on it (TRL's RewardTrainer) and use that`
        : 'Save the reward model with AutoModelForSequenceClassification (num_labels=1), as TRL\'s RewardTrainer does'));
  }
  if (json.model_type != null && json.model_type !== type) {
    throw new ConfigError(`${source}: "model_type" is ${JSON.stringify(json.model_type)} but "architectures" names ${architecture} (model_type "${type}"); make the two agree`);
  }
  const model = parseModelConfig({ ...json, model_type: type }, source);
  return { architecture: architecture as string, model, numLabels: numLabelsOf(json, source), padTokenId: padTokenIdOf(json, model.vocabSize, source) };
}

/** len(id2label) (what HF saves), else num_labels, else null; both given and different is an error. */
function numLabelsOf(json: Record<string, unknown>, source: string): number | null {
  const { id2label, num_labels: numLabels } = json;
  if (id2label != null && (typeof id2label !== 'object' || Array.isArray(id2label))) {
    throw new ConfigError(`${source}: "id2label" must be an object {"0": "LABEL_0", …}, got ${JSON.stringify(id2label)}`);
  }
  if (numLabels != null && !(typeof numLabels === 'number' && Number.isInteger(numLabels) && numLabels >= 1)) {
    throw new ConfigError(`${source}: "num_labels" must be an integer ≥ 1, got ${JSON.stringify(numLabels)}`);
  }
  const fromLabels = id2label == null ? null : Object.keys(id2label).length;
  if (fromLabels !== null && numLabels != null && fromLabels !== numLabels) {
    throw new ConfigError(`${source}: "id2label" has ${fromLabels} labels but "num_labels" is ${String(numLabels)}; make them agree`);
  }
  return fromLabels ?? (numLabels as number | undefined) ?? null;
}

function padTokenIdOf(json: Record<string, unknown>, vocabSize: number, source: string): number | null {
  const pad = json.pad_token_id;
  if (pad == null) return null;
  if (typeof pad !== 'number' || !Number.isInteger(pad) || pad < 0 || pad >= vocabSize) {
    throw new ConfigError(`${source}: "pad_token_id" must be a token id in [0, ${vocabSize}) (vocab_size), got ${JSON.stringify(pad)}; set it to the tokenizer's pad token id, as TRL's RewardTrainer does`);
  }
  return pad;
}

/**
 * (B) the position each row is read at, HF's rule (transformers ≥ 4.45): the last position whose id is not
 * padTokenId (0 when every id is padding). Without a pad id, HF reads the last token and allows only batch size 1;
 * here each row is read at its last real token under `mask` (the last column without one), as it would be alone.
 */
export function pooledPositions(ids: Int32Array, b: number, t: number, padTokenId: number | null, mask?: Uint8Array): Int32Array {
  const at = new Int32Array(b);
  for (let bi = 0; bi < b; bi++) {
    let last = padTokenId === null && !mask ? t - 1 : 0;
    for (let j = 0; j < t; j++) {
      const keep = padTokenId !== null ? ids[bi * t + j] !== padTokenId : mask ? mask[bi * t + j] !== 0 : false;
      if (keep) last = j;
    }
    at[bi] = last;
  }
  return at;
}

/** Right-padded (B, T) int32 ids and the (B, T) 0/1 mask of real tokens; T is the longest row. */
export function rightPad(rows: readonly (readonly number[])[], padId: number): { ids: Tensor; mask: Uint8Array; t: number } {
  const t = Math.max(0, ...rows.map((r) => r.length));
  if (rows.length === 0 || t === 0) throw new ShapeError('rightPad', `needs at least one non-empty row, got ${rows.length} rows of at most ${t} tokens`);
  const ids = new Int32Array(rows.length * t).fill(padId);
  const mask = new Uint8Array(rows.length * t);
  rows.forEach((row, b) => {
    ids.set(row, b * t);
    mask.fill(1, b * t, b * t + row.length);
  });
  return { ids: tensor(ids, [rows.length, t], 'int32'), mask, t };
}

/** hidden (B, T, C) → (B, C): row b at position at[b]. */
export function hiddenAt(hidden: Tensor, at: ArrayLike<number>): Tensor {
  const [b, t, c] = hidden.shape;
  if (hidden.rank !== 3 || at.length !== b) throw new ShapeError('hiddenAt', `expected hidden (B, T, C) and B positions, got ${fmtShape(hidden.shape)} and ${at.length}`);
  const rows = Array.from({ length: b }, (_, i) => i * t + at[i]);
  return gather(reshape(hidden, [b * t, c]), tensor(rows, [b], 'int32'));
}

export class SequenceClassifier extends Module {
  /** The transformer body; its logits() is never used (the tied head is just the embedding). */
  readonly body: CausalLM;
  readonly score: Linear; // (L, C), no bias
  readonly numLabels: number;

  /** Weights are HF-style random draws from `rng`; L is config.numLabels, or 1 when the config does not say. */
  constructor(readonly config: SequenceClassifierConfig, rng: Rng) {
    super();
    this.numLabels = config.numLabels ?? 1;
    this.body = createModel({ ...config.model, tieWordEmbeddings: true }, rng);
    this.score = this.module('score', new Linear(this.body.hiddenSize, this.numLabels, false, { rng, std: config.model.initializerRange }));
  }

  /** The body's parameters under their HF names (transformer.* or model.*), then score.weight. */
  override *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    yield* this.body.namedParameters(prefix);
    yield* super.namedParameters(prefix);
  }

  /** ids (B, T) int32 → (B, L) logits at each row's pooled position (pooledPositions). */
  forward(ids: Tensor, attentionMask?: Uint8Array): Tensor {
    if (ids.dtype !== 'int32' || ids.rank !== 2) throw new ShapeError(`${this.config.architecture}.forward`, `ids must be int32 (B, T), got ${ids.dtype} ${fmtShape(ids.shape)}`);
    const [b, t] = ids.shape;
    const hidden = this.body.forward(ids, { attentionMask }); // (B, T, C)
    const at = pooledPositions(ids.data as Int32Array, b, t, this.config.padTokenId, attentionMask);
    return this.score.forward(hiddenAt(hidden, at)); // (B, L)
  }

  /**
   * Logits of token-id rows, right-padded into one batch with pad_token_id (0 without one: those rows are read at
   * their last real token, so the pad id is never read), without gradients. Returns B rows of L numbers.
   */
  classify(rows: readonly (readonly number[])[]): number[][] {
    return noGrad(() => scope(() => {
      const { ids, mask } = rightPad(rows, this.config.padTokenId ?? 0);
      const data = this.forward(ids, mask).data;
      return rows.map((_, b) => Array.from(data.subarray(b * this.numLabels, (b + 1) * this.numLabels)));
    }));
  }
}

/**
 * Copies a *ForSequenceClassification checkpoint into `model`: score.weight, checked against (L, C), and every other
 * tensor into the body by HF name (loadStateDict's key-by-key check). Copies nothing when anything is wrong; errors
 * name `source` (the weight file), the tensor and the fix.
 */
export function loadSequenceClassifierWeights(model: SequenceClassifier, tensors: ReadonlyMap<string, NamedArray>, source = 'checkpoint'): void {
  const arch = model.config.architecture;
  const score = tensors.get('score.weight');
  const expected = model.score.weight.shape;
  if (score === undefined) {
    const head = tensors.has('lm_head.weight') ? ' It has lm_head.weight: it is a causal LM, not a reward model.' : '';
    throw new StateDictError(['score.weight'], [], [], `${source}: no score.weight, the (num_labels, hidden) reward head of ${arch}.${head} ` +
      'Point at a reward model saved by AutoModelForSequenceClassification (TRL\'s RewardTrainer)');
  }
  if (score.shape.length !== 2 || score.shape[0] !== expected[0] || score.shape[1] !== expected[1] || score.data.length !== expected[0] * expected[1]) {
    throw new StateDictError([], [], [{ name: 'score.weight', checkpoint: score.shape, model: expected }],
      `${source}: score.weight is ${fmtShape(score.shape)}, but ${arch} with hidden size ${expected[1]} and num_labels ${expected[0]} needs ${fmtShape(expected)}; ` +
      'check that config.json (hidden size, id2label) belongs to these weights');
  }
  if (tensors.has('lm_head.weight')) {
    throw new StateDictError([], ['lm_head.weight'], [], `${source}: has lm_head.weight, but ${arch} has no LM head; remove it, or save the model as a sequence classifier`);
  }
  const body = new Map([...tensors].filter(([name]) => name !== 'score.weight'));
  try {
    loadStateDict(model.body, body, source);
  } catch (e) {
    if (!(e instanceof StateDictError)) throw e;
    const [, ...rest] = e.detail.split('\n');
    throw new StateDictError(e.missing, e.unexpected, e.mismatched, [`${source} does not fit ${arch}; check that config.json belongs to these weights`, ...rest].join('\n'));
  }
  model.score.weight.data.set(score.data);
}
