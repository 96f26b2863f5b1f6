// The demo's base model: a small GPT-2 pretrained from scratch by dpo-ts on the generated review corpus, with the
// SFT trainer (every token of each review scored). assets/demo/base/ holds the committed result; `dpo demo
// --retrain-base` runs pretrainBase again with the same seeds and writes the same layout.
// Not here: the corpus (corpus.ts) or the tokenizer file (tokenizer-build.ts).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../engine/random.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadPretrained, savePretrained } from '../io/pretrained.js';
import { createModelFromHFConfig } from '../models/registry.js';
import { train, type TrainHooks } from '../dpo/trainer.js';
import { generateReviews, reviewText } from './corpus.js';
import { writeDemoTokenizer } from './tokenizer-build.js';

/** The committed base checkpoint: assets/demo/base of the package this file belongs to (found from dist/ or src/). */
export function committedBaseDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`dpo demo: no package.json above ${fileURLToPath(import.meta.url)}; pass --base-model DIR`);
    dir = parent;
  }
  return join(dir, 'assets', 'demo', 'base');
}

/** The GPT-2 shape of the base model (HF config.json keys); vocab_size is filled in from the tokenizer. */
export const baseArchitecture = {
  model_type: 'gpt2',
  n_positions: 64, // context: the longest review is ~50 tokens
  n_embd: 128,
  n_layer: 4,
  n_head: 4,
  activation_function: 'gelu_new',
  layer_norm_epsilon: 1e-5,
  initializer_range: 0.02,
  tie_word_embeddings: true,
  bos_token_id: 0, // <|endoftext|>
  eos_token_id: 0,
} as const;

export interface PretrainOptions {
  /** Reviews in the corpus (one pass over them). */
  reviews: number;
  epochs: number;
  learningRate: number;
  batchSize: number;
  /** Seeds the corpus, the initial weights and the trainer's shuffle. */
  seed: number;
}

/** The recipe of the committed checkpoint: 0.83M parameters, one pass over 9,600 reviews (300 steps of 32). */
export const defaultPretrainOptions: Readonly<PretrainOptions> = Object.freeze({ reviews: 9600, epochs: 1, learningRate: 3e-3, batchSize: 32, seed: 1234 });

export interface PretrainResult {
  dir: string;
  seconds: number;
  steps: number;
  finalLoss: number;
  parameters: number;
}

/**
 * Pretrains the base model into `outDir` (HF layout: config.json, model.safetensors, generation_config.json,
 * tokenizer.json, tokenizer_config.json, plus pretraining.json and pretraining_metrics.jsonl). Work files go to
 * `workDir`, which is removed afterwards.
 */
export async function pretrainBase(outDir: string, workDir: string, opts: PretrainOptions = defaultPretrainOptions, hooks: TrainHooks = {}): Promise<PretrainResult> {
  const started = performance.now();
  rmSync(workDir, { recursive: true, force: true });
  const initDir = join(workDir, 'init');
  const trainDir = join(workDir, 'train');
  mkdirSync(initDir, { recursive: true });

  // The initial model: the tokenizer first (its size is the vocabulary), then seeded random weights.
  const vocabSize = writeDemoTokenizer(initDir, baseArchitecture.n_positions);
  const config = { ...baseArchitecture, vocab_size: vocabSize };
  const init = createModelFromHFConfig(config, new Rng(opts.seed));
  const parameters = init.parameters().reduce((n, p) => n + p.size, 0);
  await savePretrained(init, initDir, { config, tokenizerFrom: initDir });
  init.dispose();

  // The corpus as SFT {text} records: BOS, the review, EOS; every token after BOS is scored.
  const corpus = join(workDir, 'corpus.jsonl');
  writeFileSync(corpus, generateReviews(opts.reviews, opts.seed).map((r) => JSON.stringify({ text: reviewText(r) })).join('\n') + '\n');
  const result = await train({
    task: 'sft', lossType: ['sft'], model: initDir, dataset: corpus, outputDir: trainDir, overwriteOutputDir: true,
    learningRate: opts.learningRate, lrSchedulerType: 'cosine', warmupRatio: 0.05, weightDecay: 0.01, maxGradNorm: 1,
    perDeviceTrainBatchSize: opts.batchSize, numTrainEpochs: opts.epochs, seed: opts.seed, loggingSteps: 25, saveSteps: 0,
    maxLength: baseArchitecture.n_positions, maxPromptLength: null,
  }, hooks);

  // The final model, rewritten in one atomic directory write, with the recipe beside it.
  const trained = loadPretrained(trainDir);
  try {
    await savePretrained(trained.model, outDir, { config: trained.config, tokenizerFrom: trainDir });
  } finally {
    trained.model.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  const finalLoss = result.lastMetrics?.loss ?? NaN;
  writeFileAtomic(join(outDir, 'pretraining.json'), JSON.stringify({ ...opts, parameters, steps: result.steps, final_loss: finalLoss, seconds: Math.round(seconds) }, null, 2) + '\n');
  const metrics = join(trainDir, 'metrics.jsonl');
  if (existsSync(metrics)) writeFileAtomic(join(outDir, 'pretraining_metrics.jsonl'), readFileSync(metrics));
  rmSync(workDir, { recursive: true, force: true });
  return { dir: outDir, seconds, steps: result.steps, finalLoss, parameters };
}
