// Bounded JSON file reading and typed field readers for validating config objects (config.json, index files, CLI
// config files). Every error names the file, the field or the line:column, what was expected and the fix.
// This file does not know any particular config schema; the loaders that use it do.
import { readFileSync, statSync } from 'node:fs';

/** An error in a file's contents (not an I/O failure): the message starts with the file's path. */
export class FormatError extends Error {
  override name = 'FormatError';
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
  }
}

export type JsonObject = { [key: string]: unknown };

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface ReadJsonOptions {
  /** Refuse files larger than this many bytes (default 64 MiB), before reading them. */
  maxBytes?: number;
  /** What the file is, for messages: 'config.json', 'safetensors index'. Default 'JSON file'. */
  what?: string;
}

const DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024;

/** Reads and parses a UTF-8 JSON file after checking its size. Returns the parsed value (any JSON type). */
export function readJsonFile(path: string, opts: ReadJsonOptions = {}): unknown {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_JSON_BYTES;
  const what = opts.what ?? 'JSON file';
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new FormatError(path, `expected a ${what}, found a directory or special file`);
    size = st.size;
  } catch (e) {
    if (e instanceof FormatError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${path}: ${what} not found; check the path`, { cause: e });
    throw new Error(`${path}: cannot read ${what} (${code ?? String(e)})`, { cause: e });
  }
  if (size > maxBytes) {
    throw new FormatError(path, `${what} is ${size} bytes, over the ${maxBytes}-byte limit; this is not the file you meant, or raise maxBytes`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path));
  } catch (e) {
    if (e instanceof TypeError) throw new FormatError(path, `${what} is not valid UTF-8 text; re-save it as UTF-8`);
    throw new Error(`${path}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  return parseJsonText(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, path, what);
}

/** JSON.parse with an error that names the file and, when V8 reports it, the line and column. */
export function parseJsonText(text: string, file: string, what = 'JSON'): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const at = /at position (\d+)/.exec(msg);
    const pos = at ? Number(at[1]) : /Unexpected end of JSON input/.test(msg) ? text.length : -1;
    const where = pos >= 0 ? ` at ${lineColumn(text, pos)}` : '';
    throw new FormatError(file, `${what} is not valid JSON${where}: ${msg}; fix the syntax (a missing comma or quote, a trailing comma, or a truncated file)`);
  }
}

/** "line L, column C" (both 1-based) of a character offset. */
function lineColumn(text: string, pos: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) { line++; lineStart = i + 1; }
  }
  return `line ${line}, column ${pos - lineStart + 1}`;
}

// ------------------------------------------------------------------------------------------------ field readers
// Each reader returns obj[key] checked against a type. `optional` fields may be missing or null (HF configs write
// null for "unset"); `default` makes a field optional and supplies its value. A wrong type is always an error.

export interface FieldOptions<T> {
  optional?: boolean;
  default?: T;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function readField<T>(
  obj: JsonObject, key: string, file: string, expected: string, check: (v: unknown) => v is T, opts: FieldOptions<T>,
): T | undefined {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (opts.default !== undefined) return opts.default;
    if (opts.optional) return undefined;
    throw new FormatError(file, `missing required field "${key}" (${expected}); add it to the file`);
  }
  if (!check(v)) throw new FormatError(file, `field "${key}" must be ${expected}, got ${describe(v)}; fix its value`);
  return v;
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInteger = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isString = (v: unknown): v is string => typeof v === 'string';
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';

export function getNumber(obj: JsonObject, key: string, file: string, opts?: { optional?: false; default?: number }): number;
export function getNumber(obj: JsonObject, key: string, file: string, opts: { optional: true }): number | undefined;
export function getNumber(obj: JsonObject, key: string, file: string, opts: FieldOptions<number> = {}): number | undefined {
  return readField(obj, key, file, 'a finite number', isFiniteNumber, opts);
}

export function getInteger(obj: JsonObject, key: string, file: string, opts?: { optional?: false; default?: number }): number;
export function getInteger(obj: JsonObject, key: string, file: string, opts: { optional: true }): number | undefined;
export function getInteger(obj: JsonObject, key: string, file: string, opts: FieldOptions<number> = {}): number | undefined {
  return readField(obj, key, file, 'an integer', isInteger, opts);
}

export function getString(obj: JsonObject, key: string, file: string, opts?: { optional?: false; default?: string }): string;
export function getString(obj: JsonObject, key: string, file: string, opts: { optional: true }): string | undefined;
export function getString(obj: JsonObject, key: string, file: string, opts: FieldOptions<string> = {}): string | undefined {
  return readField(obj, key, file, 'a string', isString, opts);
}

export function getBoolean(obj: JsonObject, key: string, file: string, opts?: { optional?: false; default?: boolean }): boolean;
export function getBoolean(obj: JsonObject, key: string, file: string, opts: { optional: true }): boolean | undefined;
export function getBoolean(obj: JsonObject, key: string, file: string, opts: FieldOptions<boolean> = {}): boolean | undefined {
  return readField(obj, key, file, 'true or false', isBoolean, opts);
}

export function getObject(obj: JsonObject, key: string, file: string, opts?: { optional?: false }): JsonObject;
export function getObject(obj: JsonObject, key: string, file: string, opts: { optional: true }): JsonObject | undefined;
export function getObject(obj: JsonObject, key: string, file: string, opts: FieldOptions<JsonObject> = {}): JsonObject | undefined {
  return readField(obj, key, file, 'a JSON object', isJsonObject, opts);
}

/** Checks that a parsed file is a JSON object (not an array, string or null). */
export function expectJsonObject(v: unknown, file: string, what = 'the file'): JsonObject {
  if (!isJsonObject(v)) throw new FormatError(file, `${what} must be a JSON object {...}, got ${describe(v)}`);
  return v;
}

/** Rejects keys outside `allowed` (flat configs reject typos instead of ignoring them). */
export function rejectUnknownKeys(obj: JsonObject, allowed: Iterable<string>, file: string): void {
  const known = new Set(allowed);
  const unknown = Object.keys(obj).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new FormatError(file, `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; the known fields are ${[...known].join(', ')}`);
  }
}
