// Llama (Touvron et al. 2023) as HF's LlamaForCausalLM, and Qwen2ForCausalLM, which is the same network with biases
// on q, k and v_proj: RMSNorm pre-norm blocks, rotary positions (rope_theta, rope_scaling), grouped-query attention,
// a SwiGLU MLP (down(silu(gate(x)) · up(x))) and an lm_head that may be tied to embed_tokens. HF parameter names.
// Legend: B batch, T tokens, C hidden, H query heads, KVH key/value heads, D head dim (may differ from C/H), I MLP width.
import { add, attention, mul, reshape, rope, unary } from '../engine/ops/index.js';
import type { Rng } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';
import { Embedding, Linear, RMSNorm } from '../nn/layers.js';
import { Module, ModuleList } from '../nn/module.js';
import { activations, type LlamaConfig, type Qwen2Config } from './config.js';
import { appendToCache, newKVCache, planCall, projectToVocab, type CallPlan } from './common.js';
import { ropeInverseFrequencies, ropeTables } from './rope.js';
import type { CausalLM, ForwardOptions, KVCache } from './types.js';

export type LlamaFamilyConfig = LlamaConfig | Qwen2Config;

/** Which projections carry a bias: Llama's attention_bias covers q, k, v and o; Qwen2 always biases q, k, v only. */
function projectionBiases(cfg: LlamaFamilyConfig): { qkv: boolean; o: boolean; mlp: boolean } {
  switch (cfg.modelType) {
    case 'llama': return { qkv: cfg.attentionBias, o: cfg.attentionBias, mlp: cfg.mlpBias };
    case 'qwen2': return { qkv: true, o: false, mlp: false };
    default: return cfg satisfies never;
  }
}

/** Per-call inputs every layer shares. */
interface LayerContext {
  plan: CallPlan;
  cos: Tensor; // (B, T, D/2)
  sin: Tensor; // (B, T, D/2)
  cache: KVCache | undefined;
}

class LlamaAttention extends Module {
  readonly q_proj: Linear; // (H·D, C)
  readonly k_proj: Linear; // (KVH·D, C)
  readonly v_proj: Linear; // (KVH·D, C)
  readonly o_proj: Linear; // (C, H·D)
  constructor(private readonly cfg: LlamaFamilyConfig, private readonly layer: number, rng: Rng) {
    super();
    const { hiddenSize: c, numHeads: h, numKeyValueHeads: kvh, headDim: d } = cfg;
    const bias = projectionBiases(cfg);
    const init = { rng, std: cfg.initializerRange };
    this.q_proj = this.module('q_proj', new Linear(c, h * d, bias.qkv, init));
    this.k_proj = this.module('k_proj', new Linear(c, kvh * d, bias.qkv, init));
    this.v_proj = this.module('v_proj', new Linear(c, kvh * d, bias.qkv, init));
    this.o_proj = this.module('o_proj', new Linear(h * d, c, bias.o, init));
  }

  /** x (B, T, C) → (B, T, C). Query head h reads KV head ⌊h / (H/KVH)⌋ (HF's repeat_kv), done inside attention. */
  forward(x: Tensor, ctx: LayerContext): Tensor {
    const { b, t } = ctx.plan;
    const { numHeads: h, numKeyValueHeads: kvh, headDim: d } = this.cfg;
    const q = rope(reshape(this.q_proj.forward(x), [b, t, h, d]), ctx.cos, ctx.sin); // (B, T, H, D)
    const kNew = rope(reshape(this.k_proj.forward(x), [b, t, kvh, d]), ctx.cos, ctx.sin); // (B, T, KVH, D)
    const vNew = reshape(this.v_proj.forward(x), [b, t, kvh, d]);
    const [k, v] = appendToCache(ctx.cache, this.layer, kNew, vNew); // (B, past + T, KVH, D)
    const y = attention(q, k, v, { mask: ctx.plan.mask }); // (B, T, H, D), scale 1/√D
    return this.o_proj.forward(reshape(y, [b, t, h * d]));
  }
}

class LlamaMLP extends Module {
  readonly gate_proj: Linear; // (I, C)
  readonly up_proj: Linear; // (I, C)
  readonly down_proj: Linear; // (C, I)
  constructor(private readonly cfg: LlamaFamilyConfig, rng: Rng) {
    super();
    const { hiddenSize: c, intermediateSize: i } = cfg;
    const bias = projectionBiases(cfg).mlp;
    const init = { rng, std: cfg.initializerRange };
    this.gate_proj = this.module('gate_proj', new Linear(c, i, bias, init));
    this.up_proj = this.module('up_proj', new Linear(c, i, bias, init));
    this.down_proj = this.module('down_proj', new Linear(i, c, bias, init));
  }
  /** SwiGLU (Shazeer 2020): down(act(gate(x)) · up(x)), act = silu for every released checkpoint. */
  forward(x: Tensor): Tensor {
    const gated = mul(unary(activations[this.cfg.activation], this.gate_proj.forward(x)), this.up_proj.forward(x)); // (B, T, I)
    return this.down_proj.forward(gated);
  }
}

class LlamaDecoderLayer extends Module {
  readonly input_layernorm: RMSNorm;
  readonly self_attn: LlamaAttention;
  readonly post_attention_layernorm: RMSNorm;
  readonly mlp: LlamaMLP;
  constructor(cfg: LlamaFamilyConfig, layer: number, rng: Rng) {
    super();
    this.input_layernorm = this.module('input_layernorm', new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps));
    this.self_attn = this.module('self_attn', new LlamaAttention(cfg, layer, rng));
    this.post_attention_layernorm = this.module('post_attention_layernorm', new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps));
    this.mlp = this.module('mlp', new LlamaMLP(cfg, rng));
  }
  /** (B, T, C) → (B, T, C): x + attn(norm(x)), then + mlp(norm(·)). */
  forward(x: Tensor, ctx: LayerContext): Tensor {
    const h = add(x, this.self_attn.forward(this.input_layernorm.forward(x), ctx));
    return add(h, this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }
}

class LlamaModel extends Module {
  readonly embed_tokens: Embedding; // (V, C)
  readonly layers: ModuleList<LlamaDecoderLayer>;
  readonly norm: RMSNorm;
  constructor(cfg: LlamaFamilyConfig, rng: Rng) {
    super();
    this.embed_tokens = this.module('embed_tokens', new Embedding(cfg.vocabSize, cfg.hiddenSize, { rng, std: cfg.initializerRange }));
    this.layers = this.module('layers', new ModuleList(Array.from({ length: cfg.numLayers }, (_, i) => new LlamaDecoderLayer(cfg, i, rng))));
    this.norm = this.module('norm', new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps));
  }
}

export class LlamaForCausalLM extends Module implements CausalLM {
  readonly model: LlamaModel;
  /** (V, C); absent when tie_word_embeddings, and the head is embed_tokens. */
  readonly lm_head: Linear | null;
  /** (D/2) rotary inverse frequencies, rope_scaling applied. */
  readonly ropeInvFreq: Float64Array;

  /** Weights are N(0, initializer_range²) from `rng`, biases 0, norms 1 (HF's _init_weights). */
  constructor(readonly config: LlamaFamilyConfig, rng: Rng) {
    super();
    this.model = this.module('model', new LlamaModel(config, rng));
    this.lm_head = config.tieWordEmbeddings ? null : this.module('lm_head', new Linear(config.hiddenSize, config.vocabSize, false, { rng, std: config.initializerRange }));
    this.ropeInvFreq = ropeInverseFrequencies(config.headDim, config.ropeTheta, config.ropeScaling);
  }

  get modelType(): LlamaFamilyConfig['modelType'] { return this.config.modelType; }
  get vocabSize(): number { return this.config.vocabSize; }
  get hiddenSize(): number { return this.config.hiddenSize; }
  get numLayers(): number { return this.config.numLayers; }
  get maxPositions(): number { return this.config.maxPositions; }
  /** (V, C): embed_tokens when tied. */
  get lmHeadWeight(): Tensor { return this.lm_head?.weight ?? this.model.embed_tokens.weight; }

  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const plan = planCall(`${this.constructor.name}.forward`, this.numLayers, ids, opts);
    const dtype = this.model.embed_tokens.weight.dtype === 'float64' ? 'float64' : 'float32';
    const { cos, sin } = ropeTables(this.ropeInvFreq, plan.positions, plan.b, plan.t, dtype);
    const ctx: LayerContext = { plan, cos, sin, cache: opts.cache };
    let x = this.model.embed_tokens.forward(ids); // (B, T, C)
    for (const layer of this.model.layers.items) x = layer.forward(x, ctx);
    if (opts.cache) opts.cache.length = plan.past + plan.t;
    return this.model.norm.forward(x);
  }

  logits(hidden: Tensor): Tensor {
    return projectToVocab(hidden, this.lmHeadWeight);
  }

  newCache(): KVCache {
    return newKVCache(this.numLayers);
  }
}

/** Qwen2ForCausalLM: LlamaForCausalLM with a Qwen2 config (q/k/v biases); its own class so errors name it. */
export class Qwen2ForCausalLM extends LlamaForCausalLM {
  constructor(config: Qwen2Config, rng: Rng) {
    super(config, rng);
  }
}
