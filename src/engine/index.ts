// The tensor engine: Tensor, autograd, the ops, composites and random numbers. Backends are set by ../backends.
export * from './tensor.js';
export * from './dtype.js';
export * from './errors.js';
export * from './ops/index.js';
export { backward, zeroGrad } from './autograd.js';
export * from './composites.js';
export * from './random.js';
export { memoryStats, resetPeakMemory, clearPool } from './storage.js';
export type { Backend, FloatArray, AnyArray, UnaryOp, BinaryOp } from './backend.js';
export { unaryOps, binaryOps } from './backend.js';
export * from './optim.js';
