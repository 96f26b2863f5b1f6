// theory/: exact small worlds where π* is known in closed form (a bandit and a token-level tree MDP), the DPO facts
// checked on them, and runTheory, which `dpo theory` prints and test/theory.test.ts asserts. Plain float64 arrays only.
import { banditClaims, banditSettings, type BanditSettings, type CurvePoint } from './claims-bandit.js';
import { tokenClaims, tokenSettings, type TokenSettings } from './claims-token.js';
import type { Claim } from './numeric.js';

export * from './numeric.js';
export * from './bandit.js';
export * from './bandit-dpo.js';
export * from './token-mdp.js';
export { banditClaims, banditSettings, sampledCurve, type BanditResults, type BanditSettings, type CurvePoint } from './claims-bandit.js';
export { tokenClaims, tokenSettings, type TokenSettings } from './claims-token.js';

export interface TheoryReport {
  seed: number;
  claims: Claim[]; // a.* (bandit) then b.* (token MDP)
  curve: CurvePoint[]; // a.iii: TV(π_N, π*) against N
  regulariser: string; // what keeps finite-data DPO finite in a.iii
  pass: boolean; // every claim holds
}

/** Runs every claim on worlds drawn from `seed`. */
export function runTheory(seed: number, settings: { bandit?: BanditSettings; token?: TokenSettings } = {}): TheoryReport {
  const bandit = banditClaims(seed, settings.bandit ?? banditSettings);
  const claims = [...bandit.claims, ...tokenClaims(seed, settings.token ?? tokenSettings)];
  return { seed, claims, curve: bandit.curve, regulariser: bandit.regulariser, pass: claims.every((c) => c.pass) };
}
