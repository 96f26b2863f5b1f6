// Element types. float32 is the training type, float64 the gradient-check type, int32 holds token ids and indices.
import type { AnyArray, FloatArray } from './backend.js';

export type DType = 'float32' | 'float64' | 'int32';
export type FloatDType = 'float32' | 'float64';

export function allocArray(dtype: DType, size: number): AnyArray {
  switch (dtype) {
    case 'float32': return new Float32Array(size);
    case 'float64': return new Float64Array(size);
    case 'int32': return new Int32Array(size);
    default: return dtype satisfies never;
  }
}

export function dtypeOf(a: AnyArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  return 'int32';
}

export function isFloatArray(a: AnyArray): a is FloatArray {
  return !(a instanceof Int32Array);
}

export function bytesPerElement(dtype: DType): number {
  return dtype === 'float64' ? 8 : 4;
}
