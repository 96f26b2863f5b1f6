// Optimizers over a model's named parameters: AdamW (torch.optim.AdamW semantics, fused kernel) and plain SGD.
// Their state (moments and step count) can be exported as named tensors for checkpoints and restored exactly.
import { adamwUpdate, sgdUpdate } from '../engine/optim.js';
import { zeros, type Tensor } from '../engine/tensor.js';

export const optimizerTypes = ['adamw', 'sgd'] as const;
export type OptimizerType = (typeof optimizerTypes)[number];

export interface OptimizerOptions {
  type: OptimizerType;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
}

export interface Optimizer {
  /** Optimizer steps taken so far. */
  readonly steps: number;
  /** Applies one update with the given learning rate from each parameter's .grad (parameters without one are skipped). */
  step(lr: number): void;
  /** Named state tensors (e.g. `exp_avg.<param>`), for checkpoints. */
  stateTensors(): Map<string, Tensor>;
  /** Restores state saved by stateTensors() and the step count. */
  loadState(tensors: Map<string, { data: ArrayLike<number> }>, steps: number): void;
}

export function createOptimizer(params: [string, Tensor][], o: OptimizerOptions): Optimizer {
  return o.type === 'adamw' ? new AdamW(params, o) : new Sgd(params, o);
}

class AdamW implements Optimizer {
  steps = 0;
  private readonly m = new Map<string, Tensor>();
  private readonly v = new Map<string, Tensor>();
  constructor(private readonly params: [string, Tensor][], private readonly o: OptimizerOptions) {
    for (const [name, p] of params) {
      this.m.set(name, zeros(p.shape, p.dtype).keep());
      this.v.set(name, zeros(p.shape, p.dtype).keep());
    }
  }
  step(lr: number): void {
    this.steps++;
    for (const [name, p] of this.params) {
      if (!p.grad) continue;
      adamwUpdate(p, p.grad, this.m.get(name)!, this.v.get(name)!, {
        lr, beta1: this.o.beta1, beta2: this.o.beta2, eps: this.o.eps, weightDecay: this.o.weightDecay, step: this.steps,
      });
    }
  }
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name] of this.params) {
      out.set(`exp_avg.${name}`, this.m.get(name)!);
      out.set(`exp_avg_sq.${name}`, this.v.get(name)!);
    }
    return out;
  }
  loadState(tensors: Map<string, { data: ArrayLike<number> }>, steps: number): void {
    for (const [name] of this.params) {
      for (const [key, dst] of [[`exp_avg.${name}`, this.m.get(name)!], [`exp_avg_sq.${name}`, this.v.get(name)!]] as const) {
        const src = tensors.get(key);
        if (!src || src.data.length !== dst.size) throw new Error(`optimizer state: '${key}' is missing or has the wrong size; the checkpoint does not match this model`);
        const d = dst.data;
        for (let i = 0; i < d.length; i++) d[i] = src.data[i];
      }
    }
    this.steps = steps;
  }
}

class Sgd implements Optimizer {
  steps = 0;
  constructor(private readonly params: [string, Tensor][], private readonly o: OptimizerOptions) {}
  step(lr: number): void {
    this.steps++;
    for (const [, p] of this.params) {
      if (!p.grad) continue;
      if (this.o.weightDecay !== 0) {
        // torch.optim.SGD's weight decay: g ← g + wd·p (L2 on the gradient, not decoupled).
        const g = p.grad.data;
        const w = p.data;
        for (let i = 0; i < g.length; i++) g[i] += this.o.weightDecay * w[i];
      }
      sgdUpdate(p, p.grad, lr);
    }
  }
  stateTensors(): Map<string, Tensor> {
    return new Map();
  }
  loadState(_tensors: Map<string, { data: ArrayLike<number> }>, steps: number): void {
    this.steps = steps;
  }
}

/**
 * Global gradient norm √(Σ g²) over all parameters (accumulated in float64), and, when maxNorm > 0 and the norm
 * exceeds it, scales every gradient by maxNorm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_ does.
 * Returns the norm before clipping (TRL logs it as grad_norm).
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  const grads: Tensor[] = [];
  let sq = 0;
  for (const p of params) {
    if (!p.grad) continue;
    grads.push(p.grad);
    const g = p.grad.data;
    for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
  }
  const norm = Math.sqrt(sq);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const g of grads) {
      const d = g.data;
      for (let i = 0; i < d.length; i++) d[i] *= s;
    }
  }
  return norm;
}
