// The files of a training run in its output folder: the protection against starting over a previous run,
// metrics.jsonl (appended one line per logging step; cut back to the checkpoint's step on resume),
// training_args.json, and the final model written in HF layout directly into the folder.
// Checkpoints are checkpoint.ts's; the reference cache is ref-cache.ts's (kept when a run is overwritten).
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describeWriteError, writeFileAtomic } from '../io/atomic.js';
import type { JsonObject } from '../io/json.js';
import { savePretrained } from '../io/pretrained.js';
import type { CausalLM } from '../models/types.js';
import { TrainConfigError } from './trainer-config.js';

export const METRICS_FILE = 'metrics.jsonl';
export const TRAINING_ARGS_FILE = 'training_args.json';
const CHECKPOINT_ENTRY = /^checkpoint-\d+/; // checkpoint-N and the leftovers of interrupted writes
const FINAL_STAGING = 'final-model.tmp-';
const MODEL_FILE = /^(config\.json|generation_config\.json|model.*\.safetensors(\.index\.json)?)$/;

/** The entries of `dir` that show a previous run: metrics.jsonl and checkpoint-N directories. */
function previousRun(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => name === METRICS_FILE || CHECKPOINT_ENTRY.test(name));
}

/**
 * Creates the output folder. One that already holds a run is refused unless the run is resumed (then it is
 * continued) or `overwrite` is set (then its metrics, checkpoints, arguments and model files are removed; a reference
 * log-prob cache stays, so the new run can reuse it).
 */
export function prepareOutputDir(dir: string, o: { overwrite: boolean; resuming: boolean }): void {
  const found = previousRun(dir);
  if (found.length > 0 && !o.resuming) {
    if (!o.overwrite) {
      throw new TrainConfigError(`output_dir: ${dir} already holds a run (${found.slice(0, 3).join(', ')}${found.length > 3 ? ', …' : ''}); ` +
        'pass --overwrite-output-dir to replace it, --resume-from-checkpoint latest to continue it, or choose another --output-dir');
    }
    for (const name of readdirSync(dir)) {
      if (name === METRICS_FILE || name === TRAINING_ARGS_FILE || CHECKPOINT_ENTRY.test(name) || MODEL_FILE.test(name)) rmSync(join(dir, name), { recursive: true, force: true });
    }
  }
  if (existsSync(dir)) {
    for (const name of readdirSync(dir)) if (name.startsWith(FINAL_STAGING)) rmSync(join(dir, name), { recursive: true, force: true }); // a crashed final save
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw describeWriteError(dir, e, 'create the output directory');
  }
}

export function writeTrainingArgs(dir: string, args: JsonObject): void {
  writeFileAtomic(join(dir, TRAINING_ARGS_FILE), JSON.stringify(args, null, 2) + '\n');
}

/** metrics.jsonl: one JSON object per line, appended as the run goes. */
export class MetricsLog {
  readonly path: string;
  constructor(dir: string) {
    this.path = join(dir, METRICS_FILE);
  }

  append(record: Record<string, number>): void {
    try {
      appendFileSync(this.path, JSON.stringify(record) + '\n');
    } catch (e) {
      throw describeWriteError(this.path, e, 'append to');
    }
  }

  /**
   * Resuming from the checkpoint of `step`: keeps the lines logged at or before it and drops later ones (and a line
   * cut short by a crash), so the resumed run writes the same file as an uninterrupted one.
   */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8').split('\n').filter((line) => {
      try {
        const record: unknown = JSON.parse(line);
        return typeof record === 'object' && record !== null && 'step' in record && typeof record.step === 'number' && record.step <= step;
      } catch {
        return false;
      }
    });
    writeFileAtomic(this.path, kept.map((l) => l + '\n').join(''));
  }
}

/**
 * Saves the final model into `dir` itself (config.json, model.safetensors or shards, generation_config.json, the
 * tokenizer files), next to metrics.jsonl and the checkpoints: savePretrained writes a complete temporary folder,
 * whose files are then renamed into `dir` one by one (each rename is atomic).
 */
export async function saveFinalModel(model: CausalLM, dir: string, o: { config: JsonObject; tokenizerFrom?: string }): Promise<void> {
  const staging = join(dir, `${FINAL_STAGING}${process.pid}`);
  await savePretrained(model, staging, o);
  const written = new Set(readdirSync(staging));
  for (const name of written) renameSync(join(staging, name), join(dir, name));
  rmSync(staging, { recursive: true, force: true });
  // Weight files of an earlier save that this one did not write (a different sharding) would confuse loaders.
  for (const name of readdirSync(dir)) if (MODEL_FILE.test(name) && !written.has(name)) rmSync(join(dir, name));
}
