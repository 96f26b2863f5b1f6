// Plain float64 helpers for the exact small worlds of theory/: stable log-sum-exp, softmax, log-sigmoid, distances,
// and the Claim record every check reports (a named statement, its measured value, a bound and PASS/FAIL).
// Not a tensor library: arrays here are short JS number arrays and every loop is written out.
import { Rng } from '../engine/random.js';

/** log Σ_i exp(xs_i), shifted by the max so large or very negative inputs neither overflow nor vanish. */
export function logSumExp(xs: readonly number[]): number {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

/** softmax(logits) as probabilities. */
export function softmax(logits: readonly number[]): number[] {
  const lse = logSumExp(logits);
  return logits.map((l) => Math.exp(l - lse));
}

/** log σ(x) = −log(1 + e^(−x)), stable for either sign. */
export function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

/** σ(x) = 1/(1 + e^(−x)), without overflow for large |x|. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Total-variation distance ½·Σ|p − q| between two distributions on the same support. */
export function totalVariation(p: readonly number[], q: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) s += Math.abs(p[i] - q[i]);
  return 0.5 * s;
}

/** KL(p‖q) = Σ p·log(p/q), with 0·log 0 = 0. */
export function klDivergence(p: readonly number[], q: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) s += p[i] * Math.log(p[i] / q[i]);
  return s;
}

export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** max_i |a_i − b_i| (0 for empty arrays). */
export function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * One checked statement. `value` is what was measured; the claim holds when value ≤ bound (an error or distance that
 * must be small) or value ≥ bound (a quantity that must be large, e.g. a gap showing a term cannot be dropped).
 */
export interface Claim {
  id: string; // e.g. 'a.i.1'
  statement: string;
  value: number;
  relation: '≤' | '≥';
  bound: number;
  pass: boolean;
}

export function claim(id: string, statement: string, value: number, relation: '≤' | '≥', bound: number): Claim {
  // NaN fails either way: a claim that could not be measured does not hold.
  const pass = relation === '≤' ? value <= bound : value >= bound;
  return { id, statement, value, relation, bound, pass };
}

/** A seeded stream of its own for each purpose, so changing one check's draws leaves the others' alone. */
export function childRng(seed: number, stream: number): Rng {
  return new Rng((Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(stream, 0x85ebca6b)) >>> 0);
}
