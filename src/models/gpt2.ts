// GPT-2 (Radford et al. 2019) as HF's GPT2LMHeadModel: learned positions (wpe), pre-LayerNorm blocks, a fused
// c_attn projection split into q | k | v, gelu_new, Conv1D weights stored (in, out), and the LM head tied to wte.
// Parameter names are HF's (transformer.h.0.attn.c_attn.weight, …). No dropout: we never train with it.
// Legend: B batch, T tokens, C = n_embd, NH heads, D = C/NH head dim, V vocab.
import { ShapeError } from '../engine/errors.js';
import { add, attention, gather, reshape, slice, unary } from '../engine/ops/index.js';
import type { Rng } from '../engine/random.js';
import { tensor, type Tensor } from '../engine/tensor.js';
import { Conv1D, Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { Module, ModuleList } from '../nn/module.js';
import { activations, type GPT2Config } from './config.js';
import { appendToCache, newKVCache, planCall, projectToVocab, type CallPlan } from './common.js';
import type { CausalLM, ForwardOptions, KVCache } from './types.js';

class GPT2Attention extends Module {
  readonly c_attn: Conv1D; // (C, 3C): q | k | v side by side
  readonly c_proj: Conv1D; // (C, C)
  constructor(private readonly cfg: GPT2Config, private readonly layer: number, rng: Rng) {
    super();
    const std = cfg.initializerRange;
    this.c_attn = this.module('c_attn', new Conv1D(cfg.hiddenSize, 3 * cfg.hiddenSize, { rng, std }));
    // GPT-2's residual projections start smaller, N(0, (range/√(2·n_layer))²), as HF initialises them.
    this.c_proj = this.module('c_proj', new Conv1D(cfg.hiddenSize, cfg.hiddenSize, { rng, std: std / Math.sqrt(2 * cfg.numLayers) }));
  }

  /** x (B, T, C) → (B, T, C). */
  forward(x: Tensor, plan: CallPlan, cache: KVCache | undefined): Tensor {
    const { b, t } = plan;
    const { hiddenSize: c, numHeads: nh } = this.cfg;
    const d = c / nh;
    const qkv = this.c_attn.forward(x); // (B, T, 3C)
    const heads = (i: number) => reshape(slice(qkv, [0, 0, i * c], [b, t, (i + 1) * c]), [b, t, nh, d]); // (B, T, NH, D)
    const [k, v] = appendToCache(cache, this.layer, heads(1), heads(2)); // (B, past + T, NH, D)
    let scale = this.cfg.scaleAttnWeights ? 1 / Math.sqrt(d) : 1;
    if (this.cfg.scaleAttnByInverseLayerIdx) scale /= this.layer + 1;
    const y = attention(heads(0), k, v, { mask: plan.mask, scale }); // (B, T, NH, D)
    return this.c_proj.forward(reshape(y, [b, t, c]));
  }
}

class GPT2MLP extends Module {
  readonly c_fc: Conv1D; // (C, inner)
  readonly c_proj: Conv1D; // (inner, C)
  constructor(private readonly cfg: GPT2Config, rng: Rng) {
    super();
    const std = cfg.initializerRange;
    this.c_fc = this.module('c_fc', new Conv1D(cfg.hiddenSize, cfg.innerSize, { rng, std }));
    this.c_proj = this.module('c_proj', new Conv1D(cfg.innerSize, cfg.hiddenSize, { rng, std: std / Math.sqrt(2 * cfg.numLayers) }));
  }
  forward(x: Tensor): Tensor {
    return this.c_proj.forward(unary(activations[this.cfg.activation], this.c_fc.forward(x)));
  }
}

class GPT2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: GPT2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: GPT2MLP;
  constructor(cfg: GPT2Config, layer: number, rng: Rng) {
    super();
    this.ln_1 = this.module('ln_1', new LayerNorm(cfg.hiddenSize, cfg.layerNormEps));
    this.attn = this.module('attn', new GPT2Attention(cfg, layer, rng));
    this.ln_2 = this.module('ln_2', new LayerNorm(cfg.hiddenSize, cfg.layerNormEps));
    this.mlp = this.module('mlp', new GPT2MLP(cfg, rng));
  }
  /** Pre-norm residual block: x + attn(ln_1(x)), then + mlp(ln_2(·)). (B, T, C) → (B, T, C). */
  forward(x: Tensor, plan: CallPlan, cache: KVCache | undefined): Tensor {
    const h = add(x, this.attn.forward(this.ln_1.forward(x), plan, cache));
    return add(h, this.mlp.forward(this.ln_2.forward(h)));
  }
}

class GPT2Model extends Module {
  readonly wte: Embedding; // (V, C)
  readonly wpe: Embedding; // (n_positions, C)
  readonly h: ModuleList<GPT2Block>;
  readonly ln_f: LayerNorm;
  constructor(cfg: GPT2Config, rng: Rng) {
    super();
    const std = cfg.initializerRange;
    this.wte = this.module('wte', new Embedding(cfg.vocabSize, cfg.hiddenSize, { rng, std }));
    this.wpe = this.module('wpe', new Embedding(cfg.maxPositions, cfg.hiddenSize, { rng, std }));
    this.h = this.module('h', new ModuleList(Array.from({ length: cfg.numLayers }, (_, i) => new GPT2Block(cfg, i, rng))));
    this.ln_f = this.module('ln_f', new LayerNorm(cfg.hiddenSize, cfg.layerNormEps));
  }
}

export class GPT2LMHeadModel extends Module implements CausalLM {
  readonly modelType = 'gpt2';
  readonly transformer: GPT2Model;
  /** Only when tie_word_embeddings is false (never for released GPT-2 checkpoints). */
  readonly lm_head: Linear | null;

  /** Weights are N(0, initializer_range²) from `rng` (residual projections scaled down), biases 0, norms 1. */
  constructor(readonly config: GPT2Config, rng: Rng) {
    super();
    this.transformer = this.module('transformer', new GPT2Model(config, rng));
    this.lm_head = config.tieWordEmbeddings ? null : this.module('lm_head', new Linear(config.hiddenSize, config.vocabSize, false, { rng, std: config.initializerRange }));
  }

  get vocabSize(): number { return this.config.vocabSize; }
  get hiddenSize(): number { return this.config.hiddenSize; }
  get numLayers(): number { return this.config.numLayers; }
  get maxPositions(): number { return this.config.maxPositions; }
  /** (V, C): wte when tied. */
  get lmHeadWeight(): Tensor { return this.lm_head?.weight ?? this.transformer.wte.weight; }

  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const plan = planCall('GPT2LMHeadModel.forward', this.numLayers, ids, opts);
    const tooFar = plan.positions.findIndex((p) => p >= this.maxPositions);
    if (tooFar >= 0) {
      throw new ShapeError('GPT2LMHeadModel.forward', `position ${plan.positions[tooFar]} (row ${Math.floor(tooFar / plan.t)}) is past n_positions = ${this.maxPositions}; shorten the sequence`);
    }
    const tr = this.transformer;
    const positions = tensor(plan.positions, [plan.b, plan.t], 'int32');
    let x = add(tr.wte.forward(ids), gather(tr.wpe.weight, positions)); // (B, T, C)
    for (const block of tr.h.items) x = block.forward(x, plan, opts.cache);
    if (opts.cache) opts.cache.length = plan.past + plan.t;
    return tr.ln_f.forward(x);
  }

  logits(hidden: Tensor): Tensor {
    return projectToVocab(hidden, this.lmHeadWeight);
  }

  newCache(): KVCache {
    return newKVCache(this.numLayers);
  }
}
