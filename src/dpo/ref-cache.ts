// The on-disk cache of precomputed reference log-probs (--precompute-ref-log-probs): one file per fingerprint of
// everything the values depend on (dataset bytes, reference weights, tokenization), so a stale cache is never used.
// Location: <output_dir>/ref_logps_cache/ by default, or the directory given by --ref-cache-dir (shared across runs).
// This file stores and validates the values; computing them is the reference strategy's job.
import { closeSync, mkdirSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { isJsonObject, type JsonObject } from '../io/json.js';

export const REF_CACHE_DIR_NAME = 'ref_logps_cache';
/** Bumped whenever the meaning of the cached values or the file layout changes, so old caches miss. */
const CACHE_VERSION = 1;
const MAGIC = 'DPOREFLP';
const CHECKSUM_BYTES = 32; // sha256 of everything before it

/** Summed reference log-probs of one preference pair. */
export interface RefLogps {
  chosen: number;
  rejected: number;
}

export interface RefCacheInputs {
  /** The dataset files, in the order their examples are numbered; hashed by content (moving a file keeps the cache). */
  datasetFiles: readonly string[];
  /** The reference model directory; its config.json and weight files are hashed by content (see hashModelWeights). */
  refWeightsDir?: string;
  /** Instead of refWeightsDir: a fingerprint of in-memory reference weights, e.g. from hashParameters(model.namedParameters()). */
  refWeightsFingerprint?: string;
  /** Tokenizer files (tokenizer.json, tokenizer_config.json), hashed by content. */
  tokenizerFiles?: readonly string[];
  /**
   * Everything else that decides example i's tokens: max_length, max_prompt_length, truncation_mode, the chat template
   * string, the dataset split or sample limit, … . β and the loss type do not belong here: reference log-probs do not
   * depend on them.
   */
  tokenization: JsonObject;
}

export interface RefCacheWarnings {
  /** Receives one line when a cache file is present but unusable (default console.warn). */
  warn?: (message: string) => void;
}

// ------------------------------------------------------------------------------------------------ fingerprints
/** Streams a file through `hash` in 4 MiB chunks (bounded memory for multi-GB weights). */
function hashInto(hash: Hash, path: string): number {
  const fd = openSync(path, 'r');
  const chunk = Buffer.allocUnsafe(4 << 20);
  let total = 0;
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      total += n;
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

/** sha256 (hex) of a file's bytes. */
export function hashFile(path: string): string {
  const hash = createHash('sha256');
  hashInto(hash, path);
  return hash.digest('hex');
}

/** The files of a model directory that decide its outputs: config.json and the weights (single or sharded). */
const MODEL_FILE = /^(config\.json|model(-\d{5}-of-\d{5})?\.safetensors|model\.safetensors\.index\.json)$/;

/**
 * sha256 of a model directory's config.json and weight files (model.safetensors, shards and index), by name and
 * content. Content rather than size + mtime: a re-download or a copy that keeps the timestamps but changes a byte
 * must miss. The cost is one read of the weights, small next to one forward pass over the dataset. Other files
 * (a checkpoint's optimizer.safetensors, the tokenizer) are not part of it.
 */
export function hashModelWeights(dir: string): string {
  const hash = createHash('sha256');
  const files = readdirSync(dir).filter((f) => MODEL_FILE.test(f)).sort();
  if (!files.some((f) => f.endsWith('.safetensors'))) throw new Error(`${dir}: no model.safetensors or shards to fingerprint; pass the reference model's directory`);
  for (const f of files) {
    hash.update(`${f}\0`);
    const bytes = hashInto(hash, join(dir, f));
    hash.update(`\0${bytes}\0`);
  }
  return hash.digest('hex');
}

/** sha256 of named in-memory tensors (names, shapes, dtype and float bytes), for a reference that is not a directory. */
export function hashParameters(named: Iterable<readonly [string, { shape: readonly number[]; data: ArrayBufferView }]>): string {
  const hash = createHash('sha256');
  for (const [name, t] of [...named].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    hash.update(`${name}\0${t.shape.join(',')}\0${t.data.constructor.name}\0`);
    hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return hash.digest('hex');
}

/** JSON with object keys sorted at every level, so equal options always hash equally. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    isJsonObject(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v);
}

/** The hex fingerprint that names a cache: equal inputs give equal fingerprints; any changed byte gives another. */
export function refCacheFingerprint(inputs: RefCacheInputs): string {
  const hasDir = inputs.refWeightsDir !== undefined;
  if (hasDir === (inputs.refWeightsFingerprint !== undefined)) {
    throw new Error('refCacheFingerprint: give exactly one of refWeightsDir and refWeightsFingerprint');
  }
  if (inputs.datasetFiles.length === 0) throw new Error('refCacheFingerprint: datasetFiles is empty; pass the files the examples come from');
  const description = {
    cache_version: CACHE_VERSION,
    datasets: inputs.datasetFiles.map(hashFile),
    reference: hasDir ? hashModelWeights(inputs.refWeightsDir!) : inputs.refWeightsFingerprint,
    tokenizer_files: (inputs.tokenizerFiles ?? []).map(hashFile),
    tokenization: inputs.tokenization,
  };
  return createHash('sha256').update(canonicalJson(description)).digest('hex');
}

// ------------------------------------------------------------------------------------------------ the cache file
/** <outputDir>/ref_logps_cache, the default cache directory. */
export function defaultRefCacheDir(outputDir: string): string {
  return join(outputDir, REF_CACHE_DIR_NAME);
}

function checkFingerprint(fingerprint: string): void {
  if (!/^[0-9a-f]{64}$/.test(fingerprint)) throw new Error(`ref cache: fingerprint must be 64 hex digits from refCacheFingerprint, got "${fingerprint}"`);
}

/** The file that holds the cache for `fingerprint`; caches of other inputs (say, the eval split) live beside it. */
export function refCacheFile(cacheDir: string, fingerprint: string): string {
  checkFingerprint(fingerprint);
  return join(cacheDir, `ref_logps-${fingerprint}.bin`);
}

// Layout, little-endian: "DPOREFLP" | u32 version | u32 header bytes H | H bytes of JSON {fingerprint, count} padded
// with spaces to a multiple of 8 | float64 indices[count] | float64 chosen[count] | float64 rejected[count] |
// sha256 of all preceding bytes. float64 keeps every value exactly as computed.

/**
 * Saves the cache atomically (a crash leaves the previous file or none) and returns its path. Entries are keyed by
 * example index (the position in the dataset files, before shuffling).
 */
export function saveRefCache(cacheDir: string, fingerprint: string, entries: ReadonlyMap<number, RefLogps>): string {
  const path = refCacheFile(cacheDir, fingerprint);
  const count = entries.size;
  const header = Buffer.from(JSON.stringify({ fingerprint, count }), 'utf8');
  const headerBytes = Math.ceil(header.length / 8) * 8;
  const body = new Float64Array(3 * count);
  let i = 0;
  for (const [index, { chosen, rejected }] of [...entries].sort((a, b) => a[0] - b[0])) {
    if (!Number.isSafeInteger(index) || index < 0) throw new Error(`saveRefCache: example index ${index} is not an integer ≥ 0`);
    body[i] = index;
    body[count + i] = chosen;
    body[2 * count + i] = rejected;
    i++;
  }
  const bytes = Buffer.alloc(16 + headerBytes + body.byteLength + CHECKSUM_BYTES, 0x20);
  bytes.write(MAGIC, 0, 'latin1');
  bytes.writeUInt32LE(CACHE_VERSION, 8);
  bytes.writeUInt32LE(headerBytes, 12);
  header.copy(bytes, 16);
  Buffer.from(body.buffer).copy(bytes, 16 + headerBytes);
  const end = bytes.length - CHECKSUM_BYTES;
  createHash('sha256').update(bytes.subarray(0, end)).digest().copy(bytes, end);
  mkdirSync(cacheDir, { recursive: true });
  writeFileAtomic(path, bytes);
  return path;
}

/**
 * The cached log-probs for `fingerprint`, or null when the caller must compute them: no file (a miss), or a file
 * that fails any check (wrong magic, version, size, checksum or fingerprint), which is reported through warn and
 * never trusted; the next saveRefCache replaces it.
 */
export function loadRefCache(cacheDir: string, fingerprint: string, o: RefCacheWarnings = {}): Map<number, RefLogps> | null {
  const path = refCacheFile(cacheDir, fingerprint);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    (o.warn ?? console.warn)(`warning: cannot read the reference log-prob cache ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)}); recomputing`);
    return null;
  }
  try {
    return decodeCache(bytes, fingerprint);
  } catch (e) {
    (o.warn ?? console.warn)(`warning: ignoring the reference log-prob cache ${path}: ${(e as Error).message}; recomputing it`);
    return null;
  }
}

/** Parses and checks a cache file's bytes; throws saying what is wrong. */
function decodeCache(bytes: Buffer, fingerprint: string): Map<number, RefLogps> {
  if (bytes.length < 16 + CHECKSUM_BYTES || bytes.toString('latin1', 0, 8) !== MAGIC) throw new Error('it is not a dpo-ts reference log-prob cache (bad magic or too short)');
  const end = bytes.length - CHECKSUM_BYTES;
  if (!createHash('sha256').update(bytes.subarray(0, end)).digest().equals(bytes.subarray(end))) {
    throw new Error('its checksum does not match its contents (truncated or corrupt)');
  }
  const version = bytes.readUInt32LE(8);
  if (version !== CACHE_VERSION) throw new Error(`it has format version ${version}, this dpo-ts writes ${CACHE_VERSION}`);
  const headerBytes = bytes.readUInt32LE(12);
  if (headerBytes % 8 !== 0 || 16 + headerBytes > end) throw new Error(`its header length ${headerBytes} is invalid`);
  const header: unknown = JSON.parse(bytes.toString('utf8', 16, 16 + headerBytes));
  if (!isJsonObject(header) || typeof header.fingerprint !== 'string' || !Number.isSafeInteger(header.count)) throw new Error('its header lacks fingerprint or count');
  if (header.fingerprint !== fingerprint) throw new Error(`it holds fingerprint ${header.fingerprint}, not ${fingerprint}`);
  const count = header.count as number;
  if (16 + headerBytes + 24 * count !== end) throw new Error(`its size does not match its ${count} entries`);
  const body = new Float64Array(3 * count);
  Buffer.from(body.buffer).set(bytes.subarray(16 + headerBytes, end)); // copy: the data is not 8-byte aligned in `bytes`
  const out = new Map<number, RefLogps>();
  for (let i = 0; i < count; i++) {
    const index = body[i];
    if (!Number.isSafeInteger(index) || index < 0 || out.has(index)) throw new Error(`entry ${i} has an invalid or repeated example index ${index}`);
    out.set(index, { chosen: body[count + i], rejected: body[2 * count + i] });
  }
  return out;
}
