// Shared pieces of the trainer tests: fixture paths, a quiet train() call, weight and metrics readers, tiny random
// models saved as HF directories, synthetic pre-tokenized datasets, and running the real `dpo` CLI in a child process.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/index.js';
import { savePretrained } from '../src/io/pretrained.js';
import { loadSafetensorsDir } from '../src/io/safetensors-sharded.js';
import { createModelFromHFConfig } from '../src/models/index.js';
import { train, type TrainResult } from '../src/dpo/trainer.js';
import type { TrainConfig } from '../src/dpo/trainer-config.js';
import { MODEL_FIXTURES } from './model-fixtures.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TRAINER_FIXTURES = join(MODEL_FIXTURES, '..', 'trainer');
export const FIXTURE_PAIRS = join(TRAINER_FIXTURES, 'pairs.jsonl');
export { MODEL_FIXTURES };

/** A fresh temporary folder. */
export function scratchDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `dpo-${name}-`));
}

/** train() with its messages collected instead of printed. */
export async function quietTrain(config: Partial<TrainConfig>): Promise<TrainResult & { log: string[] }> {
  const log: string[] = [];
  const result = await train(config, { log: (line) => log.push(line), progress: { write: () => true, isTTY: false } });
  return { ...result, log };
}

/** Options of a plain SGD step: constant learning rate, no warm-up, decay or clipping. */
export const PLAIN_SGD: Partial<TrainConfig> = { optim: 'sgd', lrSchedulerType: 'constant', warmupSteps: 0, weightDecay: 0, maxGradNorm: 0 };

/** The saved weights of a model directory, by name. */
export function readWeights(dir: string): Map<string, Float32Array> {
  return new Map([...loadSafetensorsDir(dir)].map(([name, t]) => [name, t.data]));
}

/** Whether two weight maps hold bit-identical values (names, sizes, every float). */
export function sameWeights(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, x] of a) {
    const y = b.get(name);
    if (!y || y.length !== x.length) return false;
    if (!Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))) return false;
  }
  return true;
}

/** metrics.jsonl as records. */
export function readMetrics(outputDir: string): Record<string, number>[] {
  return readFileSync(join(outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
}

/** Metrics without the wall-clock and memory figures, which differ between runs by nature. */
export function withoutTimings(records: Record<string, number>[]): Record<string, number>[] {
  return records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !['tokens_per_second', 'peak_memory_mb', 'peak_tensor_memory_mb'].includes(k))));
}

/** A tiny Llama (or any HF config) with seeded random weights, saved as an HF directory. */
export async function saveTinyModel(dir: string, config: Record<string, unknown>, seed: number): Promise<string> {
  const model = createModelFromHFConfig(config, new Rng(seed));
  await savePretrained(model, dir, { config });
  model.dispose();
  return dir;
}

export const TINY_LLAMA = {
  model_type: 'llama', vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2,
  num_key_value_heads: 1, max_position_embeddings: 32, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false,
  bos_token_id: 1, eos_token_id: 2,
};

export interface Pair { prompt_input_ids: number[]; chosen_input_ids: number[]; rejected_input_ids: number[] }

export function writeJsonl(path: string, rows: readonly object[]): string {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

/** `count` seeded pairs over a vocabulary of `vocab` with unequal prompt and completion lengths (1–4 tokens each). */
export function randomPairs(count: number, vocab: number, seed: number): Pair[] {
  const rng = new Rng(seed);
  const ids = (n: number) => Array.from({ length: n }, () => 3 + rng.int(vocab - 3));
  return Array.from({ length: count }, () => ({ prompt_input_ids: ids(1 + rng.int(3)), chosen_input_ids: ids(1 + rng.int(4)), rejected_input_ids: ids(1 + rng.int(4)) }));
}

/** Runs `node bin/dpo.js ...args` to completion with the test's backend. */
export function runCli(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'dpo.js'), ...args], { encoding: 'utf8', env: process.env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
