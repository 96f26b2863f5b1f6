// The HTML report of a run folder: `writeReport(runDir)` reads the run, renders one self-contained page (no network:
// styles, SVG charts and data inline) and writes RUN_DIR/report.html atomically. `dpo train` / `dpo demo` call it at
// their end; `dpo report` calls it on any run folder. The files it reads, all in RUN_DIR:
//
//  metrics.jsonl (required) one JSON object per line, each with an integer "step" ≥ 0 and any numeric metrics under
//      TRL's names: epoch, loss, grad_norm, learning_rate, rewards/{chosen,rejected,accuracies,margins},
//      logps/{chosen,rejected}, logits/{chosen,rejected}, num_tokens, tokens_per_second, peak_memory_mb; eval lines
//      use the same names prefixed "eval_" (eval_loss, eval_rewards/accuracies, …). Null or non-numeric values are
//      skipped; blank lines are ignored; any other bad line is an error naming metrics.jsonl:LINE.
//  training_args.json (optional) a JSON object: the effective config, shown as a table (nested objects as dotted
//      keys). An object under "machine" (keys as MachineInfo: dpo_ts_version, node, os, cpu, cores, backend, …)
//      is shown as the training machine beside the machine that generated the report.
//  frontier.json (optional) a JSON array of points {method: string ('dpo', 'sft', 'best_of_n', 'base', …),
//      kl: number, reward: number, beta?: number, n?: number, reward_se?: number, win_rate?: number, labels?: number,
//      pairs?: number (the judge labels a policy's training data spent and the pairs it kept)}. Drawn as reward
//      against KL(π‖π_ref), one line per method through its points in KL order, labelled β=… or n=… (a method's
//      lone point with its name too); the labels and pairs appear in the table and the tooltips.
//  token_rewards.jsonl (optional) one completion per line, {tokens: string[], rewards: number[], label?: string}
//      with one reward per token; `dpo token-rewards` rows {index, chosen: {tokens, rewards}, rejected: {…}} are also
//      read (two completions each; {index, dropped} lines are skipped). Drawn as token heatmaps.
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { renderReport } from './html.js';
import { machineInfo, type MachineInfo } from './machine.js';
import { readRunDir } from './run-dir.js';

export { readRunDir, RunDirError, METRICS_FILE, TRAINING_ARGS_FILE, FRONTIER_FILE, TOKEN_REWARDS_FILE } from './run-dir.js';
export type { RunData, MetricsRecord, FrontierPoint, TokenSequence } from './run-dir.js';
export { renderReport } from './html.js';
export { machineInfo, type MachineInfo } from './machine.js';
export { escapeHtml } from './escape.js';

export const REPORT_FILE = 'report.html';

export interface WriteReportOptions {
  /** Where to write the page; default RUN_DIR/report.html. */
  output?: string;
  /** Page title; default "DPO run report: <folder name>". */
  title?: string;
  /** The machine to record; default this one, now (machineInfo()). Tests pass a fixed one. */
  machine?: MachineInfo;
}

export interface WriteReportResult {
  /** The path written. */
  path: string;
  /** Which optional parts the page shows. */
  sections: { frontier: boolean; tokens: boolean; config: boolean };
  bytes: number;
}

/** Reads RUN_DIR, renders the report and writes it atomically. Throws RunDirError when RUN_DIR is not a valid run. */
export function writeReport(runDir: string, opts: WriteReportOptions = {}): WriteReportResult {
  const run = readRunDir(runDir);
  const html = renderReport(run, opts.machine ?? machineInfo(), { title: opts.title });
  const path = opts.output ?? join(runDir, REPORT_FILE);
  writeFileAtomic(path, html);
  return {
    path,
    sections: { frontier: run.frontier !== null, tokens: run.tokenSequences !== null, config: run.trainingArgs !== null },
    bytes: Buffer.byteLength(html),
  };
}
