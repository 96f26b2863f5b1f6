// The judge flags shared by `dpo online`, `dpo rso`, `dpo iterate` and `dpo winrate`, and the Judge they build. Exactly
// one kind is chosen: --reward-fn FILE (a JS module), --reward-model DIR (an HF *ForSequenceClassification
// checkpoint), --judge-url URL (a pairwise LLM judge over an OpenAI-compatible endpoint) or --local-judge DIR (a dpo-ts
// causal LM prompted to compare, offline). The API key is read from the variable --judge-api-key-env names.
import { readFileSync } from 'node:fs';
import { httpPairwiseJudge } from '../online/http-judge.js';
import { loadRewardFunction, rewardFunctionJudge, type Judge } from '../online/judges.js';
import { localPairwiseJudge } from '../online/local-judge.js';
import { rewardModelJudge } from '../online/reward-model-judge.js';
import { UsageError, type FlagSpec } from './args.js';

const str = (help: string, value?: string): FlagSpec => ({ type: 'string', default: value, help });
const num = (help: string, value: number): FlagSpec => ({ type: 'number', default: value, help });

export const judgeFlags = {
  'reward-fn': str('judge: a .js/.mjs module exporting (prompt, completion) => number (default export or `reward`)'),
  'reward-model': str('judge: an HF GPT2/Llama/Qwen2ForSequenceClassification directory (score at the last non-pad token)'),
  'judge-url': str('judge: an OpenAI-compatible chat-completions URL (pairwise; both A/B orders are asked)'),
  'judge-model': str('the model name sent to --judge-url'),
  'judge-api-key-env': str('name of the environment variable holding the --judge-url API key (never logged)', 'OPENAI_API_KEY'),
  'judge-template': str('a text file with the pairwise prompt template ({prompt}, {a}, {b}); --judge-url and --local-judge'),
  'judge-timeout-ms': num('per-request timeout of --judge-url', 60000),
  'judge-retries': num('extra attempts per --judge-url request before the pair is skipped', 3),
  'judge-concurrency': num('most --judge-url requests in flight', 4),
  'local-judge': str('judge: a dpo-ts model directory prompted to answer A or B; reads the two answer tokens\' log-probs (offline)'),
} satisfies Record<string, FlagSpec>;

type NumberFlag = 'judge-timeout-ms' | 'judge-retries' | 'judge-concurrency';
export type JudgeFlagValues = { [K in NumberFlag]: number } & { [K in Exclude<keyof typeof judgeFlags, NumberFlag>]: string | undefined };

/** The judge the flags name; a usage error when none or several kinds are given. */
export async function judgeFromFlags(f: JudgeFlagValues, command: string): Promise<Judge> {
  const given = (['reward-fn', 'reward-model', 'judge-url', 'local-judge'] as const).filter((k) => f[k] !== undefined);
  if (given.length !== 1) {
    throw new UsageError(`${command}: give exactly one judge: --reward-fn FILE, --reward-model DIR, --judge-url URL (with --judge-model) or --local-judge DIR` +
      (given.length > 1 ? `; got ${given.map((k) => `--${k}`).join(' and ')}` : ''));
  }
  const template = f['judge-template'] === undefined ? undefined : readFileSync(f['judge-template'], 'utf8');
  switch (given[0]) {
    case 'reward-fn': {
      const path = f['reward-fn']!;
      return rewardFunctionJudge(await loadRewardFunction(path), path);
    }
    case 'judge-url': {
      if (f['judge-model'] === undefined) throw new UsageError(`${command}: --judge-url needs --judge-model (the model name the endpoint serves)`);
      return httpPairwiseJudge({
        url: f['judge-url']!, model: f['judge-model'], apiKeyEnv: f['judge-api-key-env']!, template,
        timeoutMs: f['judge-timeout-ms'], retries: f['judge-retries'], concurrency: f['judge-concurrency'], backoffMs: 500,
      });
    }
    case 'reward-model':
      return rewardModelJudge(f['reward-model']!);
    case 'local-judge':
      return localPairwiseJudge(f['local-judge']!, { template });
  }
}
