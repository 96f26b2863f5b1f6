// The reward-model judge: an HF GPT2/Llama/Qwen2ForSequenceClassification directory (what TRL's RewardTrainer saves,
// num_labels = 1) scores (prompt, completion) tokenized as TRL tokenizes it, and prefers the higher score. score() and
// prefer() calls made in the same turn of the event loop (a Promise.all over a micro-batch) share right-padded
// forward passes of at most batchSize rows. Also the micro-batcher the local judge reuses.
// Not here: the classifier network (models/sequence-classification.ts).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fmtShape } from '../engine/errors.js';
import { Rng } from '../engine/random.js';
import { CONFIG_FILE, readModelDirConfig } from '../io/pretrained.js';
import { SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, loadSafetensorsDir } from '../io/safetensors-sharded.js';
import { loadTokenizer, type Tokenizer } from '../io/tokenizer.js';
import { SequenceClassifier, loadSequenceClassifierWeights, parseSequenceClassifierConfig } from '../models/sequence-classification.js';
import type { Judge, Preference } from './judges.js';

// ------------------------------------------------------------------------------------------------ batching
/**
 * Collects the inputs submitted in one turn of the event loop and hands them to `run` together on the next one
 * (setImmediate). A failure of `run` rejects every input of that flush; check inputs before submitting them.
 */
export class MicroBatcher<I, O> {
  private pending: { input: I; resolve: (output: O) => void; reject: (err: unknown) => void }[] = [];
  constructor(private readonly run: (inputs: I[]) => O[]) {}

  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(() => this.flush());
      this.pending.push({ input, resolve, reject });
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    let outputs: O[];
    try {
      outputs = this.run(batch.map((p) => p.input));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(outputs[i]));
  }
}

/** Runs `forward` on chunks of at most batchSize rows, shortest rows together (less padding); outputs in input order. */
export function inLengthBatches<R extends { ids: readonly number[] }, O>(rows: readonly R[], batchSize: number, forward: (chunk: R[]) => O[]): O[] {
  const order = rows.map((_, i) => i).sort((i, j) => rows[i].ids.length - rows[j].ids.length || i - j);
  const out = new Array<O>(rows.length);
  for (let start = 0; start < order.length; start += batchSize) {
    const chunk = order.slice(start, start + batchSize);
    forward(chunk.map((i) => rows[i])).forEach((o, k) => { out[chunk[k]] = o; });
  }
  return out;
}

export function checkBatchOptions(what: string, batchSize: number, maxLength: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1 || !Number.isInteger(maxLength) || maxLength < 1) {
    throw new Error(`${what}: batchSize=${batchSize}, maxLength=${maxLength}; expected integers ≥ 1`);
  }
}

// ------------------------------------------------------------------------------------------------ loading
export interface RewardModel {
  dir: string;
  classifier: SequenceClassifier;
  tokenizer: Tokenizer;
}

/**
 * Loads a reward-model directory: config.json (architectures[0] a supported *ForSequenceClassification), the
 * safetensors weights with score.weight (1, hidden), and the tokenizer. Errors name the file, the field and the fix.
 */
export function loadRewardModel(dir: string): RewardModel {
  const configPath = join(dir, CONFIG_FILE);
  const config = parseSequenceClassifierConfig(readModelDirConfig(dir), configPath);
  if (config.numLabels !== null && config.numLabels !== 1) {
    throw new Error(`${configPath}: "id2label" gives num_labels = ${config.numLabels}, but a reward model has num_labels = 1 (one scalar per sequence, ` +
      'as TRL\'s RewardTrainer trains it); use a reward model trained with num_labels=1');
  }
  const tokenizer = loadTokenizer(dir);
  if (tokenizer === null) {
    throw new Error(`${dir}: no tokenizer.json; copy the tokenizer files the reward model was trained with (tokenizer.json, tokenizer_config.json) into it`);
  }
  if (tokenizer.vocabSize > config.model.vocabSize) {
    throw new Error(`${dir}: the tokenizer has ${tokenizer.vocabSize} ids but config.json's vocab_size is ${config.model.vocabSize}; use the tokenizer the reward model was trained with`);
  }
  const weightsFile = existsSync(join(dir, SAFETENSORS_FILE)) ? join(dir, SAFETENSORS_FILE) : join(dir, SAFETENSORS_INDEX_FILE);
  const weights = loadSafetensorsDir(dir);
  const score = weights.get('score.weight');
  if (score !== undefined && score.shape.length === 2 && score.shape[0] !== 1) {
    throw new Error(`${weightsFile}: score.weight is ${fmtShape(score.shape)}, num_labels = ${score.shape[0]}; a reward model has num_labels = 1 ` +
      '(one scalar per sequence, as TRL\'s RewardTrainer trains it); use a reward model trained with num_labels=1');
  }
  const classifier = new SequenceClassifier({ ...config, numLabels: 1 }, new Rng(0)); // every weight is overwritten
  try {
    loadSequenceClassifierWeights(classifier, weights, weightsFile);
  } catch (e) {
    classifier.dispose();
    throw e;
  }
  return { dir, classifier, tokenizer };
}

// ------------------------------------------------------------------------------------------------ tokenizing
/**
 * The ids a reward model reads for (prompt, completion), as TRL's RewardTrainer tokenizes a preference example. With
 * the chat template: [user: prompt, assistant: completion] rendered (no generation prompt) and tokenized without
 * special tokens (HF apply_chat_template(tokenize=True)). Without: tokenizer(prompt + completion + EOS) with the
 * tokenizer's special tokens, the EOS text appended unless the text already ends with it.
 */
export function rewardModelIds(tokenizer: Tokenizer, prompt: string, completion: string, useChatTemplate: boolean): number[] {
  if (useChatTemplate) {
    const text = tokenizer.applyChatTemplate([{ role: 'user', content: prompt }, { role: 'assistant', content: completion }]);
    return tokenizer.encode(text, { addSpecialTokens: false });
  }
  let text = prompt + completion;
  const eos = tokenizer.eosToken;
  if (eos !== null && !text.endsWith(eos)) text += eos;
  return tokenizer.encode(text);
}

// ------------------------------------------------------------------------------------------------ the judge
export interface RewardModelJudgeOptions {
  /** Rows per forward pass (default 8). */
  batchSize?: number;
  /** Most tokens in one (prompt, completion); a longer one is an error (default: the model's max positions). */
  maxLength?: number;
  /** Render with the tokenizer's chat template (see rewardModelIds). Default: whether the tokenizer has one. */
  chatTemplate?: boolean;
}

export interface RewardModelJudgeStats {
  /** Sequences scored. */
  sequences: number;
  /** Forward passes run. */
  batches: number;
}

export interface RewardModelJudge extends Judge {
  score(prompt: string, completion: string): Promise<number>;
  /** Scores completions[i] for prompts[i], in batches. */
  scoreBatch(prompts: readonly string[], completions: readonly string[]): Promise<number[]>;
  /** The token ids scored for (prompt, completion). */
  ids(prompt: string, completion: string): number[];
  stats(): RewardModelJudgeStats;
  /** Frees the weights, when this judge loaded them. */
  dispose(): void;
}

/** A judge from a reward-model directory (or one loadRewardModel already loaded). prefer(): see the file header. */
export function rewardModelJudge(source: string | RewardModel, opts: RewardModelJudgeOptions = {}): RewardModelJudge {
  const owned = typeof source === 'string';
  const { dir, classifier, tokenizer } = owned ? loadRewardModel(source) : source;
  const batchSize = opts.batchSize ?? 8;
  const maxLength = opts.maxLength ?? classifier.body.maxPositions;
  checkBatchOptions('rewardModelJudge', batchSize, maxLength);
  const useChatTemplate = opts.chatTemplate ?? tokenizer.chatTemplate !== null;
  if (useChatTemplate && tokenizer.chatTemplate === null) throw new Error(`rewardModelJudge: chatTemplate is true but ${tokenizer.source} has no chat template; leave it unset`);
  const stats: RewardModelJudgeStats = { sequences: 0, batches: 0 };

  const batcher = new MicroBatcher<{ ids: number[] }, number>((rows) => inLengthBatches(rows, batchSize, (chunk) => {
    stats.batches++;
    stats.sequences += chunk.length;
    return classifier.classify(chunk.map((r) => r.ids)).map(([reward]) => reward);
  }));

  const ids = (prompt: string, completion: string) => rewardModelIds(tokenizer, prompt, completion, useChatTemplate);
  const scoreIds = async (row: number[]): Promise<number> => {
    if (row.length === 0) throw new Error(`reward model ${dir}: (prompt, completion) tokenizes to no tokens`);
    if (row.length > maxLength) {
      throw new Error(`reward model ${dir}: (prompt, completion) is ${row.length} tokens, more than maxLength ${maxLength}; shorten the prompt or the completions (--max-new-tokens)`);
    }
    const reward = await batcher.submit({ ids: row });
    if (!Number.isFinite(reward)) throw new Error(`reward model ${dir} returned ${reward}; its weights may be corrupt`);
    return reward;
  };
  const score = (prompt: string, completion: string) => scoreIds(ids(prompt, completion));

  return {
    name: `reward-model:${dir}`,
    score,
    ids,
    stats: () => ({ ...stats }),
    dispose: () => { if (owned) classifier.dispose(); },
    async scoreBatch(prompts, completions) {
      if (prompts.length !== completions.length) throw new Error(`scoreBatch: ${prompts.length} prompts but ${completions.length} completions; expected one completion per prompt`);
      return Promise.all(prompts.map((p, i) => score(p, completions[i])));
    },
    /** The higher reward wins; confidence = σ(|r_a − r_b|), the Bradley–Terry probability the reward model was trained on. */
    async prefer(prompt, a, b): Promise<Preference> {
      const [idsA, idsB] = [ids(prompt, a), ids(prompt, b)];
      const same = idsA.length === idsB.length && idsA.every((id, i) => id === idsB[i]); // scored once: an exact tie
      const rewardA = scoreIds(idsA);
      const [ra, rb] = await Promise.all([rewardA, same ? rewardA : scoreIds(idsB)]);
      const confidence = 1 / (1 + Math.exp(-Math.abs(ra - rb)));
      if (ra === rb) return { winner: null, confidence, status: 'ok' };
      return { winner: ra > rb ? 0 : 1, confidence, status: 'ok' };
    },
  };
}
