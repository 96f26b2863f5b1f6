// Shared test helpers: one assert-close (atol + rtol·|expected|), a float64 central-difference gradient checker, and
// seeded random tensors. Every test file imports the engine through ../src/index.js, which selects the backend.
import assert from 'node:assert/strict';
import { Rng, Tensor, backward, mul, noGrad, scope, sum, tensor, type DType } from '../src/index.js';

export interface Tolerance {
  atol?: number;
  rtol?: number;
}

/** Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise (NaN only matches NaN, ±∞ only itself). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance = {}, what = 'value'): void {
  const atol = tol.atol ?? 1e-6;
  const rtol = tol.rtol ?? 1e-5;
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs expected ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) !== Number.isNaN(a)) { worst = i; worstExcess = Infinity; break; }
      continue;
    }
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a !== e) { worst = i; worstExcess = Infinity; break; }
      continue;
    }
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (excess > worstExcess) { worst = i; worstExcess = excess; }
  }
  if (worst >= 0) {
    assert.fail(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol}; ${actual.length} elements)`);
  }
}

export function randomTensor(rng: Rng, shape: readonly number[], dtype: DType = 'float64', lo = -1, hi = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Array.from({ length: n }, () => lo + (hi - lo) * rng.uniform()), shape, dtype);
}

export interface GradCheckOptions extends Tolerance {
  /** Finite-difference step. */
  eps?: number;
  /** Indices of inputs not to check (e.g. int ids). */
  skip?: number[];
}

/**
 * Checks every input's gradient of f against float64 central differences. A fixed random projection w turns a
 * tensor output y into the scalar Σ w·y, so all output elements are covered.
 */
export function gradCheck(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradCheckOptions = {}): void {
  const eps = opts.eps ?? 1e-6;
  const rng = new Rng(12345);
  scope(() => {
    for (const x of inputs) if (x.dtype !== 'int32' && !(opts.skip ?? []).includes(inputs.indexOf(x))) x.requireGrad();
    const y0 = noGrad(() => f(...inputs));
    const w = randomTensor(rng, y0.shape, y0.dtype);
    const objective = () => noGrad(() => sum(mul(f(...inputs), w)).item());
    for (const x of inputs) { x.grad?.dispose(); x.grad = null; }
    const loss = sum(mul(f(...inputs), w));
    backward(loss);
    inputs.forEach((x, idx) => {
      if (!x.requiresGrad) return;
      const analytic = x.grad ? Array.from(x.grad.data) : new Array<number>(x.size).fill(0);
      const numeric = new Array<number>(x.size);
      const d = x.data;
      for (let i = 0; i < x.size; i++) {
        const orig = d[i];
        d[i] = orig + eps;
        const up = scope(objective);
        d[i] = orig - eps;
        const down = scope(objective);
        d[i] = orig;
        numeric[i] = (up - down) / (2 * eps);
      }
      assertClose(analytic, numeric, { atol: opts.atol ?? 1e-6, rtol: opts.rtol ?? 1e-5 }, `${name}: d/d input ${idx}`);
      x.grad?.dispose();
      x.grad = null;
      x.requiresGrad = false;
    });
  });
}
