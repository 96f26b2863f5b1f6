// The basic layers, with torch's parameter names and layouts: Linear (weight (out, in)), GPT-2's Conv1D
// (weight (in, out)), Embedding (weight (V, C)), LayerNorm (weight, bias) and RMSNorm (weight).
import { Rng, randn } from '../engine/random.js';
import { gather, layerNorm, linear, rmsNorm } from '../engine/ops/index.js';
import { full, zeros, type Tensor } from '../engine/tensor.js';
import type { FloatDType } from '../engine/dtype.js';
import { Module } from './module.js';

/** Initialisation: N(0, std²) weights (GPT-2 and Llama both use std 0.02 by default), zero biases. */
export interface InitOptions {
  rng: Rng;
  std?: number;
  /** Parameter dtype: float32 for training, float64 for exact checks. */
  dtype?: FloatDType;
}

export class Linear extends Module {
  readonly weight: Tensor; // (out, in)
  readonly bias: Tensor | null; // (out)
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias: boolean, init: InitOptions) {
    super();
    this.weight = this.param('weight', randn([outFeatures, inFeatures], init.rng, init.std ?? 0.02, 0, init.dtype));
    this.bias = bias ? this.param('bias', zeros([outFeatures], init.dtype)) : null;
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** GPT-2's Conv1D: a linear layer whose weight is stored (in, out), y = x·W + b. */
export class Conv1D extends Module {
  readonly weight: Tensor; // (in, out)
  readonly bias: Tensor; // (out)
  constructor(readonly inFeatures: number, readonly outFeatures: number, init: InitOptions) {
    super();
    this.weight = this.param('weight', randn([inFeatures, outFeatures], init.rng, init.std ?? 0.02, 0, init.dtype));
    this.bias = this.param('bias', zeros([outFeatures], init.dtype));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias, true);
  }
}

export class Embedding extends Module {
  readonly weight: Tensor; // (V, C)
  constructor(readonly numEmbeddings: number, readonly dim: number, init: InitOptions) {
    super();
    this.weight = this.param('weight', randn([numEmbeddings, dim], init.rng, init.std ?? 0.02, 0, init.dtype));
  }
  /** int32 ids of any shape → ids.shape + [C]. */
  forward(ids: Tensor): Tensor {
    return gather(this.weight, ids);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-5, dtype: FloatDType = 'float32') {
    super();
    this.weight = this.param('weight', full([dim], 1, dtype));
    this.bias = this.param('bias', zeros([dim], dtype));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-6, dtype: FloatDType = 'float32') {
    super();
    this.weight = this.param('weight', full([dim], 1, dtype));
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}
