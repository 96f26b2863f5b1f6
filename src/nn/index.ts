// Neural-network building blocks on the engine: Module trees with HF parameter names, and the basic layers.
export * from './module.js';
export * from './layers.js';
