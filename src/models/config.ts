// Typed model configs parsed from a Hugging Face config.json object: field checks, HF's defaults, and the
// architecture chosen by model_type (or, without one, by architectures[0]). Keys that only matter to training,
// generation or bookkeeping (dropout, use_cache, token ids, torch_dtype, …) are ignored; keys that would change the
// computation in a way we do not implement are errors. Reading the file from disk is io/'s job, not this file's.
import type { UnaryOp } from '../engine/backend.js';
import type { RopeScaling } from './rope.js';

/** Hidden activations we implement, by HF name, and the engine op each one is. */
export const activations = { gelu_new: 'gelu', gelu_pytorch_tanh: 'gelu', gelu_fast: 'gelu', relu: 'relu', silu: 'silu', swish: 'silu' } as const satisfies Record<string, UnaryOp>;
export type Activation = keyof typeof activations;

export interface GPT2Config {
  modelType: 'gpt2';
  vocabSize: number; // vocab_size, default 50257
  maxPositions: number; // n_positions: rows of wpe, default 1024
  hiddenSize: number; // n_embd, default 768
  numLayers: number; // n_layer, default 12
  numHeads: number; // n_head, default 12; head dim = n_embd / n_head
  innerSize: number; // n_inner, default (null) 4·n_embd
  activation: Activation; // activation_function, default gelu_new
  layerNormEps: number; // layer_norm_epsilon, default 1e-5
  initializerRange: number; // initializer_range, default 0.02
  scaleAttnWeights: boolean; // scale_attn_weights, default true: scores · 1/√D
  scaleAttnByInverseLayerIdx: boolean; // scale_attn_by_inverse_layer_idx, default false: scores · 1/(layer + 1)
  tieWordEmbeddings: boolean; // tie_word_embeddings, default true: lm_head = wte
}

/** What Llama and Qwen2 share; each adds its own fields below. */
interface DecoderConfig {
  vocabSize: number; // vocab_size
  hiddenSize: number; // hidden_size
  intermediateSize: number; // intermediate_size: SwiGLU width
  numLayers: number; // num_hidden_layers
  numHeads: number; // num_attention_heads
  numKeyValueHeads: number; // num_key_value_heads, default num_attention_heads (no GQA)
  headDim: number; // head_dim, default hidden_size / num_attention_heads
  activation: Activation; // hidden_act, default silu
  maxPositions: number; // max_position_embeddings (informational: RoPE has no table to run out of)
  rmsNormEps: number; // rms_norm_eps, default 1e-6
  ropeTheta: number; // rope_theta, default 10000
  ropeScaling: RopeScaling | null; // rope_scaling, default none
  initializerRange: number; // initializer_range, default 0.02
  tieWordEmbeddings: boolean; // tie_word_embeddings, default false
}

export interface LlamaConfig extends DecoderConfig {
  modelType: 'llama';
  attentionBias: boolean; // attention_bias, default false: biases on q, k, v and o_proj
  mlpBias: boolean; // mlp_bias, default false: biases on gate, up and down_proj
}

/** Qwen2 is Llama with biases on q, k and v_proj (never o_proj or the MLP). Sliding-window attention is rejected. */
export interface Qwen2Config extends DecoderConfig {
  modelType: 'qwen2';
}

/** Every supported architecture's config, by HF model_type. A type added here must be added to every registry. */
export interface ConfigByType {
  gpt2: GPT2Config;
  llama: LlamaConfig;
  qwen2: Qwen2Config;
}
export type ModelType = keyof ConfigByType;
export type ModelConfig = ConfigByType[ModelType];

/** The HF class each model_type loads as; config.json's architectures[0] selects the type when model_type is absent. */
export const hfArchitectures: { [K in ModelType]: string } = { gpt2: 'GPT2LMHeadModel', llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM' };

export const supportedModelTypes = Object.keys(hfArchitectures) as ModelType[];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

// ------------------------------------------------------------------------------------------------ field reader
type Json = Record<string, unknown>;

/**
 * Reads typed fields from a config object; problems are collected, so one error lists them all. A null is absent.
 * An invalid number reads as NaN, and a relation check involving a NaN is skipped (it was reported already).
 */
class Fields {
  readonly problems: string[] = [];
  constructor(readonly raw: Json) {}

  private get(key: string): unknown {
    return this.raw[key] ?? undefined;
  }
  int(key: string, fallback?: number, min = 1): number {
    const v = this.get(key) ?? fallback;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min) return v;
    this.problems.push(v === undefined ? `"${key}" is required` : `"${key}" must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return NaN;
  }
  num(key: string, fallback?: number): number {
    const v = this.get(key) ?? fallback;
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v;
    this.problems.push(v === undefined ? `"${key}" is required` : `"${key}" must be a positive number, got ${JSON.stringify(v)}`);
    return NaN;
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.get(key) ?? fallback;
    if (typeof v === 'boolean') return v;
    this.problems.push(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return fallback;
  }
  activation(key: string, fallback: Activation): Activation {
    const v = this.get(key) ?? fallback;
    if (typeof v === 'string' && Object.hasOwn(activations, v)) return v as Activation;
    this.problems.push(`"${key}" = ${JSON.stringify(v)} is not supported; use one of ${Object.keys(activations).join(', ')}`);
    return fallback;
  }
  /** A key whose only supported value is `ok` (a feature we do not implement otherwise). */
  only(key: string, ok: unknown, why: string): void {
    const v = this.get(key);
    if (v !== undefined && v !== ok) this.problems.push(`"${key}" = ${JSON.stringify(v)} is not supported (${why})`);
  }
  check(cond: boolean, problem: string): void {
    if (!cond) this.problems.push(problem);
  }
  /** A check between fields: skipped when any of `values` is NaN (already reported). */
  relation(values: number[], cond: boolean, problem: string): void {
    if (values.every((v) => !Number.isNaN(v))) this.check(cond, problem);
  }
}

// ------------------------------------------------------------------------------------------------ per architecture
function parseGPT2(f: Fields): GPT2Config {
  const hiddenSize = f.int('n_embd', 768);
  const numHeads = f.int('n_head', 12);
  f.relation([hiddenSize, numHeads], hiddenSize % numHeads === 0, `"n_embd" (${hiddenSize}) must be a multiple of "n_head" (${numHeads})`);
  f.only('add_cross_attention', false, 'GPT2LMHeadModel here is decoder-only');
  return {
    modelType: 'gpt2',
    vocabSize: f.int('vocab_size', 50257),
    maxPositions: f.int('n_positions', 1024),
    hiddenSize,
    numLayers: f.int('n_layer', 12),
    numHeads,
    innerSize: f.int('n_inner', 4 * hiddenSize),
    activation: f.activation('activation_function', 'gelu_new'),
    layerNormEps: f.num('layer_norm_epsilon', 1e-5),
    initializerRange: f.num('initializer_range', 0.02),
    scaleAttnWeights: f.bool('scale_attn_weights', true),
    scaleAttnByInverseLayerIdx: f.bool('scale_attn_by_inverse_layer_idx', false),
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
  };
}

function parseDecoder(f: Fields, defaults: { vocabSize: number; maxPositions: number }): DecoderConfig {
  const hiddenSize = f.int('hidden_size', 4096);
  const numHeads = f.int('num_attention_heads', 32);
  const numKeyValueHeads = f.int('num_key_value_heads', numHeads);
  const explicitHeadDim = f.raw.head_dim != null;
  if (!explicitHeadDim) f.relation([hiddenSize, numHeads], hiddenSize % numHeads === 0, `"hidden_size" (${hiddenSize}) must be a multiple of "num_attention_heads" (${numHeads}) unless "head_dim" is set`);
  const headDim = explicitHeadDim ? f.int('head_dim') : hiddenSize / numHeads;
  f.relation([numHeads, numKeyValueHeads], numHeads % numKeyValueHeads === 0, `"num_attention_heads" (${numHeads}) must be a multiple of "num_key_value_heads" (${numKeyValueHeads})`);
  f.relation([headDim], headDim % 2 === 0, `the head dim (${headDim}) must be even for rotary embeddings`);
  return {
    vocabSize: f.int('vocab_size', defaults.vocabSize),
    hiddenSize,
    intermediateSize: f.int('intermediate_size', 11008),
    numLayers: f.int('num_hidden_layers', 32),
    numHeads,
    numKeyValueHeads,
    headDim,
    activation: f.activation('hidden_act', 'silu'),
    maxPositions: f.int('max_position_embeddings', defaults.maxPositions),
    rmsNormEps: f.num('rms_norm_eps', 1e-6),
    ropeTheta: f.num('rope_theta', 10000),
    ropeScaling: parseRopeScaling(f),
    initializerRange: f.num('initializer_range', 0.02),
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
  };
}

/** rope_scaling: null, or {rope_type (or the older "type"): 'default' | 'linear' | 'llama3', factor, …}. */
function parseRopeScaling(f: Fields): RopeScaling | null {
  const raw = f.raw.rope_scaling;
  if (raw == null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    f.check(false, `"rope_scaling" must be an object or null, got ${JSON.stringify(raw)}`);
    return null;
  }
  const s = new Fields(raw as Json);
  const kind = s.raw.rope_type ?? s.raw.type;
  let out: RopeScaling | null = null;
  if (kind === 'default') out = null;
  else if (kind === 'linear') out = { type: 'linear', factor: s.num('factor') };
  else if (kind === 'llama3') {
    out = {
      type: 'llama3',
      factor: s.num('factor'),
      lowFreqFactor: s.num('low_freq_factor'),
      highFreqFactor: s.num('high_freq_factor'),
      originalMaxPositions: s.int('original_max_position_embeddings'),
    };
    s.relation([out.lowFreqFactor, out.highFreqFactor], out.lowFreqFactor < out.highFreqFactor, `"low_freq_factor" must be below "high_freq_factor"`);
  } else s.check(false, `type ${JSON.stringify(kind)} is not supported; use 'linear' or 'llama3' (or null)`);
  for (const p of s.problems) f.check(false, `"rope_scaling": ${p}`);
  return out;
}

const parsers: { [K in ModelType]: (f: Fields) => ConfigByType[K] } = {
  gpt2: parseGPT2,
  llama(f) {
    const base = parseDecoder(f, { vocabSize: 32000, maxPositions: 2048 });
    return { modelType: 'llama', ...base, attentionBias: f.bool('attention_bias', false), mlpBias: f.bool('mlp_bias', false) };
  },
  qwen2(f) {
    f.only('use_sliding_window', false, 'sliding-window attention is not implemented');
    return { modelType: 'qwen2', ...parseDecoder(f, { vocabSize: 151936, maxPositions: 32768 }) };
  },
};

/** The model_type of a config object: model_type itself, else the type whose HF class is architectures[0]. */
function modelTypeOf(raw: Json, source: string): ModelType {
  const supported = supportedModelTypes.map((t) => `${t} (${hfArchitectures[t]})`).join(', ');
  const mt = raw.model_type;
  if (typeof mt === 'string') {
    if (Object.hasOwn(parsers, mt)) return mt as ModelType;
    throw new ConfigError(`${source}: model_type "${mt}" is not supported; supported model types: ${supported}`);
  }
  const arch = Array.isArray(raw.architectures) ? raw.architectures[0] : undefined;
  const byArch = supportedModelTypes.find((t) => hfArchitectures[t] === arch);
  if (byArch) return byArch;
  throw new ConfigError(`${source}: no model_type, and architectures ${JSON.stringify(raw.architectures ?? null)} names no supported class; supported model types: ${supported}`);
}

/** Parses an HF config.json object (already JSON-decoded). `source` names it in errors, e.g. the file path. */
export function parseModelConfig(raw: unknown, source = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${source}: expected a JSON object, got ${JSON.stringify(raw)}`);
  const json = raw as Json;
  const type = modelTypeOf(json, source);
  const f = new Fields(json);
  const config = parsers[type](f);
  if (f.problems.length > 0) throw new ConfigError(`${source} (${type}): ${f.problems.join('; ')}`);
  return config;
}
