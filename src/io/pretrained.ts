// Hugging Face model directories as a whole: loadPretrained reads config.json, the weights (single or sharded
// safetensors), the tokenizer and generation_config.json; savePretrained writes the same layout, atomically, so that
// transformers' from_pretrained loads it. The single formats live in their own files (safetensors*.ts, tokenizer.ts);
// the architectures in models/.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../engine/random.js';
import type { GenerateOptions } from '../models/generate.js';
import { IGNORED_BUFFERS, createModel, hfArchitectures, loadStateDict, parseModelConfig, type CausalLM, type ModelConfig } from '../models/index.js';
import { writeDirAtomic, writeFileAtomic } from './atomic.js';
import { expectJsonObject, getObject, readJsonFile, type JsonObject } from './json.js';
import { readSafetensorsHeader, type SafetensorsDType, type SaveDType } from './safetensors.js';
import { SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, loadSafetensorsDir, saveSafetensorsSharded } from './safetensors-sharded.js';
import { loadTokenizer, saveTokenizerFiles, type Tokenizer } from './tokenizer.js';

export const CONFIG_FILE = 'config.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';
const MAX_CONFIG_BYTES = 4 << 20; // a real config.json is a few KB

export interface LoadPretrainedOptions {
  /** Compute dtype of the model. The models build in float32; F16, BF16 and F64 weights are converted to it. */
  dtype?: 'float32';
}

export interface Pretrained {
  model: CausalLM;
  /** config.json as written (every key, including the ones the model ignores). */
  config: JsonObject;
  modelConfig: ModelConfig;
  /** null when the directory has no tokenizer.json. */
  tokenizer: Tokenizer | null;
  /** generation_config.json, or null when absent. */
  generationConfig: JsonObject | null;
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

/** A model directory's config.json as an object; errors name the directory or file and the fix. */
export function readModelDirConfig(dir: string): JsonObject {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a model directory (it does not exist or is a file); pass the directory that holds config.json`);
  const path = join(dir, CONFIG_FILE);
  if (!isFile(path)) {
    throw new Error(`${path} not found: a model directory needs the HF config.json next to its weights (save_pretrained writes it; copy it from the model's source)`);
  }
  return expectJsonObject(readJsonFile(path, { what: CONFIG_FILE, maxBytes: MAX_CONFIG_BYTES }), path, CONFIG_FILE);
}

/** The weight file a model directory is read from (for error messages), as loadSafetensorsDir picks it. */
function weightsSource(dir: string): string {
  return isFile(join(dir, SAFETENSORS_FILE)) ? join(dir, SAFETENSORS_FILE) : join(dir, SAFETENSORS_INDEX_FILE);
}

/**
 * Loads an HF model directory: config.json picks the architecture (models/registry), weights are copied in by name
 * and checked key by key, and the tokenizer and generation_config.json are read when present.
 */
export function loadPretrained(dir: string, opts: LoadPretrainedOptions = {}): Pretrained {
  if ((opts.dtype ?? 'float32') !== 'float32') throw new Error(`loadPretrained: dtype '${String(opts.dtype)}' is not supported; models compute in float32`);
  const config = readModelDirConfig(dir);
  const modelConfig = parseModelConfig(config, join(dir, CONFIG_FILE));
  const genPath = join(dir, GENERATION_CONFIG_FILE);
  const generationConfig = isFile(genPath) ? expectJsonObject(readJsonFile(genPath, { what: GENERATION_CONFIG_FILE, maxBytes: MAX_CONFIG_BYTES }), genPath, GENERATION_CONFIG_FILE) : null;
  const tokenizer = loadTokenizer(dir); // the small files first: a broken one fails before the weights are read
  const weights = loadSafetensorsDir(dir);
  // Seeded initial values are overwritten by the checkpoint; the key check in loadStateDict guarantees all of them are.
  const model = createModel(modelConfig, new Rng(0));
  try {
    loadStateDict(model, weights, weightsSource(dir));
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, config, modelConfig, tokenizer, generationConfig };
}

// ------------------------------------------------------------------------------------------------ weight headers
export interface WeightsSummary {
  /** The weight files (model.safetensors, or the shards the index lists). */
  files: string[];
  /** Stored dtype → number of elements in that dtype. */
  dtypes: Partial<Record<SafetensorsDType, number>>;
  /** Elements of every stored tensor except the buffers models ignore (attn.bias, rotary inv_freq). */
  numParameters: number;
}

/** What a directory's weights hold, read from the safetensors headers only (no tensor data is read). */
export function summarizeWeights(dir: string): WeightsSummary {
  let files = [SAFETENSORS_FILE];
  if (!isFile(join(dir, SAFETENSORS_FILE))) {
    const indexPath = join(dir, SAFETENSORS_INDEX_FILE);
    if (!isFile(indexPath)) throw new Error(`${dir}: no ${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX_FILE}; save the weights as safetensors`);
    const weightMap = getObject(expectJsonObject(readJsonFile(indexPath, { what: 'safetensors index' }), indexPath, 'the index'), 'weight_map', indexPath);
    files = [...new Set(Object.values(weightMap).map(String))].sort();
  }
  const summary: WeightsSummary = { files, dtypes: {}, numParameters: 0 };
  for (const file of files) {
    for (const [name, entry] of readSafetensorsHeader(join(dir, file)).tensors) {
      if (IGNORED_BUFFERS.some((re) => re.test(name))) continue;
      const n = entry.shape.reduce((a, b) => a * b, 1);
      summary.dtypes[entry.dtype] = (summary.dtypes[entry.dtype] ?? 0) + n;
      summary.numParameters += n;
    }
  }
  return summary;
}

// ------------------------------------------------------------------------------------------------ generation config
/** A token id or a list of them, as HF writes eos_token_id; other values are ignored. */
function tokenIds(v: unknown): number[] {
  const list = Array.isArray(v) ? v : [v];
  return list.filter((x): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0);
}

/**
 * generate() options from a directory's generation_config.json (HF semantics: do_sample false is greedy; sampling
 * defaults are temperature 1, top_k 50, top_p 1), plus EOS ids from it, else config.json, else the tokenizer.
 */
export function generationDefaults(p: Pick<Pretrained, 'config' | 'generationConfig' | 'tokenizer'>): GenerateOptions {
  const g = p.generationConfig ?? {};
  const num = (key: string, fallback: number) => (typeof g[key] === 'number' ? (g[key] as number) : fallback);
  const out: GenerateOptions = g.do_sample === true
    ? { temperature: num('temperature', 1), topK: num('top_k', 50), topP: num('top_p', 1) }
    : { temperature: 0 };
  if (typeof g.max_new_tokens === 'number') out.maxNewTokens = g.max_new_tokens;
  let eos = tokenIds(g.eos_token_id);
  if (eos.length === 0) eos = tokenIds(p.config.eos_token_id);
  if (eos.length === 0 && p.tokenizer?.eosTokenId != null) eos = [p.tokenizer.eosTokenId];
  out.eosTokenIds = eos;
  const pad = tokenIds(g.pad_token_id ?? p.config.pad_token_id)[0] ?? p.tokenizer?.padTokenId;
  if (pad != null) out.padTokenId = pad;
  return out;
}

// ------------------------------------------------------------------------------------------------ saving
export interface SavePretrainedOptions {
  /** The HF config.json object the model was built from; it is written back with the model's own values. */
  config: JsonObject;
  /** Stored weight dtype (default F32). */
  dtype?: SaveDType;
  /** Shard above this many tensor bytes (default 5 GB, as HF). */
  maxShardBytes?: number;
  /** A directory whose tokenizer files (tokenizer.json, tokenizer_config.json, …) are copied along. */
  tokenizerFrom?: string;
  /** generation_config.json's contents; default: the token ids of config. */
  generationConfig?: JsonObject;
}

const TORCH_DTYPES: { [K in SaveDType]: string } = { F32: 'float32', BF16: 'bfloat16' };

/** Checks that `config` describes `model` (type and sizes); throws naming what differs. */
function checkConfigFits(model: CausalLM, config: JsonObject): ModelConfig {
  const parsed = parseModelConfig(config, 'savePretrained: config');
  const differs = (['modelType', 'vocabSize', 'hiddenSize', 'numLayers', 'maxPositions'] as const).filter((k) => parsed[k] !== model[k]);
  if (differs.length > 0) {
    const list = differs.map((k) => `${k} ${String(parsed[k])} in the config, ${String(model[k])} in the model`).join(', ');
    throw new Error(`savePretrained: the config does not describe this model (${list}); pass the config the model was built from`);
  }
  return parsed;
}

/**
 * Writes `model` as an HF directory: config.json (with architectures, model_type and torch_dtype),
 * model.safetensors or shards plus model.safetensors.index.json ({"format": "pt"} metadata), generation_config.json
 * and the tokenizer files. Everything goes into a temporary sibling directory renamed into place, so `dir` is always
 * either the complete old or the complete new version. Returns the names of the files written.
 */
export async function savePretrained(model: CausalLM, dir: string, opts: SavePretrainedOptions): Promise<string[]> {
  const dtype = opts.dtype ?? 'F32';
  if (!Object.hasOwn(TORCH_DTYPES, dtype)) throw new Error(`savePretrained: dtype '${dtype}' is not supported; use 'F32' or 'BF16'`);
  const parsed = checkConfigFits(model, opts.config);
  if (opts.tokenizerFrom !== undefined && !isFile(join(opts.tokenizerFrom, 'tokenizer.json'))) {
    throw new Error(`savePretrained: tokenizerFrom ${opts.tokenizerFrom} has no tokenizer.json; point it at a directory with the tokenizer files`);
  }
  const config = { ...opts.config, architectures: [hfArchitectures[parsed.modelType]], model_type: parsed.modelType, torch_dtype: TORCH_DTYPES[dtype] };
  const pick = (key: string) => (opts.config[key] === undefined ? {} : { [key]: opts.config[key] });
  const generationConfig = opts.generationConfig ?? { _from_model_config: true, ...pick('bos_token_id'), ...pick('eos_token_id'), ...pick('pad_token_id') };
  const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
  const written: string[] = [];
  await writeDirAtomic(dir, (tmp) => {
    writeFileAtomic(join(tmp, CONFIG_FILE), json(config));
    // Parameters are saved straight from the model (no copy); a tied lm_head is not a parameter, as HF omits it.
    written.push(CONFIG_FILE, ...saveSafetensorsSharded(tmp, model.namedParameters(), { dtype, maxShardBytes: opts.maxShardBytes }).files);
    writeFileAtomic(join(tmp, GENERATION_CONFIG_FILE), json(generationConfig));
    written.push(GENERATION_CONFIG_FILE);
    if (opts.tokenizerFrom !== undefined) written.push(...saveTokenizerFiles(opts.tokenizerFrom, tmp));
  });
  return written;
}
