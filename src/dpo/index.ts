// DPO (layer 7): sequence log-probs with the chunked LM head, the loss registry, evaluation with TRL's metric names,
// and per-token rewards for analysis. The trainer and the reference strategies arrive in the next milestone.
export * from './logps.js';
export * from './losses/index.js';
export * from './eval.js';
export * from './token-rewards.js';
export * from './checkpoint.js';
export * from './ref-cache.js';
export * from './trainer.js';
export * from './trainer-config.js';
export * from './sft-data.js';
export * from './reference.js';
export * from './optim.js';
export * from './schedule.js';
