// The model zoo: typed HF configs, the architecture registry, GPT-2, Llama and Qwen2, and loading weights by name.
export * from './types.js';
export * from './config.js';
export * from './registry.js';
export { GPT2LMHeadModel } from './gpt2.js';
export { LlamaForCausalLM, Qwen2ForCausalLM, type LlamaFamilyConfig } from './llama.js';
export { ropeInverseFrequencies, ropeTables, type RopeScaling } from './rope.js';
export { causalPaddingMask, defaultPositions } from './attention-mask.js';
export { newKVCache, disposeKVCache } from './common.js';
export { loadStateDict, stateDict, StateDictError, IGNORED_BUFFERS, type NamedArray, type ShapeMismatch } from './state-dict.js';
export * from './generate.js';
