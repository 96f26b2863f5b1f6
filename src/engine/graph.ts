// The autograd graph's records. Each primitive op that runs with grad enabled attaches a GraphNode to its output:
// the op's name, its tensor inputs (gradients are returned in this order) and what its gradient rule saved.
// SavedFor lists every primitive; autograd.ts holds a rule for each key, so a primitive without a rule won't compile.
import type { BinaryOp, UnaryOp } from './backend.js';
import type { DType } from './dtype.js';
import type { Tensor } from './tensor.js';

export interface SavedFor {
  unary: { op: UnaryOp; x: Tensor; y: Tensor };
  add: null;
  sub: null;
  mul: null;
  div: { out: Tensor };
  maximum: null;
  minimum: null;
  where: { cond: Tensor };
  affine: { scale: number };
  sum: { keepShape: readonly number[] };
  max: { argmax: Int32Array; outer: number; n: number; inner: number };
  reshape: null;
  permute: { perm: readonly number[] };
  slice: { starts: readonly number[] };
  concat: { axis: number };
  expand: null;
  gather: { ids: Tensor };
  scatterAdd: { ids: Tensor };
  matmul: { transA: boolean; transB: boolean };
  linear: { wIsInOut: boolean };
  softmax: { y: Tensor };
  logSoftmax: { y: Tensor };
  layerNorm: { mean: Tensor; rstd: Tensor };
  rmsNorm: { rstd: Tensor };
  attention: { probs: Tensor; scale: number };
  rope: { cos: Tensor; sin: Tensor };
  logSoftmaxGather: { lse: Tensor; targets: Tensor };
  cast: { from: DType };
}

export type OpName = keyof SavedFor;
export type BinaryArithOp = Extract<BinaryOp, OpName>;

export interface Node<K extends OpName> {
  readonly op: K;
  /** Tensor inputs, in the order the gradient rule returns their gradients; null marks a non-differentiable slot. */
  readonly inputs: readonly (Tensor | null)[];
  readonly saved: SavedFor[K];
}

export type GraphNode = { [K in OpName]: Node<K> }[OpName];

/** A gradient rule: from the output's gradient to one gradient per input (null where none flows). */
export type GradRule<K extends OpName> = (grad: Tensor, node: Node<K>, out: Tensor) => (Tensor | null)[];
export type GradRules = { readonly [K in OpName]: GradRule<K> };
