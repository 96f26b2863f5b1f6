// One safetensors file: read and validate the header, load tensors as float32, and save (F32 or BF16).
// Format: u64 little-endian header length N, N bytes of UTF-8 JSON {"__metadata__": {str: str}, name: {dtype, shape,
// data_offsets: [begin, end]}}, then the byte buffer (offsets are relative to its start; row-major, little-endian).
// Every header field is checked before any tensor is read. Sharded model directories live in safetensors-sharded.ts.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { writeFileAtomic, type ChunkWriter } from './atomic.js';
import { decodeBF16, decodeF16, encodeBF16 } from './half.js';
import { FormatError, isJsonObject, parseJsonText } from './json.js';

/** Bytes per element of every dtype the format defines (sub-byte types such as F4 are not listed). */
const DTYPE_BYTES = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8, C64: 8,
} as const;
export type SafetensorsDType = keyof typeof DTYPE_BYTES;

/** The dtypes loadSafetensors converts to float32 (integer, bool and fp8 tensors are refused by name). */
export type LoadableDType = 'F32' | 'F16' | 'BF16' | 'F64';
export function isLoadableDType(d: SafetensorsDType): d is LoadableDType {
  return d === 'F32' || d === 'F16' || d === 'BF16' || d === 'F64';
}

/** Headers beyond this are refused before being read (the reference implementation's limit too). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  dtype: SafetensorsDType;
  shape: number[];
  /** [begin, end) byte offsets relative to the start of the byte buffer. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  file: string;
  metadata: Record<string, string>;
  /** Tensors in byte-buffer order. */
  tensors: Map<string, TensorEntry>;
  /** File offset of the byte buffer: 8 + the header length. */
  dataStart: number;
}

export interface LoadedTensor {
  /** The dtype stored in the file; `data` is always float32. */
  dtype: LoadableDType;
  shape: number[];
  data: Float32Array;
}

export function dtypeBytes(dtype: SafetensorsDType): number {
  return DTYPE_BYTES[dtype];
}

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.hasOwn(DTYPE_BYTES, s);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const fmt = (a: readonly number[]) => `[${a.join(', ')}]`;

/** `"a", "b" (and 3 more)`: names for an error message. */
export function quoteNames(names: readonly string[], max = 5): string {
  const shown = names.slice(0, max).map((n) => `"${n}"`).join(', ');
  return names.length > max ? `${shown} (and ${names.length - max} more)` : shown;
}

// ------------------------------------------------------------------------------------------------ header
/** Reads exactly bytes.length bytes at `position`; fails if the file ends first. */
function readExact(fd: number, bytes: Uint8Array, position: number, file: string): void {
  const CHUNK = 1 << 30; // readSync refuses single reads of 2 GiB or more
  let done = 0;
  while (done < bytes.byteLength) {
    const n = readSync(fd, bytes, done, Math.min(CHUNK, bytes.byteLength - done), position + done);
    if (n === 0) throw new FormatError(file, `the file ended at byte ${position + done} while ${bytes.byteLength} bytes were expected from byte ${position}; it is truncated`);
    done += n;
  }
}

/** Reads and validates the header of an open file of `fileSize` bytes. */
function readHeader(fd: number, file: string, fileSize: number): SafetensorsHeader {
  if (fileSize < 8) throw new FormatError(file, `the file is ${fileSize} bytes, too short to hold the 8-byte header length; it is truncated or not a safetensors file`);
  const lengthBytes = Buffer.alloc(8);
  readExact(fd, lengthBytes, 0, file);
  const n64 = lengthBytes.readBigUInt64LE(0);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError(file, `header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit; this is not a safetensors file (or it is corrupt)`);
  }
  const n = Number(n64);
  if (n > fileSize - 8) {
    throw new FormatError(file, `header length ${n} runs past the end of the ${fileSize}-byte file; the file is truncated or not a safetensors file`);
  }
  const headerBytes = Buffer.alloc(n);
  readExact(fd, headerBytes, 8, file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new FormatError(file, `the ${n}-byte header is not valid UTF-8; the file is corrupt or not a safetensors file`);
  }
  const json = parseJsonText(text, file, 'the safetensors header');
  return validateHeader(json, file, 8 + n, fileSize - 8 - n);
}

/** Checks a parsed header against the format and returns its typed form. `bufferBytes` is the byte buffer's size. */
function validateHeader(json: unknown, file: string, dataStart: number, bufferBytes: number): SafetensorsHeader {
  if (!isJsonObject(json)) {
    throw new FormatError(file, `the header must be a JSON object of tensor entries, got ${Array.isArray(json) ? 'an array' : json === null ? 'null' : typeof json}`);
  }
  const metadata: Record<string, string> = {};
  const entries: [string, TensorEntry][] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isJsonObject(value)) throw new FormatError(file, `__metadata__ must be an object of string → string`);
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new FormatError(file, `__metadata__["${k}"] must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (!isJsonObject(value)) throw new FormatError(file, `${where}: expected an object {dtype, shape, data_offsets}, got ${JSON.stringify(value)}`);
    const { dtype, shape, data_offsets: offsets } = value;
    if (!isDType(dtype)) {
      throw new FormatError(file, `${where}: unknown dtype ${JSON.stringify(dtype)}; the safetensors dtypes are ${Object.keys(DTYPE_BYTES).join(', ')}`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw new FormatError(file, `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      throw new FormatError(file, `${where}: data_offsets must be [begin, end] with non-negative integers, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets;
    if (begin > end) throw new FormatError(file, `${where}: data_offsets ${fmt(offsets)} has begin > end`);
    if (end > bufferBytes) {
      throw new FormatError(file, `${where}: data_offsets ${fmt(offsets)} run past the end of the ${bufferBytes}-byte data section; the file is truncated or its header is wrong`);
    }
    const elements = shape.reduce((a, b) => a * b, 1);
    const expected = elements * DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(expected) || end - begin !== expected) {
      throw new FormatError(file, `${where}: data_offsets ${fmt(offsets)} hold ${end - begin} bytes, but ${dtype} ${fmt(shape)} needs ${elements} × ${DTYPE_BYTES[dtype]} = ${expected} bytes`);
    }
    entries.push([name, { dtype, shape, dataOffsets: [begin, end] }]);
  }
  // The byte buffer must be tiled exactly: sorted by offset, each tensor starts where the previous one ended.
  entries.sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]);
  let previous = '(start of data)';
  let previousEnd = 0;
  for (const [name, { dataOffsets: [begin, end] }] of entries) {
    if (begin < previousEnd) {
      throw new FormatError(file, `tensor "${name}": data_offsets [${begin}, ${end}] overlap tensor "${previous}", which ends at ${previousEnd}; the header is corrupt`);
    }
    if (begin > previousEnd) {
      throw new FormatError(file, `tensor "${name}": data_offsets [${begin}, ${end}] leave a gap of ${begin - previousEnd} bytes after ${previous === '(start of data)' ? 'the start of data' : `tensor "${previous}"`}; safetensors data must be contiguous`);
    }
    previous = name;
    previousEnd = end;
  }
  if (previousEnd !== bufferBytes) {
    throw new FormatError(file, `the data section has ${bufferBytes - previousEnd} bytes after the last tensor that the header does not describe; the file is corrupt`);
  }
  return { file, metadata, tensors: new Map(entries), dataStart };
}

function checkLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('safetensors I/O here assumes a little-endian CPU; this one is big-endian');
}

/** Opens `path`, runs fn with its validated header, and closes it. */
function withFile<R>(path: string, fn: (fd: number, header: SafetensorsHeader) => R): R {
  checkLittleEndian();
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${path}: cannot open the safetensors file (${code === 'ENOENT' ? 'not found; check the path' : code ?? String(e)})`, { cause: e });
  }
  try {
    return fn(fd, readHeader(fd, path, fstatSync(fd).size));
  } finally {
    closeSync(fd);
  }
}

/** Reads and validates a safetensors header without reading any tensor data. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  return withFile(path, (_fd, header) => header);
}

// ------------------------------------------------------------------------------------------------ loading
export function unsupportedDTypeError(path: string, name: string, dtype: SafetensorsDType): FormatError {
  return new FormatError(path, `tensor "${name}": unsupported dtype ${dtype}; dpo-ts loads F32, F16, BF16 and F64 as float32 (pass {names} to skip this tensor)`);
}

/** Converts `out.length` elements of raw little-endian data (at the start of an aligned buffer) into float32. */
const DECODERS: Record<Exclude<LoadableDType, 'F32'>, (raw: ArrayBuffer, out: Float32Array) => void> = {
  F16: (raw, out) => decodeF16(new Uint16Array(raw, 0, out.length), out),
  BF16: (raw, out) => decodeBF16(new Uint16Array(raw, 0, out.length), out),
  F64: (raw, out) => out.set(new Float64Array(raw, 0, out.length)), // rounds to nearest float32
};

export interface LoadOptions {
  /** Load only these tensors (each must exist). Default: every tensor in the file. */
  names?: Iterable<string>;
}

/**
 * Loads tensors as float32. F32 data is read straight into each tensor's own array (no whole-file buffer, no second
 * copy); F16, BF16 and F64 go through one reused scratch buffer and are converted. Other dtypes are an error.
 */
export function loadSafetensors(path: string, opts: LoadOptions = {}): Map<string, LoadedTensor> {
  return withFile(path, (fd, header) => {
    const wanted = opts.names === undefined ? null : new Set(opts.names);
    const missing = wanted ? [...wanted].filter((n) => !header.tensors.has(n)) : [];
    if (missing.length > 0) {
      const have = [...header.tensors.keys()];
      throw new FormatError(path, `no tensor named ${quoteNames(missing)}; the file has ${have.length} tensors: ${have.slice(0, 8).join(', ')}${have.length > 8 ? ', …' : ''}`);
    }
    const plan: [string, LoadableDType, number[], number, number][] = [];
    for (const [name, { dtype, shape, dataOffsets: [begin, end] }] of header.tensors) {
      if (wanted && !wanted.has(name)) continue;
      if (!isLoadableDType(dtype)) throw unsupportedDTypeError(path, name, dtype);
      plan.push([name, dtype, shape, begin, end]);
    }
    const out = new Map<string, LoadedTensor>();
    let scratch = new ArrayBuffer(0);
    for (const [name, dtype, shape, begin, end] of plan) {
      const data = new Float32Array((end - begin) / DTYPE_BYTES[dtype]);
      const position = header.dataStart + begin;
      if (dtype === 'F32') {
        readExact(fd, new Uint8Array(data.buffer), position, path);
      } else {
        if (scratch.byteLength < end - begin) scratch = new ArrayBuffer(end - begin);
        readExact(fd, new Uint8Array(scratch, 0, end - begin), position, path);
        DECODERS[dtype](scratch, data);
      }
      out.set(name, { dtype, shape, data });
    }
    return out;
  });
}

// ------------------------------------------------------------------------------------------------ saving
/** Anything with a shape and float data: a Tensor, a LoadedTensor, or a plain object. */
export interface SavableTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array | Float64Array | Int32Array;
}

/** A Map, an array of pairs, or Module.namedParameters(). */
export type TensorSource = Iterable<readonly [string, SavableTensor]>;

export type SaveDType = 'F32' | 'BF16';

export interface SaveOptions {
  /** Stored dtype (default F32). BF16 rounds to nearest even. */
  dtype?: SaveDType;
  /** String metadata; {"format": "pt"} is always included unless overridden (transformers checks it). */
  metadata?: Record<string, string>;
}

/** A tensor checked for saving: float data matching its shape. */
export interface TensorToSave {
  name: string;
  shape: readonly number[];
  data: Float32Array | Float64Array;
}

/** Validates names, shapes and data (reading each Tensor's data once); returns the tensors sorted by name. */
export function collectTensors(tensors: TensorSource, file: string): TensorToSave[] {
  const sorted: TensorToSave[] = [];
  for (const [name, t] of tensors) {
    const data = t.data;
    if (data instanceof Int32Array) throw new Error(`${file}: tensor "${name}" is int32; only float tensors can be saved`);
    if (name === '' || name === '__metadata__') throw new Error(`${file}: cannot save a tensor named "${name}"; rename it`);
    if (!t.shape.every(isCount) || t.shape.reduce((a, b) => a * b, 1) !== data.length) {
      throw new Error(`${file}: tensor "${name}" has shape ${fmt(t.shape)} but ${data.length} elements`);
    }
    sorted.push({ name, shape: t.shape, data });
  }
  sorted.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1].name === sorted[i].name) throw new Error(`${file}: two tensors are named "${sorted[i].name}"; names must be unique`);
  }
  return sorted;
}

/** Bytes the tensor takes in the file. */
export function storedBytes(t: TensorToSave, dtype: SaveDType): number {
  return t.data.length * DTYPE_BYTES[dtype];
}

/** The 8-byte length plus the JSON header, padded with spaces so the byte buffer starts 8-byte aligned. */
function encodeHeader(sorted: TensorToSave[], dtype: SaveDType, metadata: Record<string, string>, file: string): Uint8Array {
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new Error(`${file}: metadata["${k}"] must be a string, got ${typeof v}; safetensors metadata is string → string`);
  }
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of sorted) {
    const bytes = storedBytes(t, dtype);
    header[t.name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

/** Streams one tensor's data in the stored dtype, converting in bounded chunks (no full-size temporary). */
function writeTensorData(write: ChunkWriter, data: Float32Array | Float64Array, dtype: SaveDType): void {
  if (dtype === 'F32' && data instanceof Float32Array) {
    write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return;
  }
  const CHUNK = 1 << 20; // elements per conversion chunk
  const f32 = new Float32Array(Math.min(CHUNK, data.length));
  const bf16 = new Uint16Array(dtype === 'BF16' ? f32.length : 0);
  for (let start = 0; start < data.length; start += CHUNK) {
    const n = Math.min(CHUNK, data.length - start);
    const part = data instanceof Float32Array ? data.subarray(start, start + n) : f32.subarray(0, n);
    if (data instanceof Float64Array) part.set(data.subarray(start, start + n));
    if (dtype === 'F32') {
      write(new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
    } else {
      const out = bf16.subarray(0, n);
      encodeBF16(part, out);
      write(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
    }
  }
}

/** Writes tensors (already validated and sorted) to one file, atomically. */
export function writeSafetensorsFile(path: string, sorted: TensorToSave[], opts: SaveOptions): void {
  checkLittleEndian();
  const dtype = opts.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'BF16') throw new Error(`${path}: cannot save as ${String(dtype)}; the save dtypes are F32 and BF16`);
  const header = encodeHeader(sorted, dtype, { format: 'pt', ...opts.metadata }, path);
  writeFileAtomic(path, (write) => {
    write(header);
    for (const t of sorted) writeTensorData(write, t.data, dtype);
  });
}

/** Saves tensors to one safetensors file, sorted by name, written atomically (temp file + rename). */
export function saveSafetensors(path: string, tensors: TensorSource, opts: SaveOptions = {}): void {
  writeSafetensorsFile(path, collectTensors(tensors, path), opts);
}
