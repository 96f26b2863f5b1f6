// Reductions: sum and mean over any set of axes, max over one axis, and sumTo (the reverse of broadcasting).
// A reduction over axis a views the tensor as (outer, n, inner) with n = shape[a], so each kernel call is one pass.
import type { GradRules } from '../graph.js';
import { empty, Tensor } from '../tensor.js';
import { getBackend } from '../tensor.js';
import { ShapeError, fmtShape } from '../errors.js';
import { assertFloat, normAxis, record, sameShape, sizeOf } from './util.js';
import { expand, reshape } from './shape.js';
import { affine } from './elementwise.js';

function sumAxisRaw(x: Tensor, axis: number): Tensor {
  const outer = sizeOf(x.shape.slice(0, axis));
  const n = x.shape[axis];
  const inner = sizeOf(x.shape.slice(axis + 1));
  const shape = x.shape.slice();
  shape[axis] = 1;
  const out = empty(shape, x.dtype);
  getBackend().reduceSum(out.floatData(), x.floatData(), outer, n, inner);
  return out;
}

/** Σ over `axes` (default: all). keepDims keeps them as size-1 dimensions. */
export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  assertFloat('sum', 'x', x);
  const list = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : axes;
  const norm = [...new Set(list.map((a) => normAxis('sum', a, x.rank)))].sort((a, b) => a - b);
  let cur = x;
  for (const a of norm) {
    const next = sumAxisRaw(cur, a);
    if (cur !== x) cur.dispose();
    cur = next;
  }
  if (cur === x) cur = x.view(x.shape); // no axes: a fresh handle so the graph node has its own output
  const keepShape = cur.shape;
  const outShape = keepDims ? keepShape : x.shape.filter((_, i) => !norm.includes(i));
  const out = sameShape(outShape, keepShape) ? cur : cur.view(outShape);
  if (out !== cur) cur.dispose();
  return record(out, 'sum', [x], { keepShape });
}

/** Mean over `axes` (default: all). */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const s = sum(x, axes, keepDims);
  const count = x.size / Math.max(s.size, 1);
  return affine(s, count === 0 ? NaN : 1 / count);
}

/** max over one axis; the gradient flows to the first maximal element, as torch.max(dim) does. */
export function max(x: Tensor, axis: number, keepDims = false): Tensor {
  const xd = assertFloat('max', 'x', x);
  const a = normAxis('max', axis, x.rank);
  const outer = sizeOf(x.shape.slice(0, a));
  const n = x.shape[a];
  if (n === 0) throw new ShapeError('max', `cannot take the max over an empty axis ${a} of shape ${fmtShape(x.shape)}`);
  const inner = sizeOf(x.shape.slice(a + 1));
  const shape = keepDims ? x.shape.map((d, i) => (i === a ? 1 : d)) : x.shape.filter((_, i) => i !== a);
  const out = empty(shape, x.dtype);
  const argmax = new Int32Array(outer * inner);
  getBackend().reduceMax(out.floatData(), argmax, xd, outer, n, inner);
  return record(out, 'max', [x], { argmax, outer, n, inner });
}

/** Sums a broadcast gradient back down to `shape` (the inverse of broadcasting `shape` up to g.shape). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reshape(sum(g, axes, true), shape);
}

export const reduceRules: Pick<GradRules, 'sum' | 'max'> = {
  sum: (g, { inputs: [x], saved: { keepShape } }) => [expand(reshape(g, keepShape), x!.shape)],
  max(g, { inputs: [x], saved: { argmax, outer, n, inner } }) {
    const dx = empty(x!.shape, g.dtype);
    const d = dx.floatData();
    d.fill(0);
    const gd = g.floatData();
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) d[(o * n + argmax[o * inner + i]) * inner + i] = gd[o * inner + i];
    }
    return [dx];
  },
};
