// In-place optimizer updates on leaf tensors (not recorded by autograd). The optimizer classes with their state and
// schedules live in dpo/optim; these are the checked entry points to the backend's fused update kernels.
import { ShapeError, fmtShape } from './errors.js';
import { sameShape } from './ops/util.js';
import { getBackend, Tensor } from './tensor.js';

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count, for bias correction. */
  step: number;
}

/** One AdamW update of param from grad, with moment buffers m and v (same shape and dtype), as torch.optim.AdamW. */
export function adamwUpdate(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, h: AdamWHyper): void {
  for (const [name, t] of [['grad', grad], ['m', m], ['v', v]] as const) {
    if (!sameShape(t.shape, param.shape) || t.dtype !== param.dtype) {
      throw new ShapeError('adamw', `${name} ${fmtShape(t.shape)} ${t.dtype} must match param ${fmtShape(param.shape)} ${param.dtype}`);
    }
  }
  getBackend().adamw(param.floatData('adamw'), grad.floatData('adamw'), m.floatData('adamw'), v.floatData('adamw'), h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, h.step);
}

/** param −= lr · grad, in place. */
export function sgdUpdate(param: Tensor, grad: Tensor, lr: number): void {
  if (!sameShape(grad.shape, param.shape) || grad.dtype !== param.dtype) {
    throw new ShapeError('sgd', `grad ${fmtShape(grad.shape)} ${grad.dtype} must match param ${fmtShape(param.shape)} ${param.dtype}`);
  }
  const p = param.floatData('sgd');
  getBackend().binary('sub', p, p, scaled(grad, lr), [p.length], [1], [1]);
}

function scaled(t: Tensor, s: number) {
  const out = t.dtype === 'float64' ? new Float64Array(t.size) : new Float32Array(t.size);
  getBackend().affine(out, t.data, s, 0);
  return out;
}
