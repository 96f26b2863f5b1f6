// Per-kernel, per-shape profile of `dpo bench train` steps (dev tool, not shipped): wraps every Backend kernel with a
// timer keyed by kernel name and its size arguments, runs warm-up + timed steps of dpo/bench-step.ts's BenchRun, and
// prints ms/step per (kernel, shape), sorted, plus the unaccounted rest. Finer than DPO_PROFILE=1's categories.
// Run: npx tsc -p . && node dev/profile/step-kernels.mjs [L H C V T P steps warmup threads]
// REPLAY=1: every matmul/linear call is run a second time right away into a scratch output (operands now hot in
// cache, the pool awake), timed apart: the gap between a call and its replay is what the step's context costs it.
import { currentBackend } from '../../dist/src/backends/index.js';
import { setNativeThreads } from '../../dist/src/backends/native.js';
import { setBackend } from '../../dist/src/engine/tensor.js';
import { BenchRun } from '../../dist/src/dpo/bench-step.js';

const [L = 4, H = 4, C = 256, V = 512, T = 128, P = 4, steps = 8, warmup = 2, threads = 2] = process.argv.slice(2).map(Number);
const be = currentBackend();
setNativeThreads(threads);
const stats = new Map(); // key -> { ms, calls, replayMs }
const replay = process.env.REPLAY === '1';
const scratches = new Map(); // output length -> scratch array for replays
const wrapped = Object.create(be);
const dims = (name, args) => {
  const num = args.filter((a) => typeof a === 'number' || typeof a === 'boolean' || typeof a === 'string' || Array.isArray(a));
  const lens = args.filter((a) => ArrayBuffer.isView(a)).map((a) => a.length);
  return `${name}(${num.map((a) => Array.isArray(a) ? `[${a}]` : String(a)).join(',')}) len=${lens[0] ?? ''}`;
};
for (const k of Object.keys(be).concat(Object.getOwnPropertyNames(Object.getPrototypeOf(be)))) {
  if (k === 'name' || k === 'threads' || k === 'constructor' || typeof be[k] !== 'function') continue;
  const run = be[k];
  Object.defineProperty(wrapped, k, { value: (...args) => {
    const t = performance.now();
    run.apply(be, args);
    const ms = performance.now() - t;
    const key = k === 'adamw' ? `adamw len=${args[0].length}` : dims(k, args);
    const s = stats.get(key) ?? { ms: 0, calls: 0, replayMs: 0 };
    s.ms += ms; s.calls++;
    if (replay && (k === 'matmul' || k === 'linear')) {
      let scratch = scratches.get(args[0].length); // reused: a fresh array would add page faults to the replay
      if (!scratch) scratches.set(args[0].length, (scratch = new Float32Array(args[0].length)));
      if (k === 'matmul' && args[12]) scratch.set(args[0]); // accumulate: same input values
      const t2 = performance.now();
      run.apply(be, [scratch, ...args.slice(1)]);
      s.replayMs += performance.now() - t2;
    }
    stats.set(key, s);
  } });
}
setBackend(wrapped);
const run = new BenchRun({ arch: 'gpt2', layers: L, heads: H, hidden: C, vocab: V, seq: T, pairs: P, promptLen: 32, beta: 0.1, lr: 1e-4, seed: 0, batches: steps + warmup, precomputeRefLogProbs: false, layout: { prefixSharing: false, paddingFree: false } });
let total = 0;
for (let i = 0; i < steps + warmup; i++) {
  if (i === warmup) stats.clear();
  const r = run.step(i);
  if (i >= warmup) total += r.seconds.total * 1e3;
}
const stepMs = total / steps;
const rows = [...stats].map(([k, s]) => ({ k, ms: s.ms / steps, calls: s.calls / steps, replay: s.replayMs / steps })).sort((a, b) => b.ms - a.ms);
const kernelMs = rows.reduce((s, r) => s + r.ms, 0);
const replayMs = rows.reduce((s, r) => s + r.replay, 0);
console.log(`step ${stepMs.toFixed(1)} ms (mean of ${steps}), kernels ${kernelMs.toFixed(1)} ms, rest ${(stepMs - kernelMs - replayMs).toFixed(1)} ms`
  + (replay ? ` (replays ${replayMs.toFixed(1)} ms excluded)` : ''));
for (const r of rows) {
  console.log(`${r.ms.toFixed(2).padStart(8)} ms ${(100 * r.ms / (stepMs - replayMs)).toFixed(1).padStart(5)}% ${String(r.calls).padStart(4)}x  ${r.k}`
    + (r.replay > 0 ? `   replay ${r.replay.toFixed(2)} ms (in step / replay ${(r.ms / r.replay).toFixed(2)})` : ''));
}
