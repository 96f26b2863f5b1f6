// `dpo bench ops`: times each fused kernel against its composition from primitives (composites.ts), forward alone and
// forward + backward, and reports the fused forward's memory throughput in GB/s (bytes it must read and write).
// One JSON object per op, then a summary object as the last line.
import { currentBackend } from '../backends/index.js';
import { setNativeThreads } from '../backends/native.js';
import {
  Rng, Tensor, add, adamwUpdate, addScalar, attention, attentionComposed, backward, div, gelu, geluComposed, layerNorm,
  layerNormComposed, linear, logSoftmax, logSoftmaxComposed, logSoftmaxGather, logSoftmaxGatherComposed, matmul,
  noGrad, randn, rmsNorm, rmsNormComposed, scale, scope, silu, siluComposed, softmax, softmaxComposed, sqrt, square,
  sum, tensor, zeros,
} from '../engine/index.js';
import { parseFlags } from './args.js';

const flags = {
  threads: { type: 'number', default: 0, help: 'threads for the native backend (0: DPO_NUM_THREADS or all cores)' },
  repeats: { type: 'number', default: 5, help: 'timed runs per measurement (the median is reported)' },
  scale: { type: 'number', default: 1, help: 'multiplies the row counts of every shape (use < 1 on the reference backend)' },
  only: { type: 'string', default: '', help: 'comma-separated op names to run' },
} as const;

interface OpCase {
  name: string;
  shape: string;
  /** Bytes the fused forward must move at minimum (inputs read + outputs written). */
  bytes: number;
  inputs: () => Tensor[];
  fused: (...xs: Tensor[]) => Tensor;
  composed: (...xs: Tensor[]) => Tensor;
}

function medianMs(repeats: number, fn: () => void): number {
  fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function cases(s: number): OpCase[] {
  const rng = new Rng(0);
  const rows = (n: number) => Math.max(1, Math.round(n * s));
  const r = (shape: number[]) => randn(shape, rng);
  const R = rows(4096);
  const [B, T, H, D] = [Math.max(1, Math.round(4 * s)), 128, 12, 64];
  const N = rows(512);
  const V = 50257;
  const targets = tensor(Array.from({ length: N }, (_, i) => (i * 7919) % V), [N], 'int32');
  return [
    { name: 'softmax', shape: `${R}x512`, bytes: 2 * R * 512 * 4, inputs: () => [r([R, 512])], fused: softmax, composed: softmaxComposed },
    { name: 'logSoftmax', shape: `${R}x512`, bytes: 2 * R * 512 * 4, inputs: () => [r([R, 512])], fused: logSoftmax, composed: logSoftmaxComposed },
    { name: 'layerNorm', shape: `${R}x768`, bytes: 2 * R * 768 * 4, inputs: () => [r([R, 768]), r([768]), r([768])], fused: (x, w, b) => layerNorm(x, w, b), composed: (x, w, b) => layerNormComposed(x, w, b) },
    { name: 'rmsNorm', shape: `${R}x768`, bytes: 2 * R * 768 * 4, inputs: () => [r([R, 768]), r([768])], fused: (x, w) => rmsNorm(x, w), composed: (x, w) => rmsNormComposed(x, w) },
    { name: 'gelu', shape: `${R}x3072`, bytes: 2 * R * 3072 * 4, inputs: () => [r([R, 3072])], fused: gelu, composed: geluComposed },
    { name: 'silu', shape: `${R}x3072`, bytes: 2 * R * 3072 * 4, inputs: () => [r([R, 3072])], fused: silu, composed: siluComposed },
    { name: 'linear+bias', shape: `${R}x768·768x768`, bytes: (2 * R * 768 + 768 * 768) * 4, inputs: () => [r([R, 768]), r([768, 768]), r([768])], fused: (x, w, b) => linear(x, w, b), composed: (x, w, b) => add(matmul(x, w, { transB: true }), b) },
    { name: 'attention', shape: `B${B} T${T} H${H} D${D}`, bytes: (4 * B * T * H * D + B * H * T * T) * 4, inputs: () => [r([B, T, H, D]), r([B, T, H, D]), r([B, T, H, D])], fused: (q, k, v) => attention(q, k, v), composed: (q, k, v) => attentionComposed(q, k, v) },
    { name: 'logSoftmaxGather', shape: `${N}x${V}`, bytes: N * V * 4, inputs: () => [r([N, V])], fused: (x) => logSoftmaxGather(x, targets), composed: (x) => logSoftmaxGatherComposed(x, targets) },
  ];
}

export function benchOps(argv: readonly string[]): void {
  const o = parseFlags(argv, flags, 'dpo bench ops');
  if (o.threads > 0) setNativeThreads(o.threads);
  const be = currentBackend();
  const only = o.only ? new Set(o.only.split(',')) : null;
  const results: Record<string, number | string>[] = [];
  for (const c of cases(o.scale)) {
    if (only && !only.has(c.name)) continue;
    const xs = c.inputs();
    const forward = (f: (...xs: Tensor[]) => Tensor) => medianMs(o.repeats, () => scope(() => { noGrad(() => f(...xs)); }));
    const train = (f: (...xs: Tensor[]) => Tensor) => medianMs(o.repeats, () => scope(() => {
      const leaves = xs.map((x) => x.detach().requireGrad());
      backward(sum(f(...leaves)));
      leaves.forEach((l) => l.grad?.dispose());
    }));
    const fusedFwd = forward(c.fused);
    const composedFwd = forward(c.composed);
    const fusedTrain = train(c.fused);
    const composedTrain = train(c.composed);
    const row = {
      op: c.name, shape: c.shape,
      fused_fwd_ms: round(fusedFwd), composed_fwd_ms: round(composedFwd), fwd_speedup: round(composedFwd / fusedFwd),
      fused_fwd_bwd_ms: round(fusedTrain), composed_fwd_bwd_ms: round(composedTrain), fwd_bwd_speedup: round(composedTrain / fusedTrain),
      fused_fwd_gbps: round(c.bytes / (fusedFwd / 1e3) / 1e9),
    };
    results.push(row);
    console.log(JSON.stringify(row));
    xs.forEach((x) => x.dispose());
  }
  if (!only || only.has('adamw')) results.push(benchAdamw(o.repeats, Math.max(1, Math.round(10_000_000 * o.scale))));
  console.log(JSON.stringify({ backend: be.name, threads: be.threads, ops: results.length, results }));
}

// AdamW: the fused in-place kernel against the same update written with elementwise ops.
function benchAdamw(repeats: number, n: number): Record<string, number | string> {
  const rng = new Rng(1);
  const [p, g] = [randn([n], rng), randn([n], rng)];
  const [m, v] = [zeros([n]), zeros([n])];
  const h = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1 };
  const fused = medianMs(repeats, () => adamwUpdate(p, g, m, v, h));
  const composed = medianMs(repeats, () => scope(() => noGrad(() => {
    const m2 = add(scale(m, h.beta1), scale(g, 1 - h.beta1));
    const v2 = add(scale(v, h.beta2), scale(square(g), 1 - h.beta2));
    const upd = div(scale(m2, 1 / (1 - h.beta1)), addScalar(sqrt(scale(v2, 1 / (1 - h.beta2))), h.eps));
    return add(scale(p, 1 - h.lr * h.weightDecay), scale(upd, -h.lr));
  })));
  const row = { op: 'adamw', shape: `${n}`, fused_ms: round(fused), composed_ms: round(composed), speedup: round(composed / fused), fused_gbps: round((7 * n * 4) / (fused / 1e3) / 1e9) };
  console.log(JSON.stringify(row));
  return row;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
