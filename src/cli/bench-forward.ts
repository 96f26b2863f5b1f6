// `dpo bench forward`: forward tokens/s of a GPT-2 with random weights (GPT-2-small shape by default: 12 layers,
// 768 hidden, 12 heads, vocab 50257, 512 tokens), and greedy generation tokens/s with and without the KV cache
// (without it, every step recomputes the whole sequence). Progress lines, then one JSON object as the last line.
import { currentBackend } from '../backends/index.js';
import { setNativeThreads } from '../backends/native.js';
import { Rng } from '../engine/random.js';
import { noGrad, scope, tensor } from '../engine/tensor.js';
import { generate } from '../models/generate.js';
import { createModelFromHFConfig } from '../models/index.js';
import { UsageError, parseFlags } from './args.js';

const flags = {
  layers: { type: 'number', default: 12, help: 'n_layer' },
  hidden: { type: 'number', default: 768, help: 'n_embd' },
  heads: { type: 'number', default: 12, help: 'n_head' },
  vocab: { type: 'number', default: 50257, help: 'vocab_size' },
  seq: { type: 'number', default: 512, help: 'tokens per forward' },
  batch: { type: 'number', default: 1, help: 'rows per forward' },
  repeats: { type: 'number', default: 3, help: 'timed forwards (the median is reported)' },
  'prompt-tokens': { type: 'number', default: 32, help: 'prompt length for the generation timings' },
  'new-tokens': { type: 'number', default: 32, help: 'tokens generated in the generation timings' },
  threads: { type: 'number', default: 0, help: 'threads for the native backend (0: DPO_NUM_THREADS or all cores)' },
} as const;

function seconds(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

export function benchForward(argv: readonly string[]): void {
  const o = parseFlags(argv, flags, 'dpo bench forward');
  for (const k of ['layers', 'hidden', 'heads', 'vocab', 'seq', 'batch', 'repeats', 'prompt-tokens', 'new-tokens'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new UsageError(`dpo bench forward: --${k} must be an integer ≥ 1, got ${o[k]}`);
  }
  const be = currentBackend(); // selects the backend before the first tensor
  if (o.threads > 0) setNativeThreads(o.threads);
  const positions = Math.max(o.seq, o['prompt-tokens'] + o['new-tokens']);
  const model = createModelFromHFConfig(
    { model_type: 'gpt2', n_layer: o.layers, n_embd: o.hidden, n_head: o.heads, vocab_size: o.vocab, n_positions: positions },
    new Rng(0),
    'dpo bench forward',
  );
  const rng = new Rng(1);
  const randomIds = (n: number) => Array.from({ length: n }, () => rng.int(o.vocab));
  const { batch: b, seq: t, hidden: c, layers: l, vocab: v } = o;

  // Forward: hidden states and the full (B, T, V) logits, as a training step's forward computes them.
  const ids = randomIds(b * t);
  const forward = () => scope(() => noGrad(() => { model.logits(model.forward(tensor(ids, [b, t], 'int32'))); }));
  forward(); // warm-up: pools buffers, spins up threads
  const times = Array.from({ length: o.repeats }, () => seconds(forward)).sort((x, y) => x - y);
  const forwardS = times[Math.floor(times.length / 2)];
  // FLOPs: 2 per weight per token in the blocks (12·C² per layer) and the head (V·C), plus causal attention
  // (q·kᵀ and p·v over ~T/2 keys each: 2·T·C per token per layer).
  const flop = b * t * (2 * (12 * l * c * c + v * c) + 2 * l * t * c);
  console.log(`forward: ${b}×${t} tokens in ${round(forwardS * 1e3)} ms, ${round((b * t) / forwardS, 1)} tokens/s, ${round(flop / forwardS / 1e9)} GFLOP/s`);

  // Generation: one prompt, greedy, a fixed number of tokens (no EOS), with and without the KV cache.
  const prompt = randomIds(o['prompt-tokens']);
  const n = o['new-tokens'];
  const genRate = (useCache: boolean) => n / seconds(() => generate(model, [prompt], { maxNewTokens: n, useCache }));
  genRate(true); // warm-up
  const cached = genRate(true);
  const uncached = genRate(false);
  console.log(`generate: ${round(cached, 1)} tokens/s with the KV cache, ${round(uncached, 1)} without (${o['prompt-tokens']}-token prompt, ${n} new tokens)`);
  model.dispose();

  console.log(JSON.stringify({
    bench: 'forward', backend: be.name, threads: be.threads,
    layers: l, hidden: c, heads: o.heads, vocab: v, batch: b, seq: t,
    forward_ms: round(forwardS * 1e3), forward_tokens_per_s: round((b * t) / forwardS, 1), forward_gflops: round(flop / forwardS / 1e9),
    prompt_tokens: o['prompt-tokens'], new_tokens: n,
    generate_tokens_per_s_cache: round(cached, 1), generate_tokens_per_s_no_cache: round(uncached, 1), cache_speedup: round(cached / uncached),
  }));
}
