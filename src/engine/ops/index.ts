// Every differentiable op of the engine, in one import.
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './matmul.js';
export * from './nn.js';
