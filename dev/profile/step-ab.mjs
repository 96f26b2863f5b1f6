// A/B of a DPO bench step between two builds of dpo-ts in ONE process (dev tool, not shipped): each root's compiled
// dist/ and native addon are imported side by side (separate module graphs, separate engines and thread pools), and
// their steps alternate, so machine load (other programs, a neighbour VM) hits both alike. Prints every step's pair
// and the medians; the loss of each step must agree when the change is exact.
// Run: node dev/profile/step-ab.mjs BASE_ROOT NEW_ROOT [steps=24] [warmup=3] [L H C V T P]
//   e.g. with BASE_ROOT a copy of the tree at HEAD (tsc and node-gyp built there) and NEW_ROOT = .
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [baseRoot, newRoot, stepsArg = '24', warmupArg = '3', ...shapeArgs] = process.argv.slice(2);
if (!baseRoot || !newRoot) throw new Error('usage: node dev/profile/step-ab.mjs BASE_ROOT NEW_ROOT [steps] [warmup] [L H C V T P]');
const [L = 4, H = 4, C = 256, V = 512, T = 128, P = 4] = shapeArgs.map(Number);
const steps = Number(stepsArg);
const warmup = Number(warmupArg);

async function load(root) {
  const at = (p) => pathToFileURL(resolve(root, 'dist/src', p)).href;
  const backends = await import(at('backends/index.js'));
  const native = await import(at('backends/native.js'));
  const bench = await import(at('dpo/bench-step.js'));
  const be = backends.currentBackend();
  if (be.name !== 'native') throw new Error(`${root}: the native addon did not load`);
  native.setNativeThreads(2);
  const run = new bench.BenchRun({ arch: 'gpt2', layers: L, heads: H, hidden: C, vocab: V, seq: T, pairs: P, promptLen: 32, beta: 0.1, lr: 1e-4, seed: 0, batches: steps + warmup, precomputeRefLogProbs: false, layout: { prefixSharing: false, paddingFree: false } });
  return { root, run, times: [], losses: [] };
}

const variants = [await load(baseRoot), await load(newRoot)];
for (let i = 0; i < steps + warmup; i++) {
  const order = i % 2 === 0 ? [0, 1] : [1, 0];
  for (const v of order) {
    const r = variants[v].run.step(i);
    if (i >= warmup) {
      variants[v].times.push(r.seconds.total);
      variants[v].losses.push(r.loss);
    }
  }
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const [b, n] = variants;
const ratios = b.times.map((t, i) => t / n.times[i]);
for (let i = 0; i < steps; i++) {
  console.log(`step ${i + warmup}: base ${(b.times[i] * 1e3).toFixed(1)} ms, new ${(n.times[i] * 1e3).toFixed(1)} ms, base/new ${ratios[i].toFixed(3)}, loss ${b.losses[i] === n.losses[i] ? 'equal' : `${b.losses[i]} vs ${n.losses[i]}`}`);
}
const q = (xs, f) => [...xs].sort((a, c) => a - c)[Math.floor(f * (xs.length - 1))];
console.log(`median step: base ${(median(b.times) * 1e3).toFixed(1)} ms, new ${(median(n.times) * 1e3).toFixed(1)} ms; `
  + `lower quartile: base ${(q(b.times, 0.25) * 1e3).toFixed(1)}, new ${(q(n.times, 0.25) * 1e3).toFixed(1)}; `
  + `median of paired ratios base/new ${median(ratios).toFixed(3)}`);
console.log(JSON.stringify({ base: baseRoot, new: newRoot, steps, base_median_s: median(b.times), new_median_s: median(n.times), paired_ratio_median: median(ratios), tokens_per_step: 2 * P * T }));
