// `dpo bench gemm`: times the active backend's fp32 GEMM, C (M, N) = A (M, K) · B (K, N), and prints GFLOP/s as one
// JSON object on the last line. The median of `repeats` timed calls, after warm-up calls.
import { currentBackend } from '../backends/index.js';
import { setNativeThreads } from '../backends/native.js';
import { Rng } from '../engine/random.js';
import { parseFlags } from './args.js';

const flags = {
  m: { type: 'number', default: 1024, help: 'rows of A and C' },
  n: { type: 'number', default: 1024, help: 'columns of B and C' },
  k: { type: 'number', default: 1024, help: 'columns of A, rows of B' },
  threads: { type: 'number', default: 0, help: 'threads for the native backend (0: DPO_NUM_THREADS or all cores)' },
  repeats: { type: 'number', default: 20, help: 'timed calls (the median is reported)' },
  'trans-a': { type: 'boolean', default: false, help: 'A is stored (K, M)' },
  'trans-b': { type: 'boolean', default: false, help: 'B is stored (N, K)' },
} as const;

export function benchGemm(argv: readonly string[]): void {
  const o = parseFlags(argv, flags, 'dpo bench gemm');
  if (o.threads > 0) setNativeThreads(o.threads);
  const be = currentBackend();
  const rng = new Rng(0);
  const fillRandom = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const a = fillRandom(o.m * o.k);
  const b = fillRandom(o.k * o.n);
  const c = new Float32Array(o.m * o.n);
  const call = () => be.matmul(c, a, b, 1, o.m, o.n, o.k, o['trans-a'], o['trans-b'], 0, 0, 0, false);
  const flop = 2 * o.m * o.n * o.k;
  const warm = be.name === 'reference' ? 1 : 3;
  for (let i = 0; i < warm; i++) call();
  const repeats = be.name === 'reference' ? Math.min(o.repeats, 3) : o.repeats;
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = process.hrtime.bigint();
    call();
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  times.sort((x, y) => x - y);
  const med = times[Math.floor(times.length / 2)];
  console.log(JSON.stringify({
    gflops: Math.round((flop / med / 1e9) * 100) / 100, m: o.m, n: o.n, k: o.k, threads: be.threads,
    backend: be.name, trans_a: o['trans-a'], trans_b: o['trans-b'], median_ms: Math.round(med * 1e5) / 100,
  }));
}
