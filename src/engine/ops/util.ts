// Helpers shared by the op files: recording graph nodes, shape checks and broadcasting arithmetic.
import type { FloatArray } from '../backend.js';
import { DTypeError, ShapeError, fmtShape } from '../errors.js';
import type { OpName, SavedFor } from '../graph.js';
import { empty, isGradEnabled, Tensor } from '../tensor.js';

/** Attaches a graph node to `out` when grad is enabled and some input requires grad. Returns out. */
export function record<K extends OpName>(out: Tensor, op: K, inputs: readonly (Tensor | null)[], saved: SavedFor[K]): Tensor {
  if (isGradEnabled() && inputs.some((t) => t?.requiresGrad)) {
    out.requiresGrad = true;
    // The cast is the correlated-union gap: {op: K, saved: SavedFor[K]} is a Node<K> for every K.
    out.node = { op, inputs, saved } as Extract<typeof out.node, { op: K }>;
  }
  return out;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The broadcast of two shapes (NumPy rules), or a ShapeError naming the op. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(op, `shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (dimension ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides that read a tensor of `shape` as if it had the (broadcast) shape `to`: 0 on broadcast dimensions. */
export function broadcastStrides(shape: readonly number[], to: readonly number[]): number[] {
  const own = contiguousStrides(shape);
  const out = new Array<number>(to.length).fill(0);
  for (let i = 0; i < shape.length; i++) {
    const j = to.length - shape.length + i;
    out[j] = shape[i] === 1 && to[j] !== 1 ? 0 : own[i];
  }
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function assertFloat(op: string, name: string, t: Tensor): FloatArray {
  if (t.dtype === 'int32') throw new DTypeError(op, `argument '${name}' must be float32 or float64, got int32 ${fmtShape(t.shape)}`);
  return t.floatData(op);
}

export function assertSameDType(op: string, ts: Record<string, Tensor>): void {
  const entries = Object.entries(ts);
  const [n0, t0] = entries[0];
  for (const [n, t] of entries) {
    if (t.dtype !== t0.dtype) throw new DTypeError(op, `argument '${n}' is ${t.dtype} ${fmtShape(t.shape)} but '${n0}' is ${t0.dtype} ${fmtShape(t0.shape)}`);
  }
}

export function assertInt(op: string, name: string, t: Tensor): Int32Array {
  if (t.dtype !== 'int32') throw new DTypeError(op, `argument '${name}' must be int32, got ${t.dtype} ${fmtShape(t.shape)}`);
  return t.data as Int32Array;
}

/** Normalises a possibly negative axis against a rank, or throws. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ShapeError(op, `axis ${axis} is out of range for a rank-${rank} tensor`);
  return a;
}

/** A new uninitialised float tensor like `t`. */
export function emptyLike(t: Tensor, shape: readonly number[] = t.shape): Tensor {
  return empty(shape, t.dtype);
}
