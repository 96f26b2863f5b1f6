// Elementwise primitives: unary functions, broadcasting binary arithmetic, where, affine (x·scale + shift) and
// casts, each with its gradient rule. Broadcasting follows NumPy; gradients are summed back to each input's shape.
import type { BinaryOp, UnaryOp } from '../backend.js';
import { DTypeError, fmtShape } from '../errors.js';
import type { GradRules } from '../graph.js';
import type { DType } from '../dtype.js';
import { empty, getBackend, noGrad, Tensor } from '../tensor.js';
import { assertFloat, assertSameDType, broadcastShapes, broadcastStrides, record, sameShape } from './util.js';
import { sumTo } from './reduce.js';

// ------------------------------------------------------------------------------------------------ unary
export function unary(op: UnaryOp, x: Tensor): Tensor {
  const xd = assertFloat(op, 'x', x);
  const y = empty(x.shape, x.dtype);
  getBackend().unary(op, y.floatData(), xd);
  return record(y, 'unary', [x], { op, x, y });
}

export const neg = (x: Tensor) => unary('neg', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const silu = (x: Tensor) => unary('silu', x);
/** GELU, tanh approximation (HF's gelu_new / gelu_pytorch_tanh). */
export const gelu = (x: Tensor) => unary('gelu', x);
export const relu = (x: Tensor) => unary('relu', x);
export const abs = (x: Tensor) => unary('abs', x);
export const square = (x: Tensor) => unary('square', x);

// ------------------------------------------------------------------------------------------------ binary
function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const ad = assertFloat(op, 'a', a);
  const bd = assertFloat(op, 'b', b);
  assertSameDType(op, { a, b });
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = empty(shape, a.dtype);
  getBackend().binary(op, out.floatData(), ad, bd, shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
  return out;
}

export const add = (a: Tensor, b: Tensor) => record(binaryRaw('add', a, b), 'add', [a, b], null);
export const sub = (a: Tensor, b: Tensor) => record(binaryRaw('sub', a, b), 'sub', [a, b], null);
export const mul = (a: Tensor, b: Tensor) => record(binaryRaw('mul', a, b), 'mul', [a, b], null);
export function div(a: Tensor, b: Tensor): Tensor {
  const out = binaryRaw('div', a, b);
  return record(out, 'div', [a, b], { out });
}
export const maximum = (a: Tensor, b: Tensor) => record(binaryRaw('maximum', a, b), 'maximum', [a, b], null);
export const minimum = (a: Tensor, b: Tensor) => record(binaryRaw('minimum', a, b), 'minimum', [a, b], null);
/** 1 where a = b, else 0 (not differentiable). */
export const eq = (a: Tensor, b: Tensor) => binaryRaw('eq', a, b);
/** 1 where a > b, else 0 (not differentiable). */
export const gt = (a: Tensor, b: Tensor) => binaryRaw('gt', a, b);

// ------------------------------------------------------------------------------------------------ where
/** cond ≠ 0 ? a : b, broadcasting all three. cond is a float mask (not differentiated). */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const cd = assertFloat('where', 'cond', cond);
  const ad = assertFloat('where', 'a', a);
  const bd = assertFloat('where', 'b', b);
  assertSameDType('where', { a, b });
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, a.shape), b.shape);
  const out = empty(shape, a.dtype);
  getBackend().where(out.floatData(), cd, ad, bd, shape, broadcastStrides(cond.shape, shape), broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
  return record(out, 'where', [a, b], { cond });
}

// ------------------------------------------------------------------------------------------------ affine, cast
/** x·scale + shift, with scalar numbers. */
export function affine(x: Tensor, scale: number, shift = 0): Tensor {
  assertFloat('affine', 'x', x);
  const out = empty(x.shape, x.dtype);
  getBackend().affine(out.data, x.data, scale, shift);
  return record(out, 'affine', [x], { scale });
}
export const scale = (x: Tensor, s: number) => affine(x, s, 0);
export const addScalar = (x: Tensor, s: number) => affine(x, 1, s);

/** Converts between dtypes (float32 ↔ float64 differentiably; to or from int32 without gradient). */
export function cast(x: Tensor, dtype: DType): Tensor {
  const out = empty(x.shape, dtype);
  getBackend().affine(out.data, x.data, 1, 0);
  if (x.dtype === 'int32' || dtype === 'int32') return out;
  return record(out, 'cast', [x], { from: x.dtype });
}

function checkSameShape(op: string, a: Tensor, b: Tensor): void {
  if (!sameShape(a.shape, b.shape)) throw new DTypeError(op, `expected equal shapes, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
}

/** In place: target += source (same shape and dtype). Used to accumulate gradients; not recorded. */
export function addInPlace(target: Tensor, source: Tensor): void {
  checkSameShape('addInPlace', target, source);
  const t = target.floatData('addInPlace');
  const s = source.floatData('addInPlace');
  getBackend().binary('add', t, t, s, [t.length], [1], [1]);
}

// ------------------------------------------------------------------------------------------------ gradient rules
export const elementwiseRules: Pick<GradRules, 'unary' | 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'minimum' | 'where' | 'affine' | 'cast'> = {
  unary(g, { saved: { op, x, y } }) {
    const dx = empty(x.shape, x.dtype);
    getBackend().unaryBackward(op, dx.floatData(), g.floatData(), x.floatData(), y.floatData());
    return [dx];
  },
  add: (g, { inputs: [a, b] }) => [sumTo(g, a!.shape), sumTo(g, b!.shape)],
  sub: (g, { inputs: [a, b] }) => [sumTo(g, a!.shape), sumTo(neg(g), b!.shape)],
  mul: (g, { inputs: [a, b] }) => [a!.requiresGrad ? sumTo(mul(g, b!), a!.shape) : null, b!.requiresGrad ? sumTo(mul(g, a!), b!.shape) : null],
  div(g, { inputs: [a, b], saved: { out } }) {
    // d(a/b)/da = 1/b ; d(a/b)/db = −(a/b)/b
    const ga = a!.requiresGrad ? sumTo(div(g, b!), a!.shape) : null;
    const gb = b!.requiresGrad ? sumTo(neg(div(mul(g, out), b!)), b!.shape) : null;
    return [ga, gb];
  },
  maximum: (g, { inputs: [a, b] }) => minMaxGrad(g, a!, b!, true),
  minimum: (g, { inputs: [a, b] }) => minMaxGrad(g, a!, b!, false),
  where(g, { inputs: [a, b], saved: { cond } }) {
    const zero = empty([], g.dtype);
    zero.data[0] = 0;
    return [sumTo(where(cond, g, zero), a!.shape), sumTo(where(cond, zero, g), b!.shape)];
  },
  affine: (g, { saved: { scale: s } }) => [scale(g, s)],
  cast: (g, { saved: { from } }) => [cast(g, from)],
};

// Gradient of maximum(a, b) (or minimum) with ties split evenly, as torch does: a gets g·(1[a wins] + ½·1[a = b]).
function minMaxGrad(g: Tensor, a: Tensor, b: Tensor, isMax: boolean): (Tensor | null)[] {
  return noGrad(() => {
    const shareA = add(isMax ? gt(a, b) : gt(b, a), scale(eq(a, b), 0.5));
    const shareB = addScalar(neg(shareA), 1);
    return [sumTo(mul(g, shareA), a.shape), sumTo(mul(g, shareB), b.shape)];
  });
}
