// `dpo token-rewards`: for each preference pair, every completion token's text, log π, log π_ref and reward
// β·(log π − log π_ref), written to OUT/token_rewards.jsonl (one line per input record, in input order; a dropped
// record's line says why), atomically. Takes the data flags of `dpo eval` (and --config); --ref-model is required.
import { computeTokenRewards } from '../dpo/token-rewards.js';
import { defaultLossOptions } from '../dpo/losses/index.js';
import { UsageError, usage, type FlagSpecs } from './args.js';
import { parseFlagsWithConfig } from './config.js';
import { dataFlags, loadReference, perExampleLines, prepareEvalData, writeOutput } from './eval.js';

const flags = {
  ...dataFlags,
  'ref-model': { type: 'string', default: undefined, help: 'reference model directory' },
  beta: { type: 'number', default: defaultLossOptions.beta, help: 'β: rewards are β·(log π − log π_ref)' },
} as const satisfies FlagSpecs;

const COMMAND = 'dpo token-rewards';
export const TOKEN_REWARDS_FILE = 'token_rewards.jsonl';

export async function runTokenRewards(argv: readonly string[]): Promise<void> {
  const o = parseFlagsWithConfig(argv, flags, COMMAND);
  if (o['ref-model'] === undefined) throw new UsageError(`${COMMAND}: --ref-model DIR is required\n${usage(flags)}`);
  if (!(o.beta > 0)) throw new UsageError(`${COMMAND}: --beta must be > 0, got ${o.beta}`);
  const data = await prepareEvalData(o, COMMAND, flags);
  const ref = loadReference(o['ref-model'], data.policy, COMMAND);
  process.stderr.write(`${data.summaryLine}\n`);
  try {
    const tokenizer = data.policy.tokenizer;
    const rows = computeTokenRewards({
      model: data.policy.model,
      refModel: ref.model,
      examples: data.examples,
      beta: o.beta,
      batchSize: o['per-device-eval-batch-size'],
      padTokenId: data.padTokenId,
      // A model's vocabulary may be padded past the tokenizer's; such ids have no text.
      decode: tokenizer ? (id) => (tokenizer.idToToken(id) === null ? '' : tokenizer.decode([id], { cleanUpTokenizationSpaces: false })) : undefined,
    });
    const path = writeOutput(o['output-dir'], TOKEN_REWARDS_FILE, perExampleLines(rows, data.dropped, data.records));
    console.log(JSON.stringify({ file: path, examples: rows.length, dropped: data.dropped.size }));
  } finally {
    data.policy.model.dispose();
    ref.model.dispose();
  }
}
