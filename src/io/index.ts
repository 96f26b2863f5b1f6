// File formats and file-system helpers: JSON configs, atomic writes, 16-bit floats, safetensors (single and sharded).
export * from './json.js';
export * from './atomic.js';
export * from './half.js';
export * from './safetensors.js';
export * from './safetensors-sharded.js';
export * from './tokenizer.js';
export * from './chat-template.js';
export * from './pretrained.js';
