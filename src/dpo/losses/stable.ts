// Numerically stable pieces the losses share, composed from engine primitives so autograd differentiates them:
// log σ(x), softplus, log(1 − eˣ), a capped exp, and the (conservative) logistic loss of a margin.
// Each stays finite, with a finite gradient, for |x| up to at least 1e4 in float32 and float64.
import { abs, add, addScalar, exp, log, minimum, neg, scale, sub, tanh } from '../../engine/ops/index.js';
import { scalar, type Tensor } from '../../engine/tensor.js';

/** A constant (shape []) of x's dtype, broadcast by the binary ops. */
export function constantLike(x: Tensor, value: number): Tensor {
  return scalar(value, x.dtype);
}

/** log σ(x) = min(x, 0) − log(1 + e^−|x|): never exponentiates a positive number. */
export function logSigmoid(x: Tensor): Tensor {
  return sub(minimum(x, constantLike(x, 0)), log(addScalar(exp(neg(abs(x))), 1)));
}

/** softplus(x) = log(1 + eˣ) = −log σ(−x). */
export function softplus(x: Tensor): Tensor {
  return neg(logSigmoid(neg(x)));
}

/**
 * log(1 − eˣ) for x < 0, as log(−2t) − log(1 − t) with t = tanh(x/2) (since eˣ − 1 = 2t / (1 − t)). Unlike
 * log(1 − exp(x)) it keeps full precision as x → 0⁻, where 1 − eˣ cancels; it is −∞ at x = 0.
 */
export function log1mExp(x: Tensor): Tensor {
  const t = tanh(scale(x, 0.5));
  return sub(log(scale(t, -2)), log(addScalar(neg(t), 1)));
}

/** exp(min(x, cap)): the gradient is 0 beyond the cap. */
export function cappedExp(x: Tensor, cap: number): Tensor {
  return exp(minimum(x, constantLike(x, cap)));
}

/**
 * The logistic loss of a margin z with label smoothing ε (conservative DPO, Mitchell 2023):
 * −(1 − ε)·log σ(z) − ε·log σ(−z). ε = 0 is the plain Bradley–Terry negative log-likelihood.
 */
export function conservativeLogistic(z: Tensor, epsilon: number): Tensor {
  const main = scale(logSigmoid(z), -(1 - epsilon));
  return epsilon === 0 ? main : add(main, scale(logSigmoid(neg(z)), -epsilon));
}
