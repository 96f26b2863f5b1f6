// The report page: one self-contained HTML string (inline CSS and SVG, the data inline as JSON, no scripts to run and
// nothing fetched) with summary tiles, training curves, the reward–KL frontier, token heatmaps, the config and the
// machine. Pure: run data in, HTML out. Not here: reading the run (run-dir.ts) or writing the file (index.ts).
import { frontierChart, formatValue, lineChart, PALETTE, type Series } from './charts.js';
import { escapeHtml, jsonForScript } from './escape.js';
import { tokenHeatmap } from './heatmap.js';
import type { MachineInfo } from './machine.js';
import type { MetricsRecord, RunData } from './run-dir.js';
import { isJsonObject, type JsonObject } from '../io/json.js';
import { REPORT_CSS } from './style.js';

/** One curve of a chart: a metrics.jsonl key and its legend name; eval curves are dashed. */
interface CurveSpec { key: string; name: string; color: string; eval?: boolean }
interface ChartSpec { title: string; yLabel: string; curves: CurveSpec[]; yDomain?: [number, number] }

const [BLUE, ORANGE, GREEN, PINK] = PALETTE;
/** A metric's train curve and its eval_ twin; names are short so the legend fits on one line. */
const trainEval = (key: string, color: string, name?: string): CurveSpec[] => [
  { key, name: name ?? 'train', color },
  { key: `eval_${key}`, name: name ? `${name} (eval)` : 'eval', color, eval: true },
];

/** The training curves, in page order; a chart whose keys were never logged is left out. */
const CHARTS: ChartSpec[] = [
  { title: 'Loss', yLabel: 'loss', curves: trainEval('loss', BLUE) },
  { title: 'Implicit rewards β·log π/π_ref', yLabel: 'reward', curves: [...trainEval('rewards/chosen', GREEN, 'chosen'), ...trainEval('rewards/rejected', ORANGE, 'rejected')] },
  { title: 'Reward accuracy (chosen > rejected)', yLabel: 'accuracy', yDomain: [0, 1], curves: trainEval('rewards/accuracies', BLUE) },
  { title: 'Reward margin (chosen − rejected)', yLabel: 'margin', curves: trainEval('rewards/margins', PINK) },
  { title: 'Sequence log-probs under π', yLabel: 'log π(y | x)', curves: [...trainEval('logps/chosen', GREEN, 'chosen'), ...trainEval('logps/rejected', ORANGE, 'rejected')] },
  { title: 'Learning rate', yLabel: 'learning rate', curves: [{ key: 'learning_rate', name: 'learning rate', color: BLUE }] },
  { title: 'Gradient norm (before clipping)', yLabel: 'grad norm', curves: [{ key: 'grad_norm', name: 'grad norm', color: PINK }] },
  { title: 'Throughput', yLabel: 'tokens / s', curves: [{ key: 'tokens_per_second', name: 'tokens/s', color: GREEN }] },
  { title: 'Peak memory', yLabel: 'MB', curves: [{ key: 'peak_memory_mb', name: 'process', color: ORANGE }, { key: 'peak_tensor_memory_mb', name: 'tensors', color: BLUE }] },
];

function series(metrics: readonly MetricsRecord[], key: string): [number, number][] {
  return metrics.filter((r) => r.values[key] !== undefined).map((r) => [r.step, r.values[key]]);
}

function lastValue(metrics: readonly MetricsRecord[], key: string): number | undefined {
  for (let i = metrics.length - 1; i >= 0; i--) if (metrics[i].values[key] !== undefined) return metrics[i].values[key];
  return undefined;
}

function curvesSection(metrics: readonly MetricsRecord[]): string {
  if (metrics.length === 0) return `<p class="muted">metrics.jsonl has no records yet: the run stopped before its first logging step.</p>`;
  const steps = metrics.map((r) => r.step);
  const [first, last] = [Math.min(...steps), Math.max(...steps)];
  const xDomain: [number, number] = first === last ? [Math.max(0, first - 1), last + 1] : [first, last]; // no negative steps
  const charts = CHARTS.map((c) => {
    const s: Series[] = c.curves.map((k) => ({ name: k.name, color: k.color, dashed: k.eval, points: series(metrics, k.key) }));
    if (s.every((x) => x.points.length === 0)) return '';
    return `<figure class="card">${lineChart({ title: c.title, xLabel: 'step', yLabel: c.yLabel, series: s, xDomain, yDomain: c.yDomain })}</figure>`;
  }).filter((x) => x !== '');
  return charts.length ? `<div class="grid">${charts.join('\n')}</div>` : `<p class="muted">No plottable metrics were logged.</p>`;
}

/** Headline numbers: the last logged value of the metrics a reader looks at first. */
function summaryTiles(metrics: readonly MetricsRecord[]): string {
  const tiles: [string, number | undefined][] = [
    ['steps', metrics.length ? Math.max(...metrics.map((r) => r.step)) : undefined],
    ['epoch', lastValue(metrics, 'epoch')],
    ['loss', lastValue(metrics, 'loss')],
    ['eval loss', lastValue(metrics, 'eval_loss')],
    ['accuracy', lastValue(metrics, 'rewards/accuracies')],
    ['eval accuracy', lastValue(metrics, 'eval_rewards/accuracies')],
    ['margin', lastValue(metrics, 'rewards/margins')],
    ['tokens', lastValue(metrics, 'num_tokens')],
    ['tokens / s', lastValue(metrics, 'tokens_per_second')],
  ];
  return `<div class="tiles">${tiles.filter(([, v]) => v !== undefined)
    .map(([k, v]) => `<div class="tile"><div class="tile-value">${escapeHtml(formatValue(v!))}</div><div class="tile-label">${escapeHtml(k)}</div></div>`).join('')}</div>`;
}

/** Every metric's last logged value and the step it was logged at, in first-logged order. */
function finalMetricsTable(metrics: readonly MetricsRecord[]): string {
  const last = new Map<string, { step: number; value: number }>();
  for (const r of metrics) for (const [k, v] of Object.entries(r.values)) last.set(k, { step: r.step, value: v });
  if (last.size === 0) return '';
  const rows = [...last].map(([k, { step, value }]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(formatValue(value))}</td><td class="muted">${step}</td></tr>`);
  return `<details><summary>Last value of every metric (${last.size})</summary><table class="kv"><thead><tr><th>metric</th><th>value</th><th>step</th></tr></thead><tbody>${rows.join('')}</tbody></table></details>`;
}

function frontierSection(run: RunData): string {
  if (!run.frontier) return '';
  if (run.frontier.length === 0) return section('frontier', 'Reward–KL frontier', `<p class="muted">frontier.json has no points.</p>`);
  const budget = run.frontier.some((p) => p.labels !== undefined || p.pairs !== undefined); // columns only when some point has them
  const rows = run.frontier.map((p) => `<tr><td>${escapeHtml(p.method)}</td>${[p.beta, p.n, p.kl, p.reward, p.reward_se, p.win_rate, ...(budget ? [p.labels, p.pairs] : [])]
    .map((v) => `<td>${v === undefined ? '' : escapeHtml(formatValue(v))}</td>`).join('')}</tr>`);
  const table = `<table class="kv frontier"><thead><tr><th>method</th><th>β</th><th>n</th><th>KL</th><th>reward</th><th>± s.e.</th><th>win rate</th>${budget ? '<th>labels</th><th>pairs</th>' : ''}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
  const chart = frontierChart({ title: 'Reward against KL from the reference', points: run.frontier });
  return section('frontier', 'Reward–KL frontier', `<div class="grid"><figure class="card">${chart}</figure><div class="card scroll">${table}</div></div>`
    + `<p class="muted">Up and to the left is better: more reward for less divergence from π_ref. Error bars are ±1 standard error.</p>`);
}

function heatmapSection(run: RunData): string {
  if (!run.tokenSequences) return '';
  const body = run.tokenSequences.length ? tokenHeatmap(run.tokenSequences) : `<p class="muted">token_rewards.jsonl has no scored sequences.</p>`;
  return section('tokens', 'Per-token rewards', `<div class="card heatmap">${body}</div>`);
}

/** Nested objects become dotted keys; strings show as they are; other values as JSON. */
function flatten(obj: JsonObject, prefix = ''): [string, string][] {
  return Object.entries(obj).flatMap(([k, v]): [string, string][] => isJsonObject(v) && Object.keys(v).length > 0
    ? flatten(v, `${prefix}${k}.`)
    : [[prefix + k, typeof v === 'string' ? v : JSON.stringify(v) ?? 'undefined']]);
}

function configSection(run: RunData): string {
  if (!run.trainingArgs) return section('config', 'Configuration', `<p class="muted">This run has no training_args.json.</p>`);
  const { machine: _machine, ...args } = run.trainingArgs;
  const rows = flatten(args).map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`);
  const half = rows.length > 12 ? Math.ceil(rows.length / 2) : rows.length; // long configs in two columns, read down
  const tables = [rows.slice(0, half), rows.slice(half)].filter((r) => r.length).map((r) => `<table class="kv config">${r.join('')}</table>`);
  return section('config', 'Configuration', `<div class="card columns">${tables.join('')}</div>`);
}

function machineSection(machine: MachineInfo, run: RunData): string {
  const trained = run.trainingArgs && isJsonObject(run.trainingArgs.machine) ? run.trainingArgs.machine : null;
  const keys = [...new Set([...Object.keys(machine), ...(trained ? Object.keys(trained) : [])])];
  const generated: Record<string, unknown> = { ...machine };
  const cell = (v: unknown) => `<td>${v === undefined ? '' : escapeHtml(typeof v === 'string' ? v : JSON.stringify(v))}</td>`;
  const head = trained ? `<thead><tr><th></th><th>report generated on</th><th>trained on</th></tr></thead>` : '';
  const rows = keys.map((k) => `<tr><th>${escapeHtml(k)}</th>${cell(generated[k])}${trained ? cell(trained[k]) : ''}</tr>`);
  return section('machine', 'Machine and versions', `<div class="card scroll"><table class="kv">${head}<tbody>${rows.join('')}</tbody></table></div>`);
}

function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${escapeHtml(title)}</h2>${body}</section>`;
}

export interface RenderOptions {
  /** Page title; default "DPO run report: <folder name>". */
  title?: string;
}

/** The whole report page for `run`. */
export function renderReport(run: RunData, machine: MachineInfo, opts: RenderOptions = {}): string {
  const name = run.dir.replace(/[\\/]+$/, '').split(/[\\/]/).pop() || run.dir;
  const title = opts.title ?? `DPO run report: ${name}`;
  const nav = [['curves', 'Curves'], ...(run.frontier ? [['frontier', 'Frontier']] : []), ...(run.tokenSequences ? [['tokens', 'Tokens']] : []),
    ['config', 'Config'], ['machine', 'Machine']].map(([id, label]) => `<a href="#${id}">${label}</a>`).join('');
  const data = { metrics: run.metrics.map((r) => ({ step: r.step, ...r.values })), frontier: run.frontier, training_args: run.trainingArgs, machine };
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1>
<p class="muted">${escapeHtml(run.dir)} · generated ${escapeHtml(machine.generated_at)} by dpo-ts ${escapeHtml(machine.dpo_ts_version)}</p>
<nav>${nav}</nav>${summaryTiles(run.metrics)}</header>
<main>
${section('curves', 'Training curves', curvesSection(run.metrics) + finalMetricsTable(run.metrics))}
${frontierSection(run)}
${heatmapSection(run)}
${configSection(run)}
${machineSection(machine, run)}
</main>
<footer class="muted">Read from ${escapeHtml(run.filesRead.join(', '))}. The data behind the charts is embedded below as JSON (element #run-data).</footer>
<script type="application/json" id="run-data">${jsonForScript(data)}</script>
</body>
</html>
`;
}
