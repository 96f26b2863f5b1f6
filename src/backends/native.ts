// The native backend: the C++ addon (build/Release/dpo_native.node, sources in native/) behind the Backend interface.
// Every kernel runs natively when its float arrays are all Float32Array; anything else (float64 gradient checks,
// int32 affine, mixed-type casts) goes to the reference backend, so callers never need to care which one ran.
// This file is the FFI boundary: the only place where the untyped addon object gets a type.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { AnyArray, Backend } from '../engine/backend.js';
import { referenceBackend } from './reference.js';

/** The addon's exports: every Backend kernel (Float32Array only; it throws on anything else) plus thread control. */
type NativeAddon = Omit<Backend, 'name' | 'threads'> & {
  threads(): number;
  setThreads(n: number): void;
};

type Kernels = Omit<Backend, 'name' | 'threads'>;

let cached: { addon: NativeAddon | null; error: string } | undefined;

/** The package root: the nearest folder above this file that holds package.json (works from src/ and dist/src/). */
function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function loadAddon(): { addon: NativeAddon | null; error: string } {
  if (cached) return cached;
  const root = packageRoot();
  if (root === null) {
    cached = { addon: null, error: 'could not find package.json above ' + fileURLToPath(import.meta.url) };
    return cached;
  }
  const path = join(root, 'build', 'Release', 'dpo_native.node');
  try {
    const require = createRequire(join(root, 'package.json'));
    cached = { addon: require(path) as unknown as NativeAddon, error: '' };
  } catch (e) {
    cached = { addon: null, error: `${path}: ${(e as Error).message}. Build it with \`npx node-gyp rebuild\`.` };
  }
  return cached;
}

/** Why the addon did not load ('' when it did, or before the first attempt). */
export function nativeLoadError(): string {
  return loadAddon().error;
}

/** Threads the native kernels use (1 when the addon is not available). */
export function nativeThreads(): number {
  return loadAddon().addon?.threads() ?? 1;
}

/** Sets the native thread-pool size (>= 1); call between kernels. No effect when the addon is not available. */
export function setNativeThreads(n: number): void {
  loadAddon().addon?.setThreads(n);
}

/** The native backend, or null when the addon cannot be loaded (see nativeLoadError()). */
export function loadNativeBackend(): Backend | null {
  const addon = loadAddon().addon;
  if (addon === null) return null;
  const ref: Kernels = referenceBackend;

  // The addon when every given float array is a Float32Array (nulls allowed), else the reference.
  const on = (...arrays: (AnyArray | null)[]): Kernels =>
    arrays.every((a) => a === null || a instanceof Float32Array) ? addon : ref;

  return {
    name: 'native',
    get threads() {
      return addon.threads();
    },

    fill: (out, value) => on(out).fill(out, value),
    stridedCopy: (out, x, shape, xStrides, xOffset) =>
      (out instanceof Int32Array && x instanceof Int32Array ? addon : on(out, x)).stridedCopy(out, x, shape, xStrides, xOffset),
    stridedAccumulate: (out, x, shape, outStrides, outOffset) =>
      on(out, x).stridedAccumulate(out, x, shape, outStrides, outOffset),
    gatherRows: (out, table, ids, n, c) => on(out, table).gatherRows(out, table, ids, n, c),
    scatterAddRows: (table, src, ids, n, c) => on(table, src).scatterAddRows(table, src, ids, n, c),

    unary: (op, out, x) => on(out, x).unary(op, out, x),
    unaryBackward: (op, dx, dy, x, y) => on(dx, dy, x, y).unaryBackward(op, dx, dy, x, y),
    binary: (op, out, a, b, shape, aStrides, bStrides) => on(out, a, b).binary(op, out, a, b, shape, aStrides, bStrides),
    where: (out, cond, a, b, shape, condStrides, aStrides, bStrides) =>
      ref.where(out, cond, a, b, shape, condStrides, aStrides, bStrides),
    affine: (out, x, scale, shift) => on(out, x).affine(out, x, scale, shift),

    reduceSum: (out, x, outer, n, inner) => on(out, x).reduceSum(out, x, outer, n, inner),
    reduceMax: (out, argmax, x, outer, n, inner) => on(out, x).reduceMax(out, argmax, x, outer, n, inner),

    matmul: (c, a, b, batch, m, n, k, transA, transB, aBatchStride, bBatchStride, cBatchStride, accumulate) =>
      on(c, a, b).matmul(c, a, b, batch, m, n, k, transA, transB, aBatchStride, bBatchStride, cBatchStride, accumulate),
    linear: (out, x, w, bias, n, cin, cout, wIsInOut) => on(out, x, w, bias).linear(out, x, w, bias, n, cin, cout, wIsInOut),

    softmax: (out, x, rows, cols) => on(out, x).softmax(out, x, rows, cols),
    softmaxBackward: (dx, dy, y, rows, cols) => on(dx, dy, y).softmaxBackward(dx, dy, y, rows, cols),
    logSoftmax: (out, x, rows, cols) => on(out, x).logSoftmax(out, x, rows, cols),
    logSoftmaxBackward: (dx, dy, y, rows, cols) => on(dx, dy, y).logSoftmaxBackward(dx, dy, y, rows, cols),
    layerNorm: (out, mean, rstd, x, weight, bias, rows, cols, eps) =>
      on(out, mean, rstd, x, weight, bias).layerNorm(out, mean, rstd, x, weight, bias, rows, cols, eps),
    layerNormBackward: (dx, dweight, dbias, dy, x, weight, mean, rstd, rows, cols) =>
      on(dx, dweight, dbias, dy, x, weight, mean, rstd).layerNormBackward(dx, dweight, dbias, dy, x, weight, mean, rstd, rows, cols),
    rmsNorm: (out, rstd, x, weight, rows, cols, eps) => on(out, rstd, x, weight).rmsNorm(out, rstd, x, weight, rows, cols, eps),
    rmsNormBackward: (dx, dweight, dy, x, weight, rstd, rows, cols) =>
      on(dx, dweight, dy, x, weight, rstd).rmsNormBackward(dx, dweight, dy, x, weight, rstd, rows, cols),

    logSoftmaxGather: (out, lse, logits, targets, n, v) => on(out, lse, logits).logSoftmaxGather(out, lse, logits, targets, n, v),
    logSoftmaxGatherBackward: (dlogits, dout, logits, lse, targets, n, v) =>
      on(dlogits, dout, logits, lse).logSoftmaxGatherBackward(dlogits, dout, logits, lse, targets, n, v),

    attention: (out, probs, q, k, v, mask, b, tq, tk, h, kvh, d, scale) =>
      on(out, probs, q, k, v).attention(out, probs, q, k, v, mask, b, tq, tk, h, kvh, d, scale),
    attentionBackward: (dq, dk, dv, dout, q, k, v, probs, b, tq, tk, h, kvh, d, scale) =>
      on(dq, dk, dv, dout, q, k, v, probs).attentionBackward(dq, dk, dv, dout, q, k, v, probs, b, tq, tk, h, kvh, d, scale),
    rope: (out, x, cos, sin, b, t, h, d, inverse) => on(out, x, cos, sin).rope(out, x, cos, sin, b, t, h, d, inverse),

    adamw: (param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step) =>
      on(param, grad, m, v).adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step),
  };
}
