// A demo output folder as a sequence of resumable stages. The folder's demo_state.json records the options and their
// fingerprint; a rerun with the same options skips every stage whose done-marker (stages/NAME.json, written
// atomically after the stage's own files) exists, and a rerun with different options is refused, so results of two
// option sets are never mixed. --fresh empties a demo folder first. Not here: what the stages do (run.ts).
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { readJsonFile } from '../io/json.js';

export const STATE_FILE = 'demo_state.json';
const STAGES_DIR = 'stages';

/** An output folder that cannot be used as asked: other options, or not a demo folder. */
export class DemoDirError extends Error {
  override name = 'DemoDirError';
}

interface DemoState {
  fingerprint: string;
  options: Record<string, unknown>;
}

/** The options that differ between the folder's run and this one, as "name: old → new". */
function differences(before: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(now)])].filter((k) => k !== 'outputDir');
  const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));
  return keys.filter((k) => show(before[k]) !== show(now[k])).map((k) => `${k}: ${show(before[k])} → ${show(now[k])}`);
}

/**
 * Prepares `dir` for a run with these options. Returns true when it continues an earlier run of the same options.
 * A folder holding a run of other options, or files that are not a demo run, is refused unless `fresh` (and a
 * non-demo folder even then: it is never deleted).
 */
export function openDemoDir(dir: string, fingerprint: string, options: Record<string, unknown>, fresh: boolean): boolean {
  const statePath = join(dir, STATE_FILE);
  const entries = existsSync(dir) ? readdirSync(dir) : [];
  const isDemo = existsSync(statePath);
  if (entries.length > 0 && !isDemo) {
    throw new DemoDirError(`${dir} is not empty and holds no ${STATE_FILE}, so it is not a dpo demo folder (${entries.slice(0, 4).join(', ')}${entries.length > 4 ? ', …' : ''}); choose another --output-dir`);
  }
  if (isDemo && fresh) {
    rmSync(dir, { recursive: true, force: true });
  } else if (isDemo) {
    const state = readJsonFile(statePath) as DemoState;
    if (state.fingerprint !== fingerprint) {
      const diff = differences(state.options ?? {}, options);
      throw new DemoDirError(`${dir} holds a demo run with other options (${diff.length > 0 ? diff.join('; ') : 'the base model weights differ'}); ` +
        'rerun with the same options to continue it, pass --fresh to delete it and start clean, or choose another --output-dir');
    }
    return true;
  }
  mkdirSync(join(dir, STAGES_DIR), { recursive: true });
  writeFileAtomic(statePath, JSON.stringify({ fingerprint, options } satisfies DemoState, null, 2) + '\n');
  return false;
}

export interface StageRecord<T> {
  value: T;
  seconds: number;
  /** True when the stage had finished in an earlier run and was skipped. */
  cached: boolean;
}

/** Runs named stages once per folder: a finished stage's result is read back from its done-marker. */
export class Stages {
  /** Seconds per stage, of this run and the earlier ones (for summary.json). */
  readonly timings: Record<string, { seconds: number; cached: boolean }> = {};

  constructor(readonly dir: string, private readonly log: (line: string) => void) {
    mkdirSync(join(dir, STAGES_DIR), { recursive: true });
  }

  markerPath(name: string): string {
    return join(this.dir, STAGES_DIR, `${name}.json`);
  }

  isDone(name: string): boolean {
    return existsSync(this.markerPath(name));
  }

  /** The stage's result: computed by `work` (then recorded), or read from its marker when it already ran. */
  async run<T>(name: string, work: () => Promise<T> | T): Promise<StageRecord<T>> {
    const marker = this.markerPath(name);
    if (existsSync(marker)) {
      const done = readJsonFile(marker) as { value: T; seconds: number };
      this.timings[name] = { seconds: done.seconds, cached: true };
      this.log(`[demo] ${name}: done in an earlier run (${done.seconds.toFixed(1)} s), skipped`);
      return { value: done.value, seconds: done.seconds, cached: true };
    }
    this.log(`[demo] ${name} …`);
    const started = performance.now();
    const value = await work();
    const seconds = (performance.now() - started) / 1000;
    writeFileAtomic(marker, JSON.stringify({ value, seconds }) + '\n');
    this.timings[name] = { seconds, cached: false };
    this.log(`[demo] ${name}: ${seconds.toFixed(1)} s`);
    return { value, seconds, cached: false };
  }
}
