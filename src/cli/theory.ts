// `dpo theory`: checks the seed's theory on exact small worlds (src/theory/) and prints each claim with its measured
// value, bound and PASS/FAIL, then the finite-data curve; --json prints one JSON object as the last line instead.
// Exits 1 if any claim fails.
import { parseFlags, UsageError, type FlagSpecs } from './args.js';
import { banditSettings, runTheory, tokenSettings, type TheoryReport } from '../theory/index.js';

const flags = {
  json: { type: 'boolean', default: false, help: 'print one JSON object (the report) instead of tables' },
  seed: { type: 'number', default: 0, help: 'seed for the random worlds (bandit rewards, π_ref, trees, sampled pairs)' },
} as const satisfies FlagSpecs;

const COMMAND = 'dpo theory';

export function runTheoryCommand(argv: readonly string[]): void {
  const o = parseFlags(argv, flags, COMMAND);
  if (!Number.isInteger(o.seed) || o.seed < 0) throw new UsageError(`${COMMAND}: --seed must be a non-negative integer, got ${o.seed}`);
  const started = performance.now();
  const report = runTheory(o.seed);
  const seconds = (performance.now() - started) / 1000;
  if (o.json) console.log(JSON.stringify({ ...report, seconds }));
  else console.log(formatReport(report, seconds));
  if (!report.pass) process.exitCode = 1;
}

const fmt = (v: number): string => (v === 0 ? '0' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toPrecision(4) : v.toExponential(2));

export function formatReport(report: TheoryReport, seconds: number): string {
  const b = banditSettings;
  const t = tokenSettings;
  const rows = report.claims.map((c) => [c.id, c.statement, fmt(c.value), `${c.relation} ${c.bound >= 1e-3 ? String(c.bound) : c.bound.toExponential(0)}`, c.pass ? 'PASS' : 'FAIL']);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length), ['claim', 'statement', 'measured', 'bound'][i].length));
  const line = (r: string[]) => `${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2].padStart(widths[2])}  ${r[3].padEnd(widths[3])}  ${r[4]}`;
  const table = (prefix: string) => rows.filter((r) => r[0].startsWith(prefix)).map(line);
  const failed = report.claims.filter((c) => !c.pass).map((c) => c.id);
  return [
    `dpo theory (seed ${report.seed})`,
    '',
    `(a) Bandit: ${b.responseCounts.length} prompts with ${b.responseCounts.join(', ')} responses; π_ref = softmax(N(0,1)), r ~ N(0,1);` +
      ` β ∈ {${b.betas.join(', ')}}; π_θ = softmax(log π_ref + θ). π* = π_ref·exp(r/β)/Z (DPO, arXiv 2305.18290).`,
    line(['claim', 'statement', 'measured', 'bound', '']),
    ...table('a.'),
    '',
    `(a.iii) DPO on N sampled BT-labelled pairs per prompt, ${b.sampledSeeds} seeds. Regulariser: ${report.regulariser}.`,
    `  ${'N'.padStart(6)}  ${'mean TV(π_N, π*)'.padStart(17)}  per seed`,
    ...report.curve.map((c) => `  ${String(c.pairsPerPrompt).padStart(6)}  ${fmt(c.meanTv).padStart(17)}  ${c.tvPerSeed.map(fmt).join('  ')}`),
    '',
    `(b) Token-level MDP: ${t.prompts} prefix trees of depth ${t.depth}, ${t.minTokens}–${t.maxTokens} tokens per state; r(s,a) ~ N(0,1),` +
      ` π_ref(·|s) = softmax(N(0,1)). Soft Q*, V* by backward induction (From r to Q*, arXiv 2404.12358).`,
    line(['claim', 'statement', 'measured', 'bound', '']),
    ...table('b.'),
    '',
    report.pass ? `all ${report.claims.length} claims hold (${seconds.toFixed(1)} s)` : `FAILED: ${failed.join(', ')} (${seconds.toFixed(1)} s)`,
  ].join('\n');
}
