// The `dpo` command: dispatches a subcommand to the library. Each subcommand parses its flags and calls typed
// functions; nothing here computes anything itself.
import { UsageError } from './args.js';
import { benchForward } from './bench-forward.js';
import { benchGemm } from './bench-gemm.js';
import { benchOps } from './bench-ops.js';
import { runDemoCommand } from './demo.js';
import { benchTrain } from './bench-train.js';
import { runEval } from './eval.js';
import { runGenerate } from './generate.js';
import { runInspect } from './inspect.js';
import { runIterateCommand } from './iterate.js';
import { runOnline } from './online.js';
import { runRsoCommand } from './rso.js';
import { runWinrate } from './winrate.js';
import { runTheoryCommand } from './theory.js';
import { runReport } from './report.js';
import { runTokenRewards } from './token-rewards.js';
import { runSft, runTrain } from './train.js';
import { currentBackend } from '../backends/index.js';

const commands: Record<string, { help: string; run: (argv: readonly string[]) => void | Promise<void> }> = {
  'bench gemm': { help: 'fp32 GEMM GFLOP/s on the active backend: --m --n --k --threads', run: benchGemm },
  'bench ops': { help: 'each fused kernel against its composition: ms, speed-up and GB/s', run: benchOps },
  'bench forward': { help: 'GPT-2 forward tokens/s, and generation tokens/s with and without the KV cache', run: benchForward },
  'bench train': { help: 'DPO training step tokens/s and MFU on bench_torch.py\'s workload: --layers --heads --hidden --vocab --seq --pairs', run: benchTrain },
  generate: { help: 'continue a prompt with a model directory, streaming the text: --model --prompt [--chat]', run: runGenerate },
  inspect: { help: 'architecture, parameters, weight dtype, vocabulary and special tokens of a model directory', run: runInspect },
  train: { help: 'DPO training (TRL options): --model --dataset --output-dir [--ref-model] [--loss-type] [--config FILE.json]', run: runTrain },
  sft: { help: 'supervised fine-tuning on prompt/completion, messages or text data: --model --dataset --output-dir', run: runSft },
  iterate: { help: 'iterative DPO / pairwise Cringe: sample K per prompt, judge, pair best vs worst, train; per round: --model --prompts --output-dir --rounds --loss-type', run: runIterateCommand },
  eval: { help: 'TRL eval metrics of a model on preference data: --model --dataset --output-dir [--ref-model] [--loss-type]', run: runEval },
  'token-rewards': { help: 'per-token log-probs and rewards β·(log π − log π_ref): --model --ref-model --dataset --output-dir', run: runTokenRewards },
  report: { help: 'the self-contained HTML report of a run folder: RUN_DIR [--output FILE]', run: runReport },
  online: { help: 'online DPO with AI feedback (OAIF): sample 2 completions per prompt, judge, DPO step: --model --dataset PROMPTS --output-dir + a judge', run: runOnline },
  winrate: { help: 'win rate of --model over --baseline on --prompts under a judge (both orders, Wilson 95% CI) [--output FILE.json]', run: runWinrate },
  rso: { help: 'statistical rejection sampling (RSO): N samples per prompt, judge, keep ≤ k towards π*, pairs, train: --model --dataset PROMPTS --output-dir + a judge', run: runRsoCommand },
  demo: { help: 'the embedded controlled-sentiment experiment (no downloads, a few minutes): DPO vs SFT vs best-of-N [--output-dir] [--quick]', run: runDemoCommand },
  theory: { help: 'check DPO theory on exact small worlds (bandit, token MDP): [--json] [--seed S]; exit 1 if a claim fails', run: runTheoryCommand },
  info: { help: 'the active backend and its thread count', run: () => console.log(JSON.stringify({ backend: currentBackend().name, threads: currentBackend().threads })) },
};

function help(): string {
  return ['usage: dpo <command> [flags]', '', 'commands:', ...Object.entries(commands).map(([k, c]) => `  ${k.padEnd(14)} ${c.help}`),
    '', 'Environment: DPO_BACKEND=native|reference, DPO_NUM_THREADS=N.'].join('\n');
}

async function main(argv: string[]): Promise<void> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(help());
    return;
  }
  const two = argv.slice(0, 2).join(' ');
  const key = commands[two] ? two : argv[0];
  const cmd = commands[key];
  if (!cmd) throw new UsageError(`dpo: unknown command '${argv.slice(0, 2).join(' ')}'\n\n${help()}`);
  await cmd.run(argv.slice(key.split(' ').length));
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`${err instanceof UsageError ? '' : err.name + ': '}${err.message}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
