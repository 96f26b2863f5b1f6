// `dpo winrate`: the win rate of a model A (--model) over a baseline B (--baseline) on prompt-only data under a judge
// (TRL's removed WinRateCallback and judges, as a command). Each model completes every prompt once (greedy unless
// sampling flags say otherwise), the judge compares the two completions in both orders, and the win rate with its 95%
// Wilson interval, the win/tie/loss/skip counts and the position consistency go to stderr as a table and to stdout as
// one JSON line (also --output FILE.json; --samples-out FILE.jsonl keeps every completion and verdict).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { currentBackend } from '../backends/index.js';
import { Rng } from '../engine/random.js';
import { describeWriteError, writeFileAtomic } from '../io/atomic.js';
import { generationDefaults, loadPretrained } from '../io/pretrained.js';
import { requireTokenizer } from '../io/tokenizer.js';
import { loadPrompts, type PromptItem } from '../online/prompts.js';
import { samplePolicy, type PolicySample } from '../online/sample.js';
import { compareCompletions, winRateSummary, type Comparison, type OrderHandling, type WinRateSummary } from '../online/winrate.js';
import { UsageError, usage, type FlagSpecs, type ParsedFlags } from './args.js';
import { CONFIG_FLAG, parseFlagsWithConfig } from './config.js';
import { judgeFlags, judgeFromFlags } from './judge-flags.js';

const flags = {
  model: { type: 'string', default: undefined, help: 'model A: the directory whose win rate is measured (config.json, *.safetensors, tokenizer.json)' },
  baseline: { type: 'string', default: undefined, help: 'model B: the directory A is compared against' },
  prompts: { type: 'string', default: undefined, help: 'prompt-only data (a "prompt" column): .jsonl, .json, .parquet, or a folder of them' },
  ...judgeFlags,
  // judgeFlags is typed as plain FlagSpecs; restating the number flags' type lets ParsedFlags type their values as numbers.
  'judge-timeout-ms': { ...judgeFlags['judge-timeout-ms'], type: 'number' },
  'judge-retries': { ...judgeFlags['judge-retries'], type: 'number' },
  'judge-concurrency': { ...judgeFlags['judge-concurrency'], type: 'number' },
  'max-new-tokens': { type: 'number', default: 64, help: 'new tokens per completion at most, the same for both models' },
  temperature: { type: 'number', default: undefined, help: '0 is greedy; > 0 samples (default 0; the models\' generation_config.json is not read, so both decode alike)' },
  'top-k': { type: 'number', default: undefined, help: 'sample among the k most likely tokens, 0 keeps all (alone, it implies --temperature 1)' },
  'top-p': { type: 'number', default: undefined, help: 'nucleus sampling probability (alone, it implies --temperature 1)' },
  seed: { type: 'number', default: 0, help: 'sampling seed (each model samples from a fresh stream with this seed)' },
  'batch-size': { type: 'number', default: 8, help: 'prompts per generate() call (does not change greedy results)' },
  'max-prompt-length': { type: 'number', default: undefined, help: 'keep at most this many prompt tokens, the last ones (default: all)' },
  output: { type: 'string', default: undefined, help: 'also write the summary JSON here (atomically)' },
  'samples-out': { type: 'string', default: undefined, help: 'write one JSONL line per prompt: both completions and the verdicts (atomically)' },
  config: CONFIG_FLAG,
} as const satisfies FlagSpecs;

const COMMAND = 'dpo winrate';
type Flags = ParsedFlags<typeof flags>;

interface Sampling {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  batchSize: number;
  maxPromptLength: number | null;
}

function samplingFromFlags(o: Flags): Sampling {
  const positive = ['max-new-tokens', 'batch-size', 'max-prompt-length'] as const;
  for (const name of positive) {
    const v = o[name] as number | undefined;
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1)) throw new UsageError(`${COMMAND}: --${name} must be a positive integer, got ${v}`);
  }
  const topK = (o['top-k'] as number | undefined) ?? 0;
  const topP = (o['top-p'] as number | undefined) ?? 1;
  if (!(Number.isSafeInteger(topK) && topK >= 0)) throw new UsageError(`${COMMAND}: --top-k must be an integer ≥ 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new UsageError(`${COMMAND}: --top-p must be in (0, 1], got ${topP}`);
  const filtered = o['top-k'] !== undefined || o['top-p'] !== undefined;
  const temperature = (o.temperature as number | undefined) ?? (filtered ? 1 : 0);
  if (!(temperature >= 0)) throw new UsageError(`${COMMAND}: --temperature must be ≥ 0, got ${temperature}`);
  if (!Number.isSafeInteger(o.seed)) throw new UsageError(`${COMMAND}: --seed must be an integer, got ${o.seed}`);
  return {
    maxNewTokens: o['max-new-tokens'], temperature, topK, topP, seed: o.seed, batchSize: o['batch-size'],
    maxPromptLength: (o['max-prompt-length'] as number | undefined) ?? null,
  };
}

interface SideSamples {
  items: PromptItem[];
  samples: PolicySample[];
}

/** Loads one model, tokenizes the prompts with its own tokenizer, completes each once, and frees the model. */
async function completeWith(dir: string, promptsPath: string, s: Sampling, label: string): Promise<SideSamples> {
  const loaded = loadPretrained(dir);
  try {
    const tokenizer = loaded.tokenizer ?? requireTokenizer(dir); // requireTokenizer throws the actionable error
    const items = await loadPrompts(promptsPath, tokenizer, { maxPromptLength: s.maxPromptLength });
    const longest = Math.max(...items.map((item) => item.ids.length));
    const room = loaded.model.maxPositions - longest;
    if (room < 1) {
      throw new UsageError(`${COMMAND}: a prompt of ${longest} tokens leaves no room in ${label} (${dir}, ${loaded.model.maxPositions} positions); pass --max-prompt-length ${Math.max(1, loaded.model.maxPositions - s.maxNewTokens)} or less`);
    }
    const maxNewTokens = Math.min(s.maxNewTokens, room); // the context bounds the completion (GPT-2 has 1024 positions)
    if (maxNewTokens < s.maxNewTokens) process.stderr.write(`${COMMAND}: ${label} completes in at most ${maxNewTokens} tokens (its ${loaded.model.maxPositions} positions minus a ${longest}-token prompt)\n`);
    const defaults = generationDefaults(loaded); // EOS and pad ids only: the sampling settings are the flags'
    const samples = samplePolicy(loaded.model, tokenizer, items, 1, {
      maxNewTokens, batchSize: s.batchSize, temperature: s.temperature, topK: s.topK, topP: s.topP, rng: new Rng(s.seed),
      eosTokenIds: eosIds(defaults.eosTokenIds), padTokenId: defaults.padTokenId ?? 0,
    }).map((perPrompt) => perPrompt[0]);
    return { items, samples };
  } finally {
    loaded.model.dispose();
  }
}

const eosIds = (ids: number | readonly number[] | undefined): number[] => (ids === undefined ? [] : typeof ids === 'number' ? [ids] : [...ids]);

function writeFile(path: string, text: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (e) {
    throw describeWriteError(dirname(path), e, 'create the directory');
  }
  writeFileAtomic(path, text);
}

/** The judges built here that already ask both A/B orders inside prefer() (scoring judges have no order at all). */
function orderHandling(o: Flags): OrderHandling {
  if (o['judge-url'] !== undefined) return 'judge-swaps'; // two requests per pair; a split comes back as a tie with confidence 0
  if (o['local-judge'] !== undefined) return 'judge-averages'; // one verdict from the two orders' averaged probabilities
  return 'ask-both';
}

const fixed = (x: number | null, digits = 3) => (x === null ? 'n/a' : x.toFixed(digits));

function humanTable(s: WinRateSummary, judge: string): string {
  const ci = s.ci === null ? 'n/a' : `[${fixed(s.ci[0])}, ${fixed(s.ci[1])}]`;
  return [
    `win rate of A over B  ${fixed(s.winRate)}  95% CI ${ci} (Wilson score, ties count ½)`,
    `  wins ${s.wins}  ties ${s.ties}  losses ${s.losses}  | judged ${s.judged} of ${s.comparisons}, skipped ${s.skipped}`,
    s.positionConsistency === null
      ? `  position consistency n/a (${s.judged === 0 ? 'nothing judged' : `judge ${judge} gives order-free verdicts`})`
      : `  position consistency ${fixed(s.positionConsistency)} of ${s.consistencyChecked} (${s.inconsistent} order disagreements counted as ties); judge ${judge}`,
  ].join('\n') + '\n';
}

export async function runWinrate(argv: readonly string[]): Promise<void> {
  const o = parseFlagsWithConfig(argv, flags, COMMAND);
  for (const name of ['model', 'baseline', 'prompts'] as const) {
    if (o[name] === undefined) throw new UsageError(`${COMMAND}: --${name} is required\n${usage(flags)}`);
  }
  const sampling = samplingFromFlags(o);
  const judge = await judgeFromFlags(o, COMMAND); // before generating: a bad judge flag or a missing key fails fast
  currentBackend(); // selects the backend before the first tensor

  const a = await completeWith(o.model, o.prompts, sampling, 'model A');
  const b = await completeWith(o.baseline, o.prompts, sampling, 'baseline B');
  if (a.items.length !== b.items.length) throw new Error(`${COMMAND}: ${a.items.length} prompts for model A but ${b.items.length} for baseline B from ${o.prompts}`);
  const pairs = a.items.map((item, i) => ({ prompt: item.text, a: a.samples[i].text, b: b.samples[i].text }));
  process.stderr.write(`${COMMAND}: ${pairs.length} prompts completed by both models; judging with ${judge.name}\n`);

  const outcomes = await compareCompletions(judge, pairs, {
    orders: orderHandling(o),
    // A live counter on a terminal only; a log file gets the table below.
    onProgress: process.stderr.isTTY ? (done, total) => process.stderr.write(`\r${COMMAND}: judged ${done}/${total}${done === total ? '\n' : ''}`) : undefined,
  });
  const summary = winRateSummary(outcomes);

  if (o['samples-out'] !== undefined) {
    writeFile(o['samples-out'], a.items.map((item, i) => sampleLine(item, a.samples[i], b.samples[i], outcomes[i])).join('\n') + '\n');
  }
  const result = {
    model: o.model, baseline: o.baseline, prompts: o.prompts, judge: judge.name,
    win_rate: summary.winRate, ci_low: summary.ci?.[0] ?? null, ci_high: summary.ci?.[1] ?? null, ci_level: 0.95, ci_method: 'wilson',
    wins: summary.wins, ties: summary.ties, losses: summary.losses, skipped: summary.skipped,
    judged: summary.judged, comparisons: summary.comparisons,
    position_consistency: summary.positionConsistency, order_disagreements: summary.inconsistent, orders: judge.score === undefined ? orderHandling(o) : 'scores',
    max_new_tokens: sampling.maxNewTokens, temperature: sampling.temperature, top_k: sampling.topK, top_p: sampling.topP,
    seed: sampling.seed,
  };
  if (o.output !== undefined) writeFile(o.output, JSON.stringify(result, null, 2) + '\n');
  process.stderr.write(humanTable(summary, judge.name));
  console.log(JSON.stringify(result));
}

/** One --samples-out line: the prompt, both completions and what the judge said. */
function sampleLine(item: PromptItem, a: PolicySample, b: PolicySample, outcome: Comparison): string {
  return JSON.stringify({
    index: item.index, source: item.source, prompt: item.text,
    completion_a: a.text, completion_b: b.text, eos_a: a.containsEos, eos_b: b.containsEos,
    result: outcome.result, consistent: outcome.consistent,
    ...(outcome.orders ? { orders: outcome.orders } : {}),
    ...(outcome.scores ? { score_a: outcome.scores[0], score_b: outcome.scores[1] } : {}),
    ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
  });
}
