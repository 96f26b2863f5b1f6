// Reads and validates a run folder (what `dpo train` / `dpo demo` write) into typed data for the HTML report.
// Only metrics.jsonl is required; training_args.json, frontier.json and token_rewards.jsonl are shown when present.
// Every error names the folder or file:line, what was found, what was expected and the fix. The file formats are
// documented in report/index.ts. Not here: drawing (charts.ts, heatmap.ts) or the page (html.ts).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isJsonObject, readJsonFile, type JsonObject } from '../io/json.js';

export const METRICS_FILE = 'metrics.jsonl';
export const TRAINING_ARGS_FILE = 'training_args.json';
export const FRONTIER_FILE = 'frontier.json';
export const TOKEN_REWARDS_FILE = 'token_rewards.jsonl';

/** A run folder that cannot be reported: missing, not a run, or holding a malformed file. */
export class RunDirError extends Error {
  override name = 'RunDirError';
}

/** One line of metrics.jsonl: the step and every numeric metric logged at it (null and non-numbers dropped). */
export interface MetricsRecord {
  step: number;
  values: Record<string, number>;
}

export interface FrontierPoint {
  method: string;
  kl: number;
  reward: number;
  beta?: number;
  n?: number;
  reward_se?: number;
  win_rate?: number;
  /** A trained policy's judge labels (pairwise judgements its data spent) and the preference pairs it kept. */
  labels?: number;
  pairs?: number;
}

/** One completion's tokens and their per-token rewards, ready to colour. */
export interface TokenSequence {
  label: string;
  tokens: string[];
  rewards: number[];
}

export interface RunData {
  dir: string;
  metrics: MetricsRecord[];
  /** training_args.json, or null when the run has none. */
  trainingArgs: JsonObject | null;
  frontier: FrontierPoint[] | null;
  tokenSequences: TokenSequence[] | null;
  /** The files of the folder that the report read, for its footer. */
  filesRead: string[];
}

const MAX_JSONL_BYTES = 256 * 1024 * 1024;

/** Reads `dir` as a run folder; throws RunDirError saying exactly what is missing or malformed. */
export function readRunDir(dir: string): RunData {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new RunDirError(`${dir} does not exist; give the output folder of a dpo train/demo run`);
  }
  if (!isDir) throw new RunDirError(`${dir} is a file, not a folder; give the output folder of a dpo train/demo run`);
  const metricsPath = join(dir, METRICS_FILE);
  if (!existsSync(metricsPath)) {
    const found = readdirSync(dir).sort();
    const listing = found.length === 0 ? 'the folder is empty' : `it holds: ${found.slice(0, 12).join(', ')}${found.length > 12 ? ', …' : ''}`;
    const runs = found.filter((f) => existsSync(join(dir, f, METRICS_FILE)));
    const hint = runs.length ? `; these subfolders are runs: ${runs.slice(0, 5).map((f) => join(dir, f)).join(', ')}` : '';
    throw new RunDirError(`no ${METRICS_FILE} in ${dir}: is this a dpo train/demo output folder? (${listing})${hint}`);
  }
  const filesRead = [METRICS_FILE];
  const metrics = parseMetrics(readJsonLines(metricsPath));
  const optional = <T>(name: string, read: (path: string) => T): T | null => {
    const path = join(dir, name);
    if (!existsSync(path)) return null;
    filesRead.push(name);
    return read(path);
  };
  const trainingArgs = optional(TRAINING_ARGS_FILE, (p) => {
    const v = readJson(p);
    if (!isJsonObject(v)) throw new RunDirError(`${p}: expected a JSON object of training arguments, got ${kind(v)}`);
    return v;
  });
  const frontier = optional(FRONTIER_FILE, (p) => parseFrontier(readJson(p), p));
  const tokenSequences = optional(TOKEN_REWARDS_FILE, (p) => parseTokenRewards(readJsonLines(p)));
  return { dir, metrics, trainingArgs, frontier, tokenSequences, filesRead };
}

/** A parsed JSONL line with its location, for messages. */
export interface JsonLine {
  where: string;
  value: unknown;
}

/** Parses every non-blank line of a JSONL file; a bad line is an error naming file:line. */
export function readJsonLines(path: string): JsonLine[] {
  const size = statSync(path).size;
  if (size > MAX_JSONL_BYTES) throw new RunDirError(`${path}: ${size} bytes, over the ${MAX_JSONL_BYTES}-byte limit for a report`);
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: JsonLine[] = [];
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    const where = `${path}:${i + 1}`;
    try {
      out.push({ where, value: JSON.parse(text) });
    } catch (e) {
      const cut = text.length > 60 ? text.slice(0, 60) + '…' : text;
      throw new RunDirError(`${where}: not valid JSON (${(e as Error).message}): ${JSON.stringify(cut)}; each line must be one JSON object (a truncated last line means the run was killed mid-write: delete that line)`);
    }
  });
  return out;
}

function readJson(path: string): unknown {
  try {
    return readJsonFile(path);
  } catch (e) {
    throw new RunDirError((e as Error).message);
  }
}

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** metrics.jsonl: each line an object with an integer "step" ≥ 0; numeric fields become plottable values. */
export function parseMetrics(lines: readonly JsonLine[]): MetricsRecord[] {
  return lines.map(({ where, value }) => {
    if (!isJsonObject(value)) throw new RunDirError(`${where}: expected a JSON object of metrics, got ${kind(value)}`);
    const step = value.step;
    if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) {
      throw new RunDirError(`${where}: "step" must be an integer ≥ 0, got ${step === undefined ? 'nothing' : kind(step)}; every metrics line needs the global step it was logged at`);
    }
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(value)) if (k !== 'step' && typeof v === 'number' && Number.isFinite(v)) values[k] = v;
    return { step, values };
  });
}

/** frontier.json: a JSON array of {method, kl, reward, beta?, n?, reward_se?, win_rate?, labels?, pairs?}. */
export function parseFrontier(value: unknown, path: string): FrontierPoint[] {
  if (!Array.isArray(value)) throw new RunDirError(`${path}: expected a JSON array of {method, kl, reward, …} points, got ${kind(value)}`);
  return value.map((p: unknown, i): FrontierPoint => {
    const where = `${path}: point ${i}`;
    if (!isJsonObject(p)) throw new RunDirError(`${where}: expected an object {method, kl, reward, …}, got ${kind(p)}`);
    if (typeof p.method !== 'string' || p.method === '') throw new RunDirError(`${where}: "method" must be a non-empty string such as "dpo" or "best_of_n", got ${kind(p.method)}`);
    const num = (key: string, required: boolean): number | undefined => {
      const v = p[key];
      if (v === undefined || v === null) {
        if (required) throw new RunDirError(`${where}: missing "${key}" (a finite number)`);
        return undefined;
      }
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new RunDirError(`${where}: "${key}" must be a finite number, got ${kind(v)}`);
      return v;
    };
    const point: FrontierPoint = { method: p.method, kl: num('kl', true)!, reward: num('reward', true)! };
    for (const key of ['beta', 'n', 'reward_se', 'win_rate', 'labels', 'pairs'] as const) {
      const v = num(key, false);
      if (v !== undefined) point[key] = v;
    }
    return point;
  });
}

/**
 * token_rewards.jsonl, in either of two shapes per line:
 *  - {tokens: string[], rewards: number[], label?: string}: one sequence (what `dpo demo` writes);
 *  - {index, chosen: {tokens, rewards, reward}, rejected: {…}}: a `dpo token-rewards` row, two sequences.
 * {index, dropped} lines (records that were not scored) are skipped.
 */
export function parseTokenRewards(lines: readonly JsonLine[]): TokenSequence[] {
  const out: TokenSequence[] = [];
  for (const { where, value } of lines) {
    if (!isJsonObject(value)) throw new RunDirError(`${where}: expected a JSON object {tokens, rewards, label?}, got ${kind(value)}`);
    if (value.dropped !== undefined) continue;
    if (value.chosen !== undefined || value.rejected !== undefined) {
      const index = typeof value.index === 'number' ? `#${value.index} ` : '';
      for (const side of ['chosen', 'rejected'] as const) {
        const seq = value[side];
        if (!isJsonObject(seq)) throw new RunDirError(`${where}: "${side}" must be an object {tokens, rewards}, got ${kind(seq)}`);
        out.push(sequence(seq, `${index}${side}`, `${where} (${side})`));
      }
    } else {
      const label = value.label === undefined || value.label === null ? `line ${where.slice(where.lastIndexOf(':') + 1)}` : String(value.label);
      out.push(sequence(value, label, where));
    }
  }
  return out;
}

function sequence(obj: JsonObject, label: string, where: string): TokenSequence {
  const rewards = obj.rewards;
  if (!Array.isArray(rewards) || !rewards.every((r) => typeof r === 'number' && Number.isFinite(r))) {
    throw new RunDirError(`${where}: "rewards" must be an array of finite numbers, got ${kind(rewards)}`);
  }
  let tokens: string[];
  if (Array.isArray(obj.tokens) && obj.tokens.every((t) => typeof t === 'string')) {
    tokens = obj.tokens as string[];
  } else if ((obj.tokens === null || obj.tokens === undefined) && Array.isArray(obj.token_ids)) {
    tokens = obj.token_ids.map((id) => `⟨${String(id)}⟩`); // scored without a tokenizer: show the ids
  } else {
    throw new RunDirError(`${where}: "tokens" must be an array of strings, got ${kind(obj.tokens)}`);
  }
  if (tokens.length !== rewards.length) {
    throw new RunDirError(`${where}: ${tokens.length} tokens but ${rewards.length} rewards; there must be one reward per token`);
  }
  return { label, tokens, rewards: rewards as number[] };
}
