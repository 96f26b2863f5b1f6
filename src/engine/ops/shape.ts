// Shape primitives: reshape (a view, no copy), permute, slice, concat and expand (strided copies), and the row
// gather (embedding lookup) with its twin scatter-add. Every tensor stays contiguous and row-major.
import { IndexError, ShapeError, fmtShape } from '../errors.js';
import type { GradRules } from '../graph.js';
import { empty, getBackend, Tensor, zeros } from '../tensor.js';
import { assertFloat, assertInt, assertSameDType, contiguousStrides, normAxis, record, sameShape, sizeOf, broadcastShapes, broadcastStrides } from './util.js';
import { sumTo } from './reduce.js';

/** Same data, new shape of equal size; one dimension may be −1 (inferred). Shares storage. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const infer = shape.indexOf(-1);
  const target = shape.slice();
  if (infer >= 0) {
    const known = sizeOf(shape.filter((_, i) => i !== infer));
    if (known === 0 || x.size % known !== 0) throw new ShapeError('reshape', `cannot infer −1 in ${fmtShape(shape)} for ${x.size} elements of ${fmtShape(x.shape)}`);
    target[infer] = x.size / known;
  }
  if (sizeOf(target) !== x.size) throw new ShapeError('reshape', `cannot reshape ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(shape)}`);
  return record(x.view(target), 'reshape', [x], null);
}

/** Reorders dimensions: out.shape[i] = x.shape[perm[i]]. Copies. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new ShapeError('permute', `perm ${fmtShape(perm)} is not a permutation of the ${x.rank} axes of ${fmtShape(x.shape)}`);
  }
  const xs = contiguousStrides(x.shape);
  const shape = perm.map((p) => x.shape[p]);
  const out = empty(shape, x.dtype);
  getBackend().stridedCopy(out.data, x.data, shape, perm.map((p) => xs[p]), 0);
  return record(out, 'permute', [x], { perm });
}

/** Swaps two axes. */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const i = normAxis('transpose', a, x.rank);
  const j = normAxis('transpose', b, x.rank);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/** x[starts[0]:ends[0], starts[1]:ends[1], …]; missing trailing axes are taken whole. Copies. */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[]): Tensor {
  if (starts.length > x.rank || ends.length !== starts.length) {
    throw new ShapeError('slice', `starts ${fmtShape(starts)} and ends ${fmtShape(ends)} do not fit ${fmtShape(x.shape)}`);
  }
  const st = x.shape.map((_, i) => starts[i] ?? 0);
  const en = x.shape.map((d, i) => ends[i] ?? d);
  for (let i = 0; i < x.rank; i++) {
    if (!(0 <= st[i] && st[i] <= en[i] && en[i] <= x.shape[i])) {
      throw new IndexError('slice', `axis ${i}: range [${st[i]}, ${en[i]}) is outside 0..${x.shape[i]} of ${fmtShape(x.shape)}`);
    }
  }
  const xs = contiguousStrides(x.shape);
  const shape = st.map((s, i) => en[i] - s);
  const out = empty(shape, x.dtype);
  getBackend().stridedCopy(out.data, x.data, shape, xs, st.reduce((acc, s, i) => acc + s * xs[i], 0));
  return record(out, 'slice', [x], { starts: st });
}

/** Joins tensors along an axis; all other dimensions must agree. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new ShapeError('concat', 'needs at least one tensor');
  const a = normAxis('concat', axis, xs[0].rank);
  xs.forEach((t, i) => {
    assertSameDType('concat', { 'xs[0]': xs[0], [`xs[${i}]`]: t });
    if (t.rank !== xs[0].rank || t.shape.some((d, j) => j !== a && d !== xs[0].shape[j])) {
      throw new ShapeError('concat', `xs[${i}] has shape ${fmtShape(t.shape)}, which does not match xs[0] ${fmtShape(xs[0].shape)} outside axis ${a}`);
    }
  });
  const shape = xs[0].shape.slice();
  shape[a] = xs.reduce((s, t) => s + t.shape[a], 0);
  const out = zeros(shape, xs[0].dtype);
  const os = contiguousStrides(shape);
  let offset = 0;
  for (const t of xs) {
    if (t.dtype === 'int32') {
      copyIntoInt(out, t, os, offset * os[a]);
    } else {
      getBackend().stridedAccumulate(out.floatData(), t.floatData(), t.shape, os, offset * os[a]);
    }
    offset += t.shape[a];
  }
  return record(out, 'concat', xs, { axis: a });
}

function copyIntoInt(out: Tensor, t: Tensor, outStrides: readonly number[], base: number): void {
  const ts = contiguousStrides(t.shape);
  const src = t.data;
  const dst = out.data;
  for (let i = 0; i < t.size; i++) {
    let o = base;
    for (let d = 0; d < t.rank; d++) o += Math.floor(i / ts[d]) % t.shape[d] * outStrides[d];
    dst[o] = src[i];
  }
}

/** Broadcasts x to `shape` (NumPy rules) and materialises it. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const full = broadcastShapes('expand', x.shape, shape);
  if (!sameShape(full, shape)) throw new ShapeError('expand', `cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  if (sameShape(x.shape, shape)) return reshape(x, shape);
  const out = empty(shape, x.dtype);
  getBackend().stridedCopy(out.data, x.data, shape, broadcastStrides(x.shape, shape), 0);
  return record(out, 'expand', [x], null);
}

function checkIds(op: string, ids: Int32Array, rows: number): void {
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < rows)) throw new IndexError(op, `ids[${i}] = ${ids[i]} is outside the table's ${rows} rows`);
  }
}

/** Embedding lookup: table (V, C) and int32 ids of any shape give ids.shape + [C]. */
export function gather(table: Tensor, ids: Tensor): Tensor {
  const td = assertFloat('gather', 'table', table);
  const id = assertInt('gather', 'ids', ids);
  if (table.rank !== 2) throw new ShapeError('gather', `table must be (V, C), got ${fmtShape(table.shape)}`);
  checkIds('gather', id, table.shape[0]);
  const c = table.shape[1];
  const out = empty([...ids.shape, c], table.dtype);
  getBackend().gatherRows(out.floatData(), td, id, id.length, c);
  return record(out, 'gather', [table, null], { ids });
}

/** base with src rows added at ids: out = base; out[ids[i], :] += src[i, :]. base (V, C), src (N, C), ids (N). */
export function scatterAdd(base: Tensor, ids: Tensor, src: Tensor): Tensor {
  assertFloat('scatterAdd', 'base', base);
  assertFloat('scatterAdd', 'src', src);
  assertSameDType('scatterAdd', { base, src });
  const id = assertInt('scatterAdd', 'ids', ids);
  if (base.rank !== 2 || src.rank !== 2 || src.shape[1] !== base.shape[1] || src.shape[0] !== id.length) {
    throw new ShapeError('scatterAdd', `expected base (V, C), ids (N), src (N, C); got base ${fmtShape(base.shape)}, ids ${fmtShape(ids.shape)}, src ${fmtShape(src.shape)}`);
  }
  checkIds('scatterAdd', id, base.shape[0]);
  const out = empty(base.shape, base.dtype);
  out.floatData().set(base.floatData());
  getBackend().scatterAddRows(out.floatData(), src.floatData(), id, id.length, base.shape[1]);
  return record(out, 'scatterAdd', [base, src], { ids });
}

/**
 * into[starts … starts + g.shape) += g: the slice rule's work, also used by autograd to add a slice's gradient straight
 * into its input's existing gradient (q, k and v cut from one projection) instead of a zero tensor plus a sum.
 */
export function accumulateSliceGrad(into: Tensor, g: Tensor, starts: readonly number[]): void {
  const xs = contiguousStrides(into.shape);
  getBackend().stridedAccumulate(into.floatData(), g.floatData(), g.shape, xs, starts.reduce((acc, s, i) => acc + s * xs[i], 0));
}

export const shapeRules: Pick<GradRules, 'reshape' | 'permute' | 'slice' | 'concat' | 'expand' | 'gather' | 'scatterAdd'> = {
  reshape: (g, { inputs: [x] }) => [reshape(g, x!.shape)],
  permute(g, { saved: { perm } }) {
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [permute(g, inverse)];
  },
  slice(g, { inputs: [x], saved: { starts } }) {
    const dx = zeros(x!.shape, g.dtype);
    accumulateSliceGrad(dx, g, starts);
    return [dx];
  },
  concat(g, { inputs, saved: { axis } }) {
    let offset = 0;
    return inputs.map((t) => {
      const st = g.shape.map((_, i) => (i === axis ? offset : 0));
      const en = g.shape.map((d, i) => (i === axis ? offset + t!.shape[axis] : d));
      offset += t!.shape[axis];
      return t!.requiresGrad ? slice(g, st, en) : null;
    });
  },
  expand: (g, { inputs: [x] }) => [sumTo(g, x!.shape)],
  gather(g, { inputs: [table], saved: { ids } }) {
    const dt = zeros(table!.shape, g.dtype);
    const c = table!.shape[1];
    getBackend().scatterAddRows(dt.floatData(), g.floatData(), ids.data as Int32Array, ids.size, c);
    return [dt, null];
  },
  scatterAdd: (g, { inputs: [, src], saved: { ids } }) => [g, src!.requiresGrad ? gather(g, ids) : null],
};
