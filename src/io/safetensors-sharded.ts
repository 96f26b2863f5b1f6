// Hugging Face model directories: one `model.safetensors`, or shards `model-0000i-of-0000N.safetensors` listed in
// `model.safetensors.index.json` ({"metadata": {"total_size": n}, "weight_map": {tensor: shard}}). Loading validates
// the index and merges the shards; saving splits tensors, in name order, into shards of at most maxShardBytes.
// The single-file format itself lives in safetensors.ts.
import { mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describeWriteError, writeFileAtomic } from './atomic.js';
import { FormatError, expectJsonObject, getObject, readJsonFile } from './json.js';
import {
  collectTensors, isLoadableDType, loadSafetensors, quoteNames, readSafetensorsHeader, storedBytes,
  unsupportedDTypeError, writeSafetensorsFile,
  type LoadOptions, type LoadedTensor, type SaveOptions, type TensorSource, type TensorToSave,
} from './safetensors.js';

export const SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';
/** The files saveSafetensorsSharded owns in a directory (older copies of them are removed after a save). */
const WEIGHT_FILE = /^model(-\d{5}-of-\d{5})?\.safetensors$/;

/** HF's default max_shard_size, "5GB". */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------------ loading
/**
 * Loads a model directory's weights as float32: `model.safetensors` if present (as transformers does), else the
 * shards named by `model.safetensors.index.json`. Every shard and every listed tensor is checked before data is read.
 */
export function loadSafetensorsDir(dir: string, opts: LoadOptions = {}): Map<string, LoadedTensor> {
  const single = join(dir, SAFETENSORS_FILE);
  if (isFile(single)) return loadSafetensors(single, opts);
  const indexPath = join(dir, SAFETENSORS_INDEX_FILE);
  if (!isFile(indexPath)) throw noWeightsError(dir);
  const weightMap = readIndex(indexPath);

  const names = opts.names === undefined ? [...weightMap.keys()] : [...new Set(opts.names)];
  const unlisted = names.filter((n) => !weightMap.has(n));
  if (unlisted.length > 0) throw new FormatError(indexPath, `weight_map does not list ${quoteNames(unlisted)}; check the tensor names`);
  const byShard = new Map<string, string[]>();
  for (const name of names) {
    const shard = weightMap.get(name) ?? '';
    const list = byShard.get(shard);
    if (list) list.push(name);
    else byShard.set(shard, [name]);
  }
  const missingShards = [...byShard.keys()].filter((s) => !isFile(join(dir, s)));
  if (missingShards.length > 0) {
    throw new FormatError(indexPath, `weight_map names shard${missingShards.length > 1 ? 's' : ''} ${missingShards.join(', ')}, not found in ${dir}; the download is incomplete`);
  }
  for (const [shard, list] of byShard) {
    const header = readSafetensorsHeader(join(dir, shard));
    const absent = list.filter((n) => !header.tensors.has(n));
    if (absent.length > 0) {
      throw new FormatError(indexPath, `weight_map puts ${quoteNames(absent)} in ${shard}, but that shard does not contain ${absent.length > 1 ? 'them' : 'it'}; the index and shards do not match`);
    }
    for (const [name, { dtype }] of header.tensors) {
      if (!isLoadableDType(dtype) && list.includes(name)) throw unsupportedDTypeError(join(dir, shard), name, dtype);
    }
  }
  const out = new Map<string, LoadedTensor>();
  for (const [shard, list] of byShard) {
    for (const [name, t] of loadSafetensors(join(dir, shard), { names: list })) out.set(name, t);
  }
  return out;
}

/** Parses and validates an index: weight_map must map tensor names to plain file names inside the directory. */
function readIndex(indexPath: string): Map<string, string> {
  const root = expectJsonObject(readJsonFile(indexPath, { what: 'safetensors index' }), indexPath, 'the index');
  const weightMap = getObject(root, 'weight_map', indexPath);
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string') {
      throw new FormatError(indexPath, `weight_map["${name}"] must be a shard file name (a string), got ${JSON.stringify(shard)}`);
    }
    if (shard === '' || shard === '.' || shard === '..' || /[/\\]/.test(shard) || shard.includes('\0')) {
      throw new FormatError(indexPath, `weight_map["${name}"] = ${JSON.stringify(shard)}: shards must be plain file names inside the model directory (no path separators or '..')`);
    }
    out.set(name, shard);
  }
  if (out.size === 0) throw new FormatError(indexPath, 'weight_map lists no tensors');
  return out;
}

/** The error for a directory without weights, listing what it does hold. */
function noWeightsError(dir: string): Error {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return new Error(`${dir}: cannot read the model directory (${code === 'ENOENT' ? 'it does not exist' : code === 'ENOTDIR' ? 'it is a file, not a directory' : code ?? String(e)})`, { cause: e });
  }
  const found = entries.length === 0 ? 'the directory is empty' : `found ${entries.slice(0, 20).join(', ')}${entries.length > 20 ? `, … (${entries.length} entries)` : ''}`;
  let hint = '';
  if (entries.some((e) => e.endsWith('.bin') || e.endsWith('.pt') || e.endsWith('.pth'))) {
    hint = '; PyTorch pickle checkpoints are not read: re-save the model with save_pretrained(..., safe_serialization=True)';
  } else if (entries.some((e) => e.endsWith('.safetensors'))) {
    hint = '; to read another .safetensors file, call loadSafetensors(path) on it';
  }
  return new Error(`${dir}: no ${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX_FILE}; ${found}${hint}`);
}

// ------------------------------------------------------------------------------------------------ saving
export interface ShardedSaveOptions extends SaveOptions {
  /** Largest shard, counting tensor bytes (default 5 GB as in HF). A larger single tensor gets a shard of its own. */
  maxShardBytes?: number;
}

export interface ShardedSaveResult {
  /** File names written into the directory (shards, then the index when there is one). */
  files: string[];
  /** Sum of all tensors' bytes (the index's metadata.total_size). */
  totalSize: number;
}

/**
 * Saves tensors into `dir` as HF does: one `model.safetensors` when they fit in maxShardBytes, else numbered shards
 * plus `model.safetensors.index.json` (written last). Each file is written atomically; weight files of an earlier
 * save that the new one does not use are removed afterwards. To replace the whole directory at once, call this
 * inside writeDirAtomic.
 */
export function saveSafetensorsSharded(dir: string, tensors: TensorSource, opts: ShardedSaveOptions = {}): ShardedSaveResult {
  const maxShardBytes = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0)) throw new Error(`saveSafetensorsSharded: maxShardBytes must be > 0, got ${maxShardBytes}`);
  const dtype = opts.dtype ?? 'F32';
  const sorted = collectTensors(tensors, dir);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw describeWriteError(dir, e, 'create the directory');
  }
  const shards: TensorToSave[][] = [[]];
  let shardBytes = 0;
  let totalSize = 0;
  for (const t of sorted) {
    const bytes = storedBytes(t, dtype);
    if (shardBytes + bytes > maxShardBytes && shards[shards.length - 1].length > 0) {
      shards.push([]);
      shardBytes = 0;
    }
    shards[shards.length - 1].push(t);
    shardBytes += bytes;
    totalSize += bytes;
  }

  const files: string[] = [];
  if (shards.length === 1) {
    writeSafetensorsFile(join(dir, SAFETENSORS_FILE), sorted, opts);
    files.push(SAFETENSORS_FILE);
  } else {
    const pad = (i: number) => String(i).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => {
      const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
      writeSafetensorsFile(join(dir, file), shard, opts);
      for (const t of shard) weightMap[t.name] = file;
      files.push(file);
    });
    const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
    writeFileAtomic(join(dir, SAFETENSORS_INDEX_FILE), JSON.stringify(index, null, 2) + '\n');
    files.push(SAFETENSORS_INDEX_FILE);
  }
  for (const entry of readdirSync(dir)) {
    if ((WEIGHT_FILE.test(entry) || entry === SAFETENSORS_INDEX_FILE) && !files.includes(entry)) unlinkSync(join(dir, entry));
  }
  return { files, totalSize };
}
