// Training checkpoints: OUT/checkpoint-<step>/ holds the model in HF layout (config.json, model.safetensors or shards,
// generation_config.json, tokenizer files), optimizer.safetensors, trainer_state.json (HF Trainer's keys plus ours
// under "dpo_ts") and scheduler.json. A checkpoint is written into a temporary sibling and renamed into place, so it is
// complete or absent; rotation renames a doomed checkpoint aside before deleting it. Resuming: findLatestCheckpoint
// picks the newest valid one, loadCheckpoint restores weights and optimizer and returns the trainer state.
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeDirAtomic, writeFileAtomic } from '../io/atomic.js';
import { FormatError, expectJsonObject, getInteger, getNumber, isJsonObject, readJsonFile, type JsonObject } from '../io/json.js';
import { savePretrained } from '../io/pretrained.js';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors, type LoadedTensor } from '../io/safetensors.js';
import { SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, loadSafetensorsDir } from '../io/safetensors-sharded.js';
import { loadStateDict, stateDict, type CausalLM } from '../models/index.js';
import type { Optimizer } from './optim.js';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const SCHEDULER_FILE = 'scheduler.json';
const CHECKPOINT_DIR = /^checkpoint-(\d+)$/;
/** Leftovers of an interrupted write or rotation: `checkpoint-N.tmp-<pid>-<hex>`, `.old-…` (writeDirAtomic), `.del-…`. */
const LEFTOVER_DIR = /^checkpoint-\d+\.(?:tmp|old|del)-(\d+)-/;
const FORMAT_VERSION = 1;

/** Where the data loader stands: resuming replays `order` from `batchIndex` in `epoch`. */
export interface DataPosition {
  epoch: number;
  /** Batches of this epoch already consumed. */
  batchIndex: number;
  /** The shuffled example order of the current epoch. */
  order: number[];
}

/** Everything but weights and optimizer moments that a resumed run needs to continue exactly. */
export interface TrainerState {
  /** Optimizer steps taken (HF's global_step). */
  globalStep: number;
  /** Fractional epochs completed (HF's epoch). */
  epoch: number;
  dataPosition: DataPosition;
  /** Rng.getState() of the trainer's random stream (shuffling, sampling). */
  rngState: number[];
  /** Best evaluation metric so far (HF's best_metric); null or absent when there is none. */
  bestMetric?: number | null;
  /** The logged metric records (HF's log_history). */
  logHistory?: JsonObject[];
  /** Running statistics a loss keeps between steps (e.g. BCO's reward running mean). */
  lossState?: JsonObject;
  /** The LR scheduler's state; stored in scheduler.json. */
  schedulerState: JsonObject;
}

export interface SaveCheckpointOptions {
  model: CausalLM;
  /** The HF config.json object the model was built from (written as config.json). */
  modelConfig: JsonObject;
  /** A directory whose tokenizer files are copied into the checkpoint. */
  tokenizerFrom?: string;
  optimizer: Optimizer;
  trainerState: TrainerState;
  /** Keep at most this many checkpoints (HF's save_total_limit); undefined or null keeps all. */
  saveTotalLimit?: number | null;
}

export interface CheckpointWarnings {
  /** Receives one line per skipped checkpoint (default console.warn). */
  warn?: (message: string) => void;
}

// ------------------------------------------------------------------------------------------------ saving
/**
 * Writes OUT/checkpoint-<step>/ atomically (an existing one of that step is replaced), then deletes the oldest other
 * checkpoints beyond saveTotalLimit and leftovers of writers that died. Weights and moments are saved as F32, so a
 * float32 run resumes bit-exactly. Returns the checkpoint's path. `step` is normally trainerState.globalStep.
 */
export async function saveCheckpoint(outputDir: string, step: number, o: SaveCheckpointOptions): Promise<string> {
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`saveCheckpoint: step must be an integer ≥ 0, got ${step}`);
  const limit = o.saveTotalLimit ?? null;
  if (limit !== null && !(Number.isSafeInteger(limit) && limit >= 1)) {
    throw new Error(`saveCheckpoint: save_total_limit must be an integer ≥ 1 (or unset to keep every checkpoint), got ${limit}`);
  }
  const dir = join(outputDir, `checkpoint-${step}`);
  const optimizerTensors = o.optimizer.stateTensors();
  await writeDirAtomic(dir, async (tmp) => {
    // savePretrained replaces the (still empty) temporary directory with the model files, so it must come first.
    await savePretrained(o.model, tmp, { config: o.modelConfig, tokenizerFrom: o.tokenizerFrom });
    saveSafetensors(join(tmp, OPTIMIZER_FILE), optimizerTensors);
    writeFileAtomic(join(tmp, SCHEDULER_FILE), prettyJson(o.trainerState.schedulerState));
    // trainer_state.json last: a checkpoint copied by hand without it is recognisably incomplete.
    writeFileAtomic(join(tmp, TRAINER_STATE_FILE), prettyJson(trainerStateJson(o.trainerState, o.optimizer.steps)));
  });
  if (limit !== null) rotateCheckpoints(outputDir, limit, dir);
  removeLeftovers(outputDir);
  return dir;
}

/** HF Trainer's trainer_state.json keys, plus what dpo-ts needs to resume under "dpo_ts". */
function trainerStateJson(s: TrainerState, optimizerSteps: number): JsonObject {
  const p = s.dataPosition;
  return {
    global_step: s.globalStep,
    epoch: s.epoch,
    best_metric: s.bestMetric ?? null,
    log_history: s.logHistory ?? [],
    dpo_ts: {
      format_version: FORMAT_VERSION,
      optimizer_steps: optimizerSteps,
      data_position: { epoch: p.epoch, batch_index: p.batchIndex, order: p.order },
      // JSON has no NaN; Rng marks "no cached normal" with NaN, stored here as null.
      rng_state: s.rngState.map((v) => (Number.isNaN(v) ? null : v)),
      loss_state: s.lossState ?? null,
    },
  };
}

/** JSON with two-space indentation, except that arrays of scalars (the data order, the RNG state) stay on one line. */
function prettyJson(value: unknown, indent = ''): string {
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) return JSON.stringify(value);
    return value.length === 0 ? '[]' : `[\n${value.map((v) => inner + prettyJson(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (isJsonObject(value)) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${prettyJson(v, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** checkpoint-N directories of outputDir, oldest step first. */
export function listCheckpoints(outputDir: string): { step: number; path: string }[] {
  let entries: string[];
  try {
    entries = readdirSync(outputDir);
  } catch {
    return [];
  }
  return entries
    .map((name) => ({ m: CHECKPOINT_DIR.exec(name), path: join(outputDir, name) }))
    .filter((e): e is { m: RegExpExecArray; path: string } => e.m !== null && isDirectory(e.path))
    .map((e) => ({ step: Number(e.m[1]), path: e.path }))
    .sort((a, b) => a.step - b.step);
}

/** Deletes the lowest-step checkpoints other than `keep` until at most `limit` remain. */
function rotateCheckpoints(outputDir: string, limit: number, keep: string): void {
  const all = listCheckpoints(outputDir);
  let excess = all.length - limit;
  for (const { path } of all) {
    if (excess <= 0) break;
    if (path === keep) continue;
    // Rename first: a crash during the recursive delete must not leave a half-deleted checkpoint-N behind.
    const doomed = `${path}.del-${process.pid}-${randomBytes(4).toString('hex')}`;
    renameSync(path, doomed);
    rmSync(doomed, { recursive: true, force: true });
    excess--;
  }
}

/** Removes temporary, old and deleted checkpoint directories whose writer process no longer runs. */
function removeLeftovers(outputDir: string): void {
  for (const name of readdirSync(outputDir)) {
    const m = LEFTOVER_DIR.exec(name);
    if (m && !processIsAlive(Number(m[1]))) rmSync(join(outputDir, name), { recursive: true, force: true });
  }
}

/** Whether a process with this id runs on this machine (EPERM: it does, under another user). */
function processIsAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ------------------------------------------------------------------------------------------------ finding
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Why `dir` is not a usable checkpoint, or null when it is: every file must be present, the JSON files must parse
 * and the safetensors headers must describe files of the right size (this catches truncation without reading data).
 */
export function checkpointProblem(dir: string): string | null {
  try {
    readTrainerState(dir);
    expectJsonObject(readJsonFile(join(dir, SCHEDULER_FILE), { what: SCHEDULER_FILE }), join(dir, SCHEDULER_FILE));
    expectJsonObject(readJsonFile(join(dir, 'config.json'), { what: 'config.json' }), join(dir, 'config.json'));
    for (const file of weightFiles(dir)) readSafetensorsHeader(file);
    readSafetensorsHeader(join(dir, OPTIMIZER_FILE));
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** The safetensors files holding a checkpoint's weights (throws naming what is missing). */
function weightFiles(dir: string): string[] {
  if (existsSync(join(dir, SAFETENSORS_FILE))) return [join(dir, SAFETENSORS_FILE)];
  const indexPath = join(dir, SAFETENSORS_INDEX_FILE);
  if (!existsSync(indexPath)) throw new Error(`${dir}: no ${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX_FILE}`);
  const index = expectJsonObject(readJsonFile(indexPath, { what: 'safetensors index' }), indexPath);
  const weightMap = isJsonObject(index.weight_map) ? index.weight_map : {};
  return [...new Set(Object.values(weightMap).map(String))].map((shard) => join(dir, shard));
}

/**
 * The newest usable checkpoint-N under outputDir, or null when there is none. Temporary directories of interrupted
 * writes are never considered; a checkpoint-N that fails checkpointProblem is skipped with a warning.
 */
export function findLatestCheckpoint(outputDir: string, o: CheckpointWarnings = {}): string | null {
  const warn = o.warn ?? ((m: string) => console.warn(m));
  for (const { path } of listCheckpoints(outputDir).reverse()) {
    const problem = checkpointProblem(path);
    if (problem === null) return path;
    warn(`warning: skipping incomplete checkpoint ${path}: ${problem}`);
  }
  return null;
}

// ------------------------------------------------------------------------------------------------ loading
export interface LoadCheckpointTargets {
  /** Receives the weights; it must have the architecture and sizes of the model that was saved. */
  model: CausalLM;
  /** Receives the moments and step count; omit to restore the weights only. */
  optimizer?: Optimizer;
}

/**
 * Restores a checkpoint written by saveCheckpoint: weights (checked key by key), optimizer state and step count, and
 * returns the trainer state (schedulerState from scheduler.json). A load that fails leaves model and optimizer as they
 * were, and its error names the file and the fix.
 */
export function loadCheckpoint(dir: string, t: LoadCheckpointTargets): TrainerState {
  const { state, optimizerSteps } = readTrainerState(dir);
  const schedulerPath = join(dir, SCHEDULER_FILE);
  state.schedulerState = expectJsonObject(readJsonFile(schedulerPath, { what: SCHEDULER_FILE }), schedulerPath, SCHEDULER_FILE);
  const weights = loadSafetensorsDir(dir);
  let restoreOptimizer = () => {};
  if (t.optimizer) {
    try {
      restoreOptimizer = prepareOptimizerState(dir, t.optimizer, optimizerSteps);
    } catch (e) {
      // A model that does not fit explains a misfitting optimizer too, so report it first, then undo the copy.
      const previous = stateDict(t.model);
      restoreWeights(dir, t.model, weights);
      loadStateDict(t.model, previous);
      throw e;
    }
  }
  restoreWeights(dir, t.model, weights);
  restoreOptimizer();
  return state;
}

/** loadStateDict with the resume advice appended to its error. */
function restoreWeights(dir: string, model: CausalLM, weights: Map<string, LoadedTensor>): void {
  try {
    loadStateDict(model, weights, `${dir} (weights)`);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nResume with the model configuration of the run that wrote ${dir}, or start a fresh run without resuming.`, { cause: e });
  }
}

/** Reads and checks optimizer.safetensors against `optimizer`; returns the function that copies it in. */
function prepareOptimizerState(dir: string, optimizer: Optimizer, optimizerSteps: number): () => void {
  const file = join(dir, OPTIMIZER_FILE);
  const saved = loadSafetensors(file);
  const expected = optimizer.stateTensors();
  const missing = [...expected.keys()].filter((k) => !saved.has(k));
  const unexpected = [...saved.keys()].filter((k) => !expected.has(k));
  const wrongSize = [...expected].filter(([k, v]) => saved.has(k) && saved.get(k)!.data.length !== v.size).map(([k]) => k);
  if (missing.length + unexpected.length + wrongSize.length > 0) {
    const list = (what: string, keys: string[]) => (keys.length ? ` ${what} (${keys.length}): ${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', …' : ''}.` : '');
    throw new FormatError(file, `the optimizer state does not fit this optimizer.${list('missing', missing)}${list('unexpected', unexpected)}${list('wrong size', wrongSize)} Resume with the optimizer and model of the run that wrote the checkpoint, or start a fresh run.`);
  }
  return () => optimizer.loadState(saved, optimizerSteps);
}

/** Parses trainer_state.json into a TrainerState (schedulerState is filled in by the caller) and the optimizer steps. */
function readTrainerState(dir: string): { state: TrainerState; optimizerSteps: number } {
  const file = join(dir, TRAINER_STATE_FILE);
  const root = expectJsonObject(readJsonFile(file, { what: TRAINER_STATE_FILE }), file, TRAINER_STATE_FILE);
  const ours = root.dpo_ts;
  if (!isJsonObject(ours)) {
    throw new FormatError(file, `has no "dpo_ts" object; it was not written by dpo-ts (an HF Trainer checkpoint cannot be resumed here), so start a fresh run`);
  }
  const version = getInteger(ours, 'format_version', file);
  if (version !== FORMAT_VERSION) throw new FormatError(file, `dpo_ts.format_version is ${version}; this dpo-ts reads version ${FORMAT_VERSION}`);
  const pos = ours.data_position;
  if (!isJsonObject(pos)) throw new FormatError(file, `dpo_ts.data_position must be an object {epoch, batch_index, order}`);
  const order = pos.order;
  if (!Array.isArray(order) || !order.every((v) => Number.isSafeInteger(v) && (v as number) >= 0)) {
    throw new FormatError(file, `dpo_ts.data_position.order must be an array of example indices (integers ≥ 0)`);
  }
  const rng = ours.rng_state;
  if (!Array.isArray(rng) || !rng.every((v) => v === null || typeof v === 'number')) {
    throw new FormatError(file, `dpo_ts.rng_state must be an array of numbers (null for NaN)`);
  }
  const logHistory = root.log_history ?? [];
  if (!Array.isArray(logHistory) || !logHistory.every(isJsonObject)) throw new FormatError(file, `log_history must be an array of objects`);
  const bestMetric = root.best_metric ?? null;
  if (bestMetric !== null && typeof bestMetric !== 'number') throw new FormatError(file, `best_metric must be a number or null`);
  const lossState = ours.loss_state ?? null;
  if (lossState !== null && !isJsonObject(lossState)) throw new FormatError(file, `dpo_ts.loss_state must be an object or null`);
  const state: TrainerState = {
    globalStep: getInteger(root, 'global_step', file),
    epoch: getNumber(root, 'epoch', file),
    dataPosition: { epoch: getInteger(pos, 'epoch', file), batchIndex: getInteger(pos, 'batch_index', file), order: order as number[] },
    rngState: rng.map((v) => (v === null ? NaN : (v as number))),
    bestMetric,
    logHistory,
    schedulerState: {},
  };
  if (lossState !== null) state.lossState = lossState;
  return { state, optimizerSteps: getInteger(ours, 'optimizer_steps', file) };
}
