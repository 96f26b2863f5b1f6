// `dpo bench train`: times DPO training steps on bench_torch.py's workload (dpo/bench-step.ts) and prints tokens/s,
// step times, model-FLOPs utilisation against a GEMM ceiling measured in the same run, peak memory and the loss, with
// one JSON object as the last line. --prefix-sharing and --padding-free run each batch in a packed layout, alone or
// together and with --precompute-ref-log-probs; --min-completion-len gives the completions random lengths. DPO_PROFILE=1 also wraps every backend kernel with a timer (engine untouched) and
// prints where a step's time goes by kernel category; the rest of the step is JS overhead.
import { currentBackend } from '../backends/index.js';
import { setNativeThreads } from '../backends/native.js';
import type { Backend } from '../engine/backend.js';
import { Rng } from '../engine/random.js';
import { memoryStats, resetPeakMemory } from '../engine/storage.js';
import { setBackend } from '../engine/tensor.js';
import { BenchRun, benchArchs, countParams, stepFlops, type BenchArch, type PhaseSeconds } from '../dpo/bench-step.js';
import { UsageError, parseFlags } from './args.js';

const flags = {
  arch: { type: 'string', default: 'gpt2', help: `architecture: ${benchArchs.join(' | ')}` },
  layers: { type: 'number', default: 4, help: 'L: transformer blocks' },
  heads: { type: 'number', default: 4, help: 'attention heads' },
  hidden: { type: 'number', default: 256, help: 'C: hidden size' },
  vocab: { type: 'number', default: 512, help: 'V: vocabulary size' },
  seq: { type: 'number', default: 128, help: 'T: tokens per sequence (also n_positions)' },
  pairs: { type: 'number', default: 4, help: 'P: preference pairs per step (2P sequences)' },
  'prompt-len': { type: 'number', default: 32, help: 'prompt tokens shared by chosen and rejected (not scored)' },
  steps: { type: 'number', default: 10, help: 'timed steps' },
  warmup: { type: 'number', default: 3, help: 'untimed steps before those' },
  batches: { type: 'number', default: 0, help: 'distinct random batches used in turn (0: one per step, as bench_torch)' },
  threads: { type: 'number', default: 0, help: 'threads for the native backend (0: DPO_NUM_THREADS or all cores)' },
  beta: { type: 'number', default: 0.1, help: 'DPO β' },
  lr: { type: 'number', default: 1e-4, help: 'AdamW learning rate (betas 0.9/0.999, eps 1e-8, no weight decay)' },
  seed: { type: 'number', default: 0, help: 'seed of the weights (batches use seed + 1)' },
  'precompute-ref-log-probs': { type: 'boolean', default: false, help: 'reference log-probs of every batch computed before timing; no reference forward in the step' },
  'prefix-sharing': { type: 'boolean', default: false, help: 'each pair runs as prompt | chosen | rejected, the prompt computed once (same log-probs)' },
  'padding-free': { type: 'boolean', default: false, help: 'several sequences (or pairs, with --prefix-sharing) per row, no padding between them' },
  'min-completion-len': { type: 'number', default: 0, help: 'completions get random lengths in [this, seq − prompt-len] (0: all seq − prompt-len, as bench_torch)' },
  'gemm-size': { type: 'number', default: 1024, help: 'M = N = K of the GEMM whose rate is measured as a ceiling' },
  'gemm-ceiling-gflops': { type: 'number', default: 0, help: 'MFU ceiling in GFLOP/s (e.g. numpy\'s); 0: our own GEMM measured at --gemm-size' },
} as const;

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The backend's fp32 GEMM rate at size³ (median of a few calls after warm-up), in GFLOP/s. */
function gemmGflops(be: Backend, size: number): number {
  const rng = new Rng(0);
  const a = Float32Array.from({ length: size * size }, () => rng.normal());
  const b = Float32Array.from({ length: size * size }, () => rng.normal());
  const c = new Float32Array(size * size);
  const call = () => {
    const t = performance.now();
    be.matmul(c, a, b, 1, size, size, size, false, false, 0, 0, 0, false);
    return (performance.now() - t) / 1e3;
  };
  const slow = be.name === 'reference';
  for (let i = 0; i < (slow ? 1 : 3); i++) call();
  const seconds = median(Array.from({ length: slow ? 3 : 10 }, call));
  return (2 * size ** 3) / seconds / 1e9;
}

// ------------------------------------------------------------------------------------------------ DPO_PROFILE=1
type Kernel = Exclude<keyof Backend, 'name' | 'threads'>;
const categories = ['GEMM (blocks)', 'GEMM (LM head)', 'attention', 'norms', 'log-softmax-gather', 'elementwise', 'reductions', 'memory movement', 'rope', 'optimizer'] as const;
type Category = (typeof categories)[number];

/** Every kernel's category (a mapped type: a kernel added to Backend without one here does not compile). */
const kernelCategory: { readonly [K in Kernel]: Category } = {
  fill: 'memory movement', stridedCopy: 'memory movement', stridedAccumulate: 'memory movement', gatherRows: 'memory movement', scatterAddRows: 'memory movement',
  unary: 'elementwise', unaryBackward: 'elementwise', binary: 'elementwise', where: 'elementwise', affine: 'elementwise',
  reduceSum: 'reductions', reduceMax: 'reductions',
  matmul: 'GEMM (blocks)', linear: 'GEMM (blocks)',
  softmax: 'elementwise', softmaxBackward: 'elementwise', logSoftmax: 'log-softmax-gather', logSoftmaxBackward: 'log-softmax-gather',
  layerNorm: 'norms', layerNormBackward: 'norms', rmsNorm: 'norms', rmsNormBackward: 'norms',
  logSoftmaxGather: 'log-softmax-gather', logSoftmaxGatherBackward: 'log-softmax-gather',
  attention: 'attention', attentionBackward: 'attention', rope: 'rope', adamw: 'optimizer',
};

interface CategoryTotals { ms: number; calls: number; flop: number }
interface Profile { backend: Backend; totals: Map<Category, CategoryTotals>; gemmShapes: Map<string, CategoryTotals>; reset(): void }

/**
 * A backend whose kernels add their wall time to per-category totals, and GEMMs and attention their FLOPs. A GEMM with V
 * among its dimensions counts as the LM head (a heuristic: exact when no block dimension equals V, as at the shapes in
 * docs/performance.md).
 */
function profiledBackend(be: Backend, vocab: number): Profile {
  const totals = new Map<Category, CategoryTotals>();
  const gemmShapes = new Map<string, CategoryTotals>(); // by kernel, M×N×K and transposes
  const reset = () => {
    for (const c of categories) totals.set(c, { ms: 0, calls: 0, flop: 0 });
    gemmShapes.clear();
  };
  reset();
  const wrapped: Backend = Object.create(be);
  for (const kernel of Object.keys(kernelCategory) as Kernel[]) {
    const run = be[kernel] as (...args: unknown[]) => void;
    const timed = (...args: unknown[]) => {
      const t = performance.now();
      run.apply(be, args);
      const ms = performance.now() - t;
      let category = kernelCategory[kernel];
      let flop = 0;
      let gemm = '';
      if (kernel === 'matmul') {
        const [batch, m, n, k, transA, transB] = args.slice(3, 9) as number[];
        flop = 2 * batch * m * n * k;
        if (m === vocab || n === vocab || k === vocab) category = 'GEMM (LM head)';
        gemm = `matmul ${batch > 1 ? `${batch}× ` : ''}${m}×${n}×${k}${transA ? ' Aᵀ' : ''}${transB ? ' Bᵀ' : ''}`;
      } else if (kernel === 'linear') {
        const [rows, cin, cout] = args.slice(4, 7) as number[];
        flop = 2 * rows * cin * cout;
        if (cout === vocab) category = 'GEMM (LM head)';
        gemm = `linear ${rows}×${cout}×${cin}${args[3] ? ' +bias' : ''}`;
      } else if (kernel === 'attention' || kernel === 'attentionBackward') {
        // Useful causal FLOPs: q·kᵀ and p·v cost 4·D per visible (query, key) pair; the backward twice that.
        const [b, tq, tk, h, , d] = args.slice(kernel === 'attention' ? 6 : 8) as number[];
        const pairs = tq * (tk - tq) + (tq * (tq + 1)) / 2;
        flop = (kernel === 'attention' ? 4 : 8) * b * h * d * pairs;
      }
      const entry = totals.get(category)!;
      entry.ms += ms;
      entry.calls++;
      entry.flop += flop;
      if (gemm) {
        const g = gemmShapes.get(gemm) ?? { ms: 0, calls: 0, flop: 0 };
        gemmShapes.set(gemm, { ms: g.ms + ms, calls: g.calls + 1, flop: g.flop + flop });
      }
    };
    Object.defineProperty(wrapped, kernel, { value: timed });
  }
  return { backend: wrapped, totals, gemmShapes, reset };
}

/** Per-step milliseconds by category, the unaccounted rest as JS overhead, the costliest GEMM shapes, and terminal lines. */
function profileReport(p: Profile, steps: number, stepMs: number): { lines: string[]; json: Record<string, unknown> } {
  const rows = categories.map((c) => ({ c, ...p.totals.get(c)! })).filter((r) => r.calls > 0).sort((a, b) => b.ms - a.ms);
  const kernelMs = rows.reduce((s, r) => s + r.ms, 0) / steps;
  const lines = ['profile (mean of the timed steps):', '  category             ms/step   share   calls/step  GFLOP/s'];
  const json: Record<string, unknown> = {};
  for (const r of rows) {
    const ms = r.ms / steps;
    const gflops = r.flop > 0 ? r.flop / (r.ms / 1e3) / 1e9 : null;
    lines.push(`  ${r.c.padEnd(20)} ${ms.toFixed(1).padStart(8)} ${(100 * ms / stepMs).toFixed(1).padStart(6)}%  ${(r.calls / steps).toFixed(0).padStart(10)}  ${gflops === null ? '' : gflops.toFixed(1).padStart(7)}`);
    json[r.c] = { ms: round(ms, 2), share: round(ms / stepMs, 4), calls: Math.round(r.calls / steps), ...(gflops === null ? {} : { gflops: round(gflops, 1) }) };
  }
  const other = stepMs - kernelMs;
  lines.push(`  ${'JS overhead (rest)'.padEnd(20)} ${other.toFixed(1).padStart(8)} ${(100 * other / stepMs).toFixed(1).padStart(6)}%`);
  json['JS overhead'] = { ms: round(other, 2), share: round(other / stepMs, 4) };
  lines.push('  costliest GEMM shapes (M×N×K):               ms/step   calls/step  GFLOP/s');
  for (const [shape, g] of [...p.gemmShapes].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8)) {
    lines.push(`    ${shape.padEnd(40)} ${(g.ms / steps).toFixed(1).padStart(8)}  ${(g.calls / steps).toFixed(0).padStart(10)}  ${(g.flop / (g.ms / 1e3) / 1e9).toFixed(1).padStart(7)}`);
  }
  return { lines, json };
}

// ------------------------------------------------------------------------------------------------ the command
export function benchTrain(argv: readonly string[]): void {
  const o = parseFlags(argv, flags, 'dpo bench train');
  const fail = (msg: string) => { throw new UsageError(`dpo bench train: ${msg}`); };
  if (!(benchArchs as readonly string[]).includes(o.arch)) fail(`--arch must be one of ${benchArchs.join(', ')}, got '${o.arch}'`);
  for (const k of ['layers', 'heads', 'hidden', 'vocab', 'seq', 'pairs', 'steps', 'prompt-len', 'gemm-size'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) fail(`--${k} must be an integer ≥ 1, got ${o[k]}`);
  }
  for (const k of ['warmup', 'batches', 'threads', 'min-completion-len'] as const) if (!Number.isInteger(o[k]) || o[k] < 0) fail(`--${k} must be an integer ≥ 0, got ${o[k]}`);
  if (o['prompt-len'] >= o.seq) fail(`--prompt-len (${o['prompt-len']}) must be below --seq (${o.seq}) so that each sequence has a completion`);
  if (o['min-completion-len'] > o.seq - o['prompt-len']) fail(`--min-completion-len (${o['min-completion-len']}) must be at most --seq − --prompt-len (${o.seq - o['prompt-len']})`);
  if (o.hidden % o.heads !== 0) fail(`--hidden (${o.hidden}) must be a multiple of --heads (${o.heads})`);
  if (!(o['gemm-ceiling-gflops'] >= 0)) fail(`--gemm-ceiling-gflops must be ≥ 0, got ${o['gemm-ceiling-gflops']}`);

  const be = currentBackend();
  if (o.threads > 0) setNativeThreads(o.threads);
  const gemmNative = gemmGflops(be, o['gemm-size']);
  const ceiling = o['gemm-ceiling-gflops'] > 0 ? o['gemm-ceiling-gflops'] : gemmNative;
  const profile = process.env.DPO_PROFILE === '1' ? profiledBackend(be, o.vocab) : null;
  if (profile) setBackend(profile.backend);

  const total = o.warmup + o.steps;
  const shape = {
    arch: o.arch as BenchArch, layers: o.layers, heads: o.heads, hidden: o.hidden, vocab: o.vocab, seq: o.seq, pairs: o.pairs, promptLen: o['prompt-len'],
    minCompletionLen: o['min-completion-len'] || o.seq - o['prompt-len'],
  };
  const layout = { prefixSharing: o['prefix-sharing'], paddingFree: o['padding-free'] };
  const run = new BenchRun({ ...shape, beta: o.beta, lr: o.lr, seed: o.seed, batches: o.batches || total, precomputeRefLogProbs: o['precompute-ref-log-probs'], layout });
  const params = countParams(run.policy);
  const flops = stepFlops(shape, params, run.liveReference, run.batches);
  // Real tokens of the 2P sequences (2·P·T at fixed lengths), and the tokens the forward runs, padding included.
  const meanOver = (f: (i: number) => number) => run.batches.reduce((sum, _, i) => sum + f(i), 0) / run.batches.length;
  const tokens = meanOver((i) => run.batches[i].attentionMask.reduce((sum, m) => sum + m, 0));
  const forwardTokens = meanOver((i) => {
    const laid = run.laidOut(run.batches[i]);
    return 'segments' in laid ? laid.rows * laid.T : 2 * laid.B * laid.T;
  });
  const levers = [layout.prefixSharing && 'prefix sharing', layout.paddingFree && 'padding-free'].filter(Boolean).join(' + ') || 'padded';
  console.log(`dpo bench train: ${o.arch} L${o.layers} H${o.heads} C${o.hidden} V${o.vocab} T${o.seq} P${o.pairs}, ${params.total} params, ${tokens} policy tokens/step `
    + `(${forwardTokens} run, ${levers}), ${be.name} backend, ${be.threads} threads, reference ${run.liveReference ? 'live' : `precomputed in ${round(run.precomputeSeconds)} s`}`);

  resetPeakMemory();
  const losses: number[] = [];
  const timed: PhaseSeconds[] = [];
  for (let i = 0; i < total; i++) {
    if (i === o.warmup) profile?.reset();
    const r = run.step(i);
    losses.push(r.loss);
    if (i >= o.warmup) timed.push(r.seconds);
    console.log(`step ${i}${i < o.warmup ? ' (warm-up)' : ''}: loss ${r.loss.toFixed(6)}, ${r.seconds.total.toFixed(3)} s`);
  }
  const peakLiveMb = memoryStats().peakLiveBytes / 2 ** 20;
  run.dispose();
  if (profile) setBackend(be);

  const stepS = median(timed.map((s) => s.total));
  const phase = (k: keyof PhaseSeconds) => round(median(timed.map((s) => s[k])), 4);
  const stepMean = timed.reduce((s, t) => s + t.total, 0) / timed.length;
  // Shares are of the mean step, as the kernel totals are sums over all timed steps.
  const report = profile ? profileReport(profile, o.steps, stepMean * 1e3) : null;
  if (report) for (const line of report.lines) console.log(line);
  console.log(JSON.stringify({
    bench: 'train', arch: o.arch, backend: be.name, threads: be.threads,
    layers: o.layers, heads: o.heads, hidden: o.hidden, vocab: o.vocab, seq: o.seq, pairs: o.pairs, prompt_len: o['prompt-len'],
    min_completion_len: shape.minCompletionLen, prefix_sharing: layout.prefixSharing, padding_free: layout.paddingFree,
    steps: o.steps, warmup: o.warmup, batches: run.batches.length, beta: o.beta, lr: o.lr, seed: o.seed,
    reference: run.liveReference ? 'live' : 'precomputed', ref_precompute_s: round(run.precomputeSeconds, 4),
    prompt_logits: false, // the LM head runs at completion positions only (dpo/logps), always
    params: params.total, block_matmul_params: params.blockMatmul, head_params: params.head,
    tokens_per_step: tokens, forward_tokens_per_step: forwardTokens, tokens_per_s: round(tokens / stepS, 1),
    step_s_median: round(stepS, 4), step_s_mean: round(stepMean, 4),
    step_s_min: round(Math.min(...timed.map((s) => s.total)), 4),
    phase_s_median: { reference: phase('reference'), policy_forward: phase('policyForward'), backward: phase('backward'), optimizer: phase('optimizer') },
    flops_per_step: flops.perStep, model_gflops_per_s: round(flops.perStep / stepS / 1e9, 2),
    gemm_ceiling_gflops: round(ceiling, 2), gemm_ceiling_source: o['gemm-ceiling-gflops'] > 0 ? 'flag' : `${be.name} GEMM ${o['gemm-size']}³`,
    gemm_native_gflops: round(gemmNative, 2), mfu: round(flops.perStep / stepS / 1e9 / ceiling, 4),
    peak_memory_mb: round(process.resourceUsage().maxRSS / 1024, 1), engine_peak_live_mb: round(peakLiveMb, 1),
    loss_first: losses[0], loss_last: losses[losses.length - 1], losses,
    ...(report ? { profile: report.json } : {}),
  }));
}
