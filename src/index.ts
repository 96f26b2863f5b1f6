// dpo-ts: the public API. Importing it selects the backend (native addon, else the reference backend).
import { initBackend } from './backends/index.js';

export * from './engine/index.js';
export { initBackend, currentBackend, referenceBackend } from './backends/index.js';

initBackend();
export * from './nn/index.js';
export * from './models/index.js';
export * from './io/index.js';
export * from './data/index.js';
export * from './dpo/index.js';
export * as theory from './theory/index.js';
export * from './report/index.js';
export * as online from './online/index.js';
