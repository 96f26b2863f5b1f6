// The Backend interface lives in engine/ (layer 1), which runs kernels through it; backends (layer 2) implement it.
export * from '../engine/backend.js';
