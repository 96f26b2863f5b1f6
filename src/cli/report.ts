// `dpo report RUN_DIR [--output FILE]`: writes the run's self-contained HTML report (curves, reward–KL frontier,
// token heatmaps, config, machine) to RUN_DIR/report.html or FILE, atomically, and prints {"file", "bytes"}.
// A folder that is not a run is an error saying what is missing. The work is report/index.ts's writeReport.
import { writeReport } from '../report/index.js';
import { parseFlags, UsageError, usage, type FlagSpecs } from './args.js';

const flags = {
  output: { type: 'string', default: undefined, help: 'where to write the HTML file (default RUN_DIR/report.html)' },
} as const satisfies FlagSpecs;

const COMMAND = 'dpo report';

export function runReport(argv: readonly string[]): void {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`usage: ${COMMAND} RUN_DIR [--output FILE]\n${usage(flags)}`);
    return;
  }
  // RUN_DIR is the one argument that is not a flag or a flag's value.
  const i = argv.findIndex((a, k) => !a.startsWith('--') && !(k > 0 && argv[k - 1] === '--output'));
  if (i < 0) throw new UsageError(`${COMMAND}: give the run folder: ${COMMAND} RUN_DIR [--output FILE]`);
  const runDir = argv[i];
  const o = parseFlags([...argv.slice(0, i), ...argv.slice(i + 1)], flags, COMMAND);
  const result = writeReport(runDir, { output: o.output });
  console.log(JSON.stringify({ file: result.path, bytes: result.bytes, ...result.sections }));
}
