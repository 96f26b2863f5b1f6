// On-policy preference optimisation: judges that score completions or prefer one of two.
export * from './judges.js';
export * from './http-judge.js';
export * from './reward-model-judge.js';
export * from './local-judge.js';
export * from './rso.js';
export * from './rso-run.js';
export * from './winrate.js';
export * from './prompts.js';
export * from './sample.js';
export * from './oaif.js';
export * from './cringe.js';
export * from './iterate.js';
