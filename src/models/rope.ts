// Rotary position embedding numbers (Su et al. 2021, "RoFormer"): the inverse frequencies for a head dim, θ and
// rope_scaling ('linear', 'llama3'), and the cos/sin tables for given positions. The rotation itself (HF's rotate-half
// layout) is the engine's rope op. Tables are computed in float64 and stored in the model's dtype; HF computes the
// angles in float32, so at long positions our float32 tables are the more accurate of the two.
import type { FloatDType } from '../engine/dtype.js';
import { empty, type Tensor } from '../engine/tensor.js';

export type RopeScaling =
  /** Position interpolation (Chen et al. 2023): every frequency divided by factor. */
  | { type: 'linear'; factor: number }
  /** Llama 3.1: long wavelengths divided by factor, short ones kept, a linear blend between. */
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

/** (D/2) inverse frequencies: invFreq[i] = θ^(−2i/D), then rescaled as `scaling` says. */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: RopeScaling | null = null): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / theta ** ((2 * i) / headDim);
  if (!scaling) return inv;
  switch (scaling.type) {
    case 'linear':
      return inv.map((f) => f / scaling.factor);
    case 'llama3':
      return inv.map((f) => llama3Frequency(f, scaling));
    default:
      return scaling satisfies never;
  }
}

/**
 * Llama 3.1's rule for one frequency f with wavelength λ = 2π/f and original context L: λ < L/high keeps f; λ > L/low
 * gives f/factor; between, s = (L/λ − low)/(high − low) blends them, (1 − s)·f/factor + s·f.
 */
function llama3Frequency(f: number, s: Extract<RopeScaling, { type: 'llama3' }>): number {
  const wavelength = (2 * Math.PI) / f;
  if (wavelength < s.originalMaxPositions / s.highFreqFactor) return f;
  if (wavelength > s.originalMaxPositions / s.lowFreqFactor) return f / s.factor;
  const smooth = (s.originalMaxPositions / wavelength - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
  return (1 - smooth) * (f / s.factor) + smooth * f;
}

/** cos and sin tables (B, T, D/2) for `positions` (B·T ids, row-major): angle[b, t, i] = positions[b, t] · invFreq[i]. */
export function ropeTables(invFreq: Float64Array, positions: Int32Array, b: number, t: number, dtype: FloatDType): { cos: Tensor; sin: Tensor } {
  const half = invFreq.length;
  const cos = empty([b, t, half], dtype);
  const sin = empty([b, t, half], dtype);
  const cd = cos.floatData();
  const sd = sin.floatData();
  for (let row = 0; row < b * t; row++) {
    const p = positions[row];
    for (let i = 0; i < half; i++) {
      const angle = p * invFreq[i];
      cd[row * half + i] = Math.cos(angle);
      sd[row * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
