// `--config FILE.json`: a flat JSON object of options under TRL's snake_case names (beta, loss_type,
// per_device_eval_batch_size, …), mapped to the command's kebab-case flags. Precedence: flag > file > default.
// Unknown keys and wrong value types are usage errors that name the key and the file; null means "not set" (the
// default applies), and a list for a string option is joined with commas (TRL's "loss_type": ["sigmoid", "sft"]).
// Not here: what the options mean (each command's flag table says).
import { expectJsonObject, readJsonFile } from '../io/json.js';
import { UsageError, parseFlags, type FlagSpec, type FlagSpecs, type ParsedFlags } from './args.js';

/** The flag every command that takes a config file adds to its table. */
export const CONFIG_FLAG: FlagSpec = { type: 'string', default: undefined, help: 'JSON file of options with TRL\'s snake_case names (flags override it)' };

const MAX_CONFIG_BYTES = 1 << 20; // an options file is a few hundred bytes

/** TRL's snake_case name of a kebab-case flag: per-device-eval-batch-size → per_device_eval_batch_size. */
export function configKeyOf(flag: string): string {
  return flag.replace(/-/g, '_');
}

/** Reads a config file into flag values, checking every key and type against `specs`. */
export function readConfigFile(path: string, specs: FlagSpecs, command: string): Record<string, number | string | boolean> {
  let obj;
  try {
    obj = expectJsonObject(readJsonFile(path, { what: 'config file', maxBytes: MAX_CONFIG_BYTES }), path, 'a config file');
  } catch (e) {
    throw new UsageError(`${command}: --config ${e instanceof Error ? e.message : String(e)}`);
  }
  const byKey = new Map(Object.keys(specs).filter((f) => f !== 'config').map((f) => [configKeyOf(f), f]));
  const out: Record<string, number | string | boolean> = {};
  for (const [key, value] of Object.entries(obj)) {
    const flag = byKey.get(key) ?? (specs[key] && key !== 'config' ? key : undefined); // kebab-case keys are accepted too
    if (flag === undefined) {
      throw new UsageError(`${command}: unknown key "${key}" in config file ${path}; the known keys are ${[...byKey.keys()].join(', ')}`);
    }
    if (value === null) continue;
    const type = specs[flag].type;
    if (type === 'string' && Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number')) {
      out[flag] = value.join(',');
      continue;
    }
    if (typeof value !== type || (type === 'number' && !Number.isFinite(value))) {
      throw new UsageError(`${command}: key "${key}" in config file ${path} must be a ${type} (${specs[flag].help}), got ${JSON.stringify(value)}`);
    }
    out[flag] = value as number | string | boolean;
  }
  return out;
}

/**
 * parseFlags with a `--config FILE` flag: values come from the command line, else the file, else the defaults.
 * `specs` must include CONFIG_FLAG as `config`.
 */
export function parseFlagsWithConfig<S extends FlagSpecs>(argv: readonly string[], specs: S, command: string): ParsedFlags<S> {
  if (specs.config === undefined) throw new Error(`${command}: its flag table lacks 'config' (add CONFIG_FLAG)`);
  // Parse once with no defaults, so that only the flags actually given are set.
  const bare = Object.fromEntries(Object.entries(specs).map(([k, s]) => [k, { ...s, default: undefined }])) as FlagSpecs;
  const given = parseFlags(argv, bare, command) as Record<string, number | string | boolean | undefined>;
  const fromFile = typeof given.config === 'string' ? readConfigFile(given.config, specs, command) : {};
  const out: Record<string, number | string | boolean | undefined> = {};
  for (const [k, s] of Object.entries(specs)) out[k] = given[k] ?? fromFile[k] ?? s.default;
  return out as ParsedFlags<S>;
}
