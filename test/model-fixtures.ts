// The model fixtures shared by models.test.ts and model-loading.test.ts: tiny HF checkpoints (config.json,
// model.safetensors, expected.json) under test/fixtures/models/, made by scripts/fixtures/make_model_fixtures.py.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/index.js';
import { loadSafetensorsDir } from '../src/io/index.js';
import { createModel, loadStateDict, parseModelConfig, type CausalLM, type ModelConfig, type NamedArray } from '../src/models/index.js';

// Tests run from dist/test/; the fixtures stay in the source tree.
export const MODEL_FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'models');
export const FIXTURES = ['gpt2', 'llama', 'llama3', 'qwen2'] as const;
export type FixtureName = (typeof FIXTURES)[number];

export interface TensorRecord { shape: number[]; data: number[] }

/** expected.json: the float64 PyTorch results for the fixture batch. */
export interface Expected {
  input_ids: number[][];
  attention_mask: number[][];
  position_ids: number[][];
  logits: TensorRecord;
  loss: number;
  grads: Record<string, TensorRecord>;
  /** Only for Llama-family fixtures: the (D/2) RoPE inverse frequencies. */
  rope_inv_freq?: number[];
}

export function fixtureConfig(name: FixtureName): ModelConfig {
  return parseModelConfig(JSON.parse(readFileSync(join(MODEL_FIXTURES, name, 'config.json'), 'utf8')), `${name}/config.json`);
}

export function fixtureCheckpoint(name: FixtureName): Map<string, NamedArray> {
  return loadSafetensorsDir(join(MODEL_FIXTURES, name));
}

export function readExpected(name: FixtureName): Expected {
  return JSON.parse(readFileSync(join(MODEL_FIXTURES, name, 'expected.json'), 'utf8'));
}

/** The fixture checkpoint loaded into a fresh model through config.json and model.safetensors. */
export function loadFixtureModel(name: FixtureName): CausalLM {
  const model = createModel(fixtureConfig(name), new Rng(0));
  loadStateDict(model, fixtureCheckpoint(name), `${name}/model.safetensors`);
  return model;
}
