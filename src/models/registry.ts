// model_type → model class. The table is a mapped type over ConfigByType, so a model type without a constructor does
// not compile. createModel builds a freshly initialised model; loading weights is state-dict.ts's job.
import type { Rng } from '../engine/random.js';
import { parseModelConfig, type ConfigByType, type ModelConfig, type ModelType } from './config.js';
import { GPT2LMHeadModel } from './gpt2.js';
import { LlamaForCausalLM, Qwen2ForCausalLM } from './llama.js';
import type { CausalLM } from './types.js';

type Constructors = { [K in ModelType]: (config: ConfigByType[K], rng: Rng) => CausalLM };

const constructors: Constructors = {
  gpt2: (config, rng) => new GPT2LMHeadModel(config, rng),
  llama: (config, rng) => new LlamaForCausalLM(config, rng),
  qwen2: (config, rng) => new Qwen2ForCausalLM(config, rng),
};

function build<K extends ModelType>(type: K, config: ConfigByType[K], rng: Rng): CausalLM {
  return constructors[type](config, rng);
}

/** A model for `config` with HF-style random weights drawn from `rng` (N(0, initializer_range²), biases 0, norms 1). */
export function createModel(config: ModelConfig, rng: Rng): CausalLM {
  return build(config.modelType, config, rng);
}

/** Parses an HF config.json object and builds the model it describes. */
export function createModelFromHFConfig(raw: unknown, rng: Rng, source = 'config.json'): CausalLM {
  return createModel(parseModelConfig(raw, source), rng);
}
