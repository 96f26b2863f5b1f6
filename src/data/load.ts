// Reads preference rows from JSONL, JSON, Parquet or a folder of such files, keeping each row's input order and its
// location (file:line for JSONL, 1-based; file#row for JSON arrays and Parquet, 0-based) for later error messages.
// Rows come out as plain objects holding only the preference columns; shapes.ts decides what a row means.
// Not here: shape detection, tokenization, truncation.
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { FormatError, isJsonObject, parseJsonText, type JsonObject } from '../io/json.js';

/**
 * The columns read from a row. Every other column (ids, score_chosen / score_rejected, messages, images, tools, …)
 * is ignored, and never decoded from Parquet.
 */
export const PREFERENCE_COLUMNS = ['prompt', 'chosen', 'rejected', 'prompt_input_ids', 'chosen_input_ids', 'rejected_input_ids'] as const;

/** File extensions read, alone or inside a folder (other files in a folder, e.g. README.md, are skipped). */
export const DATA_FILE_EXTENSIONS = ['.jsonl', '.json', '.parquet'] as const;

/** Default per-file byte limit: a bigger file is the wrong path, or needs the limit raised on purpose. */
export const DEFAULT_MAX_DATA_FILE_BYTES = 1 << 30;
/** A .json array is parsed as one string, which V8 caps near 512M characters; past this, use JSONL. */
export const MAX_JSON_ARRAY_FILE_BYTES = 256 << 20;

/** One row as read: `index` is its position in the whole input (files in name order), `source` its location. */
export interface RawRow {
  index: number;
  source: string;
  fields: JsonObject;
}

export interface ReadRowsOptions {
  /** Refuse any file larger than this many bytes, before reading it. Default DEFAULT_MAX_DATA_FILE_BYTES (1 GiB). */
  maxFileBytes?: number;
}

/** An error in one record of a dataset: the message starts with its location and names its index. */
export class PreferenceDataError extends Error {
  override name = 'PreferenceDataError';
  constructor(readonly index: number, readonly source: string, detail: string) {
    super(`${source} (record ${index}): ${detail}`);
  }
}

/** The data files `path` stands for: itself, or a folder's data files sorted by name. */
export function listDataFiles(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new Error(`${path}: dataset not found (${(e as NodeJS.ErrnoException).code ?? String(e)}); check the path`, { cause: e });
  }
  if (st.isFile()) {
    if (!isDataFile(path)) {
      throw new FormatError(path, `unsupported dataset file extension '${extname(path)}'; expected one of ${DATA_FILE_EXTENSIONS.join(', ')}`);
    }
    return [path];
  }
  const names = readdirSync(path).filter((name) => !name.startsWith('.') && isDataFile(name)).sort();
  const files = names.map((name) => join(path, name)).filter((file) => statSync(file).isFile());
  if (files.length === 0) {
    throw new FormatError(path, `folder holds no ${DATA_FILE_EXTENSIONS.join(' / ')} files (subfolders are not searched); point at the data files' folder`);
  }
  return files;
}

/** Reads every row of a file or folder, in order. */
export async function readPreferenceRows(path: string, opts: ReadRowsOptions = {}): Promise<{ rows: RawRow[]; files: string[] }> {
  const files = listDataFiles(path);
  const rows: RawRow[] = [];
  for (const file of files) {
    const size = checkedSize(file, opts.maxFileBytes ?? DEFAULT_MAX_DATA_FILE_BYTES);
    const ext = extname(file).toLowerCase();
    if (ext === '.jsonl') readJsonlRows(file, rows);
    else if (ext === '.json') readJsonArrayRows(file, size, rows);
    else await readParquetRows(file, rows);
  }
  return { rows, files };
}

function isDataFile(name: string): boolean {
  return (DATA_FILE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());
}

function checkedSize(file: string, maxBytes: number): number {
  const size = statSync(file).size;
  if (size > maxBytes) {
    throw new FormatError(file, `dataset file is ${size} bytes, over the ${maxBytes}-byte limit; split it into a folder of smaller files or raise maxFileBytes`);
  }
  return size;
}

/** Keeps only the preference columns; null counts as absent (Parquet writes null for a missing optional value). */
function pickColumns(obj: JsonObject): JsonObject {
  const fields: JsonObject = {};
  for (const key of PREFERENCE_COLUMNS) if (obj[key] !== undefined && obj[key] !== null) fields[key] = obj[key];
  return fields;
}

// JSONL is read in byte chunks and split on '\n', so a file may exceed V8's string limit; blank lines are skipped.
function readJsonlRows(file: string, rows: RawRow[]): void {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(16 << 20);
    let carry = Buffer.alloc(0);
    let lineNo = 0;
    const handleLine = (bytes: Buffer) => {
      lineNo++;
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch {
        throw new FormatError(`${file}:${lineNo}`, 'line is not valid UTF-8 text; re-save the file as UTF-8');
      }
      if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (text.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw new FormatError(`${file}:${lineNo}`, `line is not valid JSON (${e instanceof Error ? e.message : String(e)}); each line must be one complete JSON object`);
      }
      if (!isJsonObject(value)) {
        throw new FormatError(`${file}:${lineNo}`, `a JSONL line must be one JSON object {"chosen": …, "rejected": …}, got ${Array.isArray(value) ? 'an array' : typeof value}`);
      }
      rows.push({ index: rows.length, source: `${file}:${lineNo}`, fields: pickColumns(value) });
    };
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      const data = carry.length === 0 ? chunk.subarray(0, n) : Buffer.concat([carry, chunk.subarray(0, n)]);
      let start = 0;
      for (let nl = data.indexOf(10, start); nl >= 0; nl = data.indexOf(10, start)) {
        const end = nl > start && data[nl - 1] === 13 ? nl - 1 : nl; // CRLF files
        handleLine(data.subarray(start, end));
        start = nl + 1;
      }
      carry = Buffer.from(data.subarray(start)); // a copy: `chunk` is reused by the next read
    }
    if (carry.length > 0) handleLine(carry);
  } finally {
    closeSync(fd);
  }
}

// A .json file holds an array of row objects, or {"data": [...]} (the layout HF datasets' `field="data"` reads).
function readJsonArrayRows(file: string, size: number, rows: RawRow[]): void {
  if (size > MAX_JSON_ARRAY_FILE_BYTES) {
    throw new FormatError(file, `a .json dataset is parsed whole and this one is ${size} bytes (limit ${MAX_JSON_ARRAY_FILE_BYTES}); convert it to JSONL, one object per line`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(readBytes(file));
  } catch {
    throw new FormatError(file, 'dataset is not valid UTF-8 text; re-save it as UTF-8');
  }
  const parsed = parseJsonText(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, file, 'JSON dataset');
  const items = Array.isArray(parsed) ? parsed : isJsonObject(parsed) && Array.isArray(parsed.data) ? parsed.data : null;
  if (items === null) {
    throw new FormatError(file, 'a .json dataset must be an array of row objects (or {"data": [rows]}); for one object per line use .jsonl');
  }
  items.forEach((item: unknown, i: number) => {
    if (!isJsonObject(item)) throw new FormatError(`${file}#${i}`, `row ${i} must be a JSON object, got ${Array.isArray(item) ? 'an array' : typeof item}`);
    rows.push({ index: rows.length, source: `${file}#${i}`, fields: pickColumns(item) });
  });
}

function readBytes(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

// Parquet: only the preference columns present in the schema are decoded. hyparquet reads uncompressed and snappy
// files (the pyarrow / HF datasets default); other codecs fail with a message saying so.
async function readParquetRows(file: string, rows: RawRow[]): Promise<void> {
  let records: Record<string, unknown>[];
  try {
    const buffer = await asyncBufferFromFile(file);
    const metadata = await parquetMetadataAsync(buffer);
    const columns = parquetSchema(metadata).children.map((c) => c.element.name);
    const wanted = PREFERENCE_COLUMNS.filter((c) => columns.includes(c));
    if (!wanted.includes('chosen') && !wanted.includes('chosen_input_ids')) {
      throw new FormatError(file, `Parquet file has no "chosen" or "chosen_input_ids" column (columns: ${columns.join(', ')}); is this a preference dataset?`);
    }
    records = await parquetReadObjects({ file: buffer, metadata, columns: wanted });
  } catch (e) {
    if (e instanceof FormatError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new FormatError(file, `could not read Parquet file: ${msg}. It may be truncated, or compressed with a codec other than snappy; re-save it with pyarrow's defaults`);
  }
  records.forEach((record, i) => {
    const fields: JsonObject = {};
    for (const [key, value] of Object.entries(record)) fields[key] = fromParquetValue(value);
    rows.push({ index: rows.length, source: `${file}#${i}`, fields: pickColumns(fields) });
  });
}

// hyparquet gives INT64 as bigint and may give typed arrays; rows are JSON-like, so convert them (an int64 beyond 2^53
// stays a bigint and is reported by the shape checks).
function fromParquetValue(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value;
  if (isTypedArray(value)) return Array.from(value, fromParquetValue);
  if (Array.isArray(value)) return value.map(fromParquetValue);
  if (isJsonObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromParquetValue(v)]));
  return value;
}

function isTypedArray(value: unknown): value is ArrayLike<number | bigint> {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}
