// The DPO loss family: the registry (losses, lossTypes, computeLoss, …), its contract types, the stable numerics,
// and the log-prob-side helpers for LD-DPO and WPO that dpo/logps calls. See docs/losses.md for the table.
export * from './types.js';
export * from './registry.js';
export { logSigmoid, softplus, log1mExp, conservativeLogistic } from './stable.js';
export { updateRunningMean } from './anchored.js';
export { ldDpoLogps, ldDpoSharedLengths } from './ld-dpo.js';
export { wpoTokenLogNormalizer, wpoWeights } from './wpo.js';
