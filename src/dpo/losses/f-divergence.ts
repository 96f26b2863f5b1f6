// f-DPO, Wang et al. 2023, "Beyond Reverse KL" (arXiv 2309.16240): with an f-divergence regulariser the
// implicit reward is β·f'(u), u = π_θ(y)/π_ref(y), so the loss is −logσ(β·[f'(u_w) − f'(u_l)]) (here with cDPO's
// label smoothing ε, as TRL applies it). reverse_kl (f' = log u + 1) is DPO. Rewards are β·log u, detached.
import { scale, sub } from '../../engine/ops/index.js';
import type { Tensor } from '../../engine/tensor.js';
import { impliedRewards, referenceLogratios } from './logratios.js';
import { cappedExp, conservativeLogistic, softplus } from './stable.js';
import type { LossFn, LossOptions, PreferenceLogps } from './types.js';

/**
 * Cap on the exponent of u^−α = exp(−α·log u). Only reached when |α·log u| > 50, far outside training's range;
 * it keeps the loss and its gradient finite in float32. TRL caps at ln(float max), where the loss or its gradient
 * can still overflow (e.g. for α < 1).
 */
export const ALPHA_EXPONENT_CAP = 50;

type FPrimeMargin = (logratioChosen: Tensor, logratioRejected: Tensor, opts: LossOptions) => Tensor;

function fDivergenceLoss(name: string, margin: FPrimeMargin): LossFn {
  return (lp: PreferenceLogps, o: LossOptions) => {
    const lr = referenceLogratios(lp, name);
    const z = scale(margin(lr.chosen, lr.rejected, o), o.beta);
    return { losses: conservativeLogistic(z, o.labelSmoothing), ...impliedRewards(o.beta, lr.chosen, lr.rejected) };
  };
}

/** f'(u_w) − f'(u_l) for f'(u) = (1 − u^−α)/α: (u_l^−α − u_w^−α)/α. */
function alphaMargin(chosen: Tensor, rejected: Tensor, alpha: number): Tensor {
  const powChosen = cappedExp(scale(chosen, -alpha), ALPHA_EXPONENT_CAP);
  const powRejected = cappedExp(scale(rejected, -alpha), ALPHA_EXPONENT_CAP);
  return scale(sub(powRejected, powChosen), 1 / alpha);
}

/** Reverse KL, f(u) = u·log u, f'(u) = log u + 1: the margin is h, exactly DPO's sigmoid loss. */
export const reverseKlLoss = fDivergenceLoss('reverse_kl', (chosen, rejected) => sub(chosen, rejected));

/** Forward KL, f(u) = −log u, f'(u) = −1/u: the margin is 1/u_l − 1/u_w (the α-divergence at α = 1). */
export const forwardKlLoss = fDivergenceLoss('forward_kl', (chosen, rejected) => alphaMargin(chosen, rejected, 1));

/**
 * Jensen–Shannon, f(u) = u·log u − (u + 1)·log((u + 1)/2), f'(u) = log(2u/(1 + u)):
 * the margin is h − (softplus(log u_w) − softplus(log u_l)).
 */
export const jsDivergenceLoss = fDivergenceLoss('js_divergence', (chosen, rejected) =>
  sub(sub(chosen, rejected), sub(softplus(chosen), softplus(rejected))));

/** α-divergence, f(u) = (u^(1−α) − (1−α)·u − α)/(α(α−1)), f'(u) = (1 − u^−α)/α, α = fAlphaDivergenceCoef. */
export const alphaDivergenceLoss = fDivergenceLoss('alpha_divergence', (chosen, rejected, o) =>
  alphaMargin(chosen, rejected, o.fAlphaDivergenceCoef));
