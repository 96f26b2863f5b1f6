// `dpo demo`: the embedded controlled-sentiment experiment (src/demo/). Parses the flags into DemoOptions, runs or
// continues the demo in --output-dir, prints the summary table and the report's path, and as its last line one JSON
// object (output_dir, best β, points). Option errors exit with status 2. --no-X flags switch stage X off.
import { currentBackend } from '../backends/index.js';
import { DemoDirError } from '../demo/stages.js';
import { DemoOptionsError, defaultDemoOptions, quickPreset, type DemoOptions } from '../demo/options.js';
import { runDemo } from '../demo/run.js';
import { parseFlags, UsageError, type FlagSpecs, type ParsedFlags } from './args.js';

const d = defaultDemoOptions;
// Option flags have no parsed default: an absent flag leaves the option to --quick's preset or to defaultDemoOptions.
const num = (help: string, value: unknown) => ({ type: 'number' as const, default: undefined, help: `${help} (default ${String(value)})` });
const str = (help: string, value: unknown) => ({ type: 'string' as const, default: undefined, help: `${help} (default ${String(value)})` });
const flags = {
  'output-dir': { type: 'string', default: undefined, help: 'where everything goes; the same folder again continues an interrupted run (default runs/demo-<time>)' },
  fresh: { type: 'boolean', default: false, help: 'delete an earlier demo run in --output-dir and start clean' },
  quick: { type: 'boolean', default: false, help: 'a seconds-long run: few prompts, one β, two steps (smoke test)' },
  'retrain-base': { type: 'boolean', default: false, help: 'pretrain the base model on the generated corpus first (into OUTPUT/base, ~3 min) instead of using assets/demo/base' },
  'base-model': str('use this base model directory instead of the committed one', 'assets/demo/base'),
  'pretrain-reviews': num('corpus size for --retrain-base', d.pretrainReviews),
  seed: num('seed of the prompt split, the sampling and the trainer', d.seed),
  'train-prompts': num('training prompts (two base samples each; tied pairs are dropped)', d.trainPrompts),
  'eval-prompts': num('held-out prompts for the evaluation', d.evalPrompts),
  'samples-per-prompt': num('samples per held-out prompt and policy', d.samplesPerPrompt),
  'best-of-n': str('best-of-N sizes of the baseline, comma-separated', d.bestOfN.join(',')),
  'max-new-tokens': num('new tokens per completion at most', d.maxNewTokens),
  beta: str('DPO β values, comma-separated: one run each', d.betas.join(',')),
  'num-train-epochs': num('passes over the pairs per run', d.epochs),
  'max-steps': num('optimizer steps per run (-1: from the epochs)', d.maxSteps),
  'learning-rate': num('DPO learning rate (AdamW)', d.learningRate),
  'sft-learning-rate': num('learning rate of SFT on the chosen completions', d.sftLearningRate),
  'per-device-train-batch-size': num('pairs per optimizer step', d.batchSize),
  'heatmap-samples': num('token heatmaps of the best DPO policy in the report', d.heatmapSamples),
  'no-online-dpo': { type: 'boolean', default: false, help: 'skip online DPO (OAIF with the AFINN judge at the offline pairs\' number of judge labels)' },
  'no-rso': { type: 'boolean', default: false, help: 'skip DPO on RSO\'s rejection-sampled pairs' },
  'no-on-policy': { type: 'boolean', default: false, help: 'skip both: only the offline DPO runs, SFT and the baselines' },
  'on-policy-beta': num('β of online DPO and of DPO on RSO\'s pairs; one of --beta', 'the middle --beta'),
  'rso-candidates': num('RSO: base samples per training prompt, two of them accepted', d.rsoCandidates),
  'rso-beta': num('RSO: β_rso of the rejection sampler', 'the on-policy β'),
} as const satisfies FlagSpecs;

const COMMAND = 'dpo demo';

const numbers = (flag: string, text: string | undefined): number[] | undefined => {
  if (text === undefined) return undefined;
  const values = text.split(',').map((v) => Number(v.trim()));
  if (values.some((v) => !Number.isFinite(v))) throw new UsageError(`${COMMAND}: --${flag} must be comma-separated numbers, got '${text}'`);
  return values;
};

/** The options the flags ask for: --quick's preset first, then every flag given. */
export function parseDemoArgs(argv: readonly string[]): { options: Partial<DemoOptions> & Pick<DemoOptions, 'outputDir'>; fresh: boolean } {
  const f: Partial<ParsedFlags<typeof flags>> = parseFlags(argv, flags, COMMAND);
  const given: Partial<DemoOptions> = {
    baseModel: f['base-model'], pretrainReviews: f['pretrain-reviews'], seed: f.seed, trainPrompts: f['train-prompts'],
    evalPrompts: f['eval-prompts'], samplesPerPrompt: f['samples-per-prompt'], bestOfN: numbers('best-of-n', f['best-of-n']),
    maxNewTokens: f['max-new-tokens'], betas: numbers('beta', f.beta), epochs: f['num-train-epochs'], maxSteps: f['max-steps'],
    learningRate: f['learning-rate'], sftLearningRate: f['sft-learning-rate'], batchSize: f['per-device-train-batch-size'],
    heatmapSamples: f['heatmap-samples'], retrainBase: f['retrain-base'],
    onlineDpo: f['no-online-dpo'] || f['no-on-policy'] ? false : undefined, rso: f['no-rso'] || f['no-on-policy'] ? false : undefined,
    onPolicyBeta: f['on-policy-beta'], rsoCandidates: f['rso-candidates'], rsoBeta: f['rso-beta'],
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const outputDir = f['output-dir'] ?? `runs/demo-${stamp}`;
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  return { options: { ...(f.quick ? quickPreset : {}), ...defined, outputDir }, fresh: f.fresh ?? false };
}

export async function runDemoCommand(argv: readonly string[]): Promise<void> {
  const { options, fresh } = parseDemoArgs(argv);
  const backend = currentBackend();
  process.stderr.write(`[demo] backend ${backend.name}, ${backend.threads} thread(s); output in ${options.outputDir}\n`);
  try {
    const result = await runDemo(options, { fresh });
    console.log(result.text);
    console.log(`report: ${result.outputDir}/report.html (${result.seconds.toFixed(0)} s${result.stagesRun.length === 0 ? ', every stage was already done' : ''})`);
    console.log(JSON.stringify({ output_dir: result.outputDir, best_beta: result.bestBeta, seconds: result.seconds, points: result.evaluations }));
  } catch (e) {
    if (e instanceof DemoDirError || e instanceof DemoOptionsError) throw new UsageError(e.message);
    throw e;
  }
}
