// Interleaved A/B of the layout levers on `dpo bench train`'s workload, in one process: every configuration takes
// one step in turn, so machine load (a shared 2-core VM) hits all of them alike; back-to-back CLI runs swing 2–3×.
// Prints, per configuration, the median and minimum step time and the median's ratio to the first configuration.
// Usage (after `npx tsc -p .`): node dev/levers/ab.mjs [--steps 20] [--min-completion-len 16 --batches 1] [--pre]
import '../../dist/src/index.js'; // selects the backend (native when built)
import { setNativeThreads } from '../../dist/src/backends/native.js';
import { BenchRun } from '../../dist/src/dpo/bench-step.js';

const argv = process.argv.slice(2);
const flag = (name, fallback) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : fallback);
const steps = Number(flag('steps', '20'));
const warmup = 3;
const pre = argv.includes('--pre');
const shape = {
  arch: flag('arch', 'gpt2'), layers: 4, heads: 4, hidden: 256, vocab: 512, seq: 128, pairs: 4, promptLen: 32,
  minCompletionLen: Number(flag('min-completion-len', '96')),
};
setNativeThreads(Number(flag('threads', '2')));
const layouts = [
  ['padded', { prefixSharing: false, paddingFree: false }],
  ['prefix sharing', { prefixSharing: true, paddingFree: false }],
  ['padding-free', { prefixSharing: false, paddingFree: true }],
  ['both', { prefixSharing: true, paddingFree: true }],
];
const batches = Number(flag('batches', String(warmup + steps)));
const runs = layouts.map(([name, layout]) => ({
  name, run: new BenchRun({ ...shape, beta: 0.1, lr: 1e-4, seed: 0, batches, precomputeRefLogProbs: pre, layout }), times: [],
}));
for (let i = 0; i < warmup + steps; i++) {
  for (const r of runs) {
    const s = r.run.step(i);
    if (i >= warmup) r.times.push(s.seconds.total);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(runs[0].times);
console.log(`${shape.arch}, completions ${shape.minCompletionLen}–96, ${batches} batches, reference ${pre ? 'precomputed' : 'live'}, ${steps} interleaved steps each`);
for (const r of runs) {
  const m = median(r.times);
  console.log(`${r.name.padEnd(16)} median ${m.toFixed(4)} s  min ${Math.min(...r.times).toFixed(4)} s  speed-up ${(base / m).toFixed(3)}×`);
  r.run.dispose();
}
