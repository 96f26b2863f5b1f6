// Command-line flags: `--kebab-case value`, `--kebab-case=value`, and bare `--flag` for booleans. Each command declares
// its flags with a type, default and help line; an unknown flag or a bad value is an error that names the flag.

export type FlagType = 'number' | 'string' | 'boolean';
export interface FlagSpec {
  type: FlagType;
  default: number | string | boolean | undefined;
  help: string;
}
export type FlagSpecs = Record<string, FlagSpec>;
export type ParsedFlags<S extends FlagSpecs> = {
  [K in keyof S]: S[K]['type'] extends 'number' ? number : S[K]['type'] extends 'boolean' ? boolean : string;
};

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseFlags<S extends FlagSpecs>(argv: readonly string[], specs: S, command: string): ParsedFlags<S> {
  const out: Record<string, number | string | boolean | undefined> = {};
  for (const [k, s] of Object.entries(specs)) out[k] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new UsageError(`${command}: unexpected argument '${arg}'; flags look like --name value\n${usage(specs)}`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (!spec) throw new UsageError(`${command}: unknown flag --${name}\n${usage(specs)}`);
    let raw: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    if (spec.type === 'boolean') {
      if (raw === undefined && argv[i + 1] !== undefined && /^(true|false)$/.test(argv[i + 1])) raw = argv[++i];
      out[name] = raw === undefined ? true : raw === 'true';
      continue;
    }
    if (raw === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`${command}: --${name} needs a value (${spec.help})`);
      raw = argv[++i];
    }
    if (spec.type === 'number') {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${command}: --${name} must be a number, got '${raw}'`);
      out[name] = v;
    } else {
      out[name] = raw;
    }
  }
  return out as ParsedFlags<S>;
}

export function usage(specs: FlagSpecs): string {
  return Object.entries(specs)
    .map(([k, s]) => `  --${k}${s.type === 'boolean' ? '' : ' ' + s.type.toUpperCase()}  ${s.help}${s.default !== undefined ? ` (default ${s.default})` : ''}`)
    .join('\n');
}

/** argv with `--from` (and `--from=value`) renamed to `--to`: a flag alias, e.g. --prompts for --dataset. */
export function aliasFlag(argv: readonly string[], from: string, to: string): string[] {
  return argv.map((a) => (a === `--${from}` ? `--${to}` : a.startsWith(`--${from}=`) ? `--${to}=${a.slice(from.length + 3)}` : a));
}
