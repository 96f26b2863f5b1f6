// The token-level claims (b.1–b.8) on seeded token trees: soft Bellman π* is the sequence-level optimum, the per-token
// identity β·log π*/π_ref = r + V*(s′) − V*(s), its telescoping sum, and the equality of the sequence-level DPO loss
// with the token-level Bradley–Terry loss (Rafailov et al. 2024, arXiv 2404.12358). Every check is exhaustive
// over states and completions; only the pairs of completions are sampled.
import { childRng, claim, logSigmoid, type Claim } from './numeric.js';
import {
  completions, makeTokenTree, optimalTokenPolicy, randomTokenPolicy, sequenceLogProb, sequenceOptimum, softValues,
  summedReward, tokenLogRatios, type Completion, type TokenPolicy, type TokenTree,
} from './token-mdp.js';

export const tokenSettings = {
  prompts: 2, // one tree per prompt
  depth: 4, // tokens per completion
  minTokens: 3, // tokens available at each state: a seeded count in [minTokens, maxTokens]
  maxTokens: 5,
  betas: [0.1, 0.5, 2],
  pairs: 300, // random pairs (y_w, y_l) of distinct completions per prompt, β and policy
};
export type TokenSettings = typeof tokenSettings;

/** Running maxima, one per claim. */
class Worst {
  readonly values = new Map<string, number>();
  add(key: string, v: number): void {
    this.values.set(key, Math.max(this.values.get(key) ?? -Infinity, Number.isNaN(v) ? Infinity : v));
  }
  get(key: string): number {
    return this.values.get(key) ?? NaN;
  }
}

const relativeError = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), Number.MIN_VALUE);

/** −log σ(β·(log π(y_w)/π_ref(y_w) − log π(y_l)/π_ref(y_l))) from sequence probabilities. */
function sequenceDpoLoss(policy: TokenPolicy, reference: TokenPolicy, yw: Completion, yl: Completion, beta: number): number {
  const margin = (sequenceLogProb(policy, yw) - sequenceLogProb(reference, yw)) - (sequenceLogProb(policy, yl) - sequenceLogProb(reference, yl));
  return -logSigmoid(beta * margin);
}

/** The same loss as a Bradley–Terry loss on summed per-token rewards β·log π(a|s)/π_ref(a|s). */
function tokenBradleyTerryLoss(tree: TokenTree, policy: TokenPolicy, yw: Completion, yl: Completion, beta: number): number {
  const tokenReturn = (y: Completion) => tokenLogRatios(tree, policy, y).reduce((sum, l) => sum + beta * l, 0);
  return -logSigmoid(tokenReturn(yw) - tokenReturn(yl));
}

export function tokenClaims(seed: number, s: TokenSettings = tokenSettings): Claim[] {
  const worst = new Worst();
  let completionCount = 0;
  let stateCount = 0;
  for (let prompt = 0; prompt < s.prompts; prompt++) {
    const rng = childRng(seed, 3000 + prompt);
    const tree = makeTokenTree(rng, s.depth, s.minTokens, s.maxTokens);
    const reference: TokenPolicy = tree.states.map((st) => st.refProbs);
    const ys = completions(tree);
    completionCount += ys.length;
    stateCount += tree.states.length;
    const randomPolicy = randomTokenPolicy(rng, tree);
    for (const beta of s.betas) {
      const values = softValues(tree, beta);
      const policy = optimalTokenPolicy(tree, values, beta);
      const optimum = sequenceOptimum(tree, ys, beta);
      // b.1: π*(·|s) is a distribution at every non-terminal state.
      for (const row of policy) if (row.length > 0) worst.add('b.1', Math.abs(row.reduce((a, b) => a + b, 0) - 1));
      // b.2: V*(s₀) = β·log Z.
      worst.add('b.2', Math.abs(values.V[0] - beta * optimum.logZ));
      ys.forEach((y, i) => {
        // b.3: the token-level π* gives each completion its sequence-level probability π_ref(y)·exp(R(y)/β)/Z.
        worst.add('b.3', Math.abs(sequenceLogProb(policy, y) - Math.log(optimum.probs[i])));
        // b.6: Σ_t β·log π*/π_ref = R(y) − V*(s₀).
        const tokenSum = tokenLogRatios(tree, policy, y).reduce((sum, l) => sum + beta * l, 0);
        worst.add('b.6', Math.abs(tokenSum - (summedReward(tree, y) - values.V[0])));
      });
      tree.states.forEach((state, st) => state.next.forEach((child, a) => {
        // b.4: per-token identity, with π*(a|s) the conditional of the enumerated sequence-level optimum.
        const implicit = beta * Math.log(optimum.conditionals[st][a] / state.refProbs[a]);
        worst.add('b.4', Math.abs(implicit - (state.rewards[a] + values.V[child] - values.V[st])));
        // b.5: without the potentials V*(s′) − V*(s) it fails.
        worst.add('b.5', Math.abs(implicit - state.rewards[a]));
      }));
      for (let n = 0; n < s.pairs; n++) {
        const w = rng.int(ys.length);
        const l = (w + 1 + rng.int(ys.length - 1)) % ys.length; // a different completion
        const [yw, yl] = [ys[w], ys[l]];
        // b.7: sequence-level DPO loss = token-level Bradley–Terry loss, for a random π and for π*.
        for (const pi of [randomPolicy, policy]) {
          worst.add('b.7', relativeError(tokenBradleyTerryLoss(tree, pi, yw, yl, beta), sequenceDpoLoss(pi, reference, yw, yl, beta)));
        }
        // b.8: at π*, the DPO margin is the reward difference R(y_w) − R(y_l): V*(s₀) cancels.
        const margin = beta * (tokenLogRatios(tree, policy, yw).reduce((a, b) => a + b, 0) - tokenLogRatios(tree, policy, yl).reduce((a, b) => a + b, 0));
        worst.add('b.8', Math.abs(margin - (summedReward(tree, yw) - summedReward(tree, yl))));
      }
    }
  }
  return [
    claim('b.1', `π*(·|s) = π_ref·exp((Q* − V*)/β) sums to 1 at all ${stateCount} states (max |Σ − 1|)`, worst.get('b.1'), '≤', 1e-12),
    claim('b.2', 'V*(s₀) = β·log Σ_y π_ref(y)·exp(R(y)/β), by enumeration (max abs error)', worst.get('b.2'), '≤', 1e-12),
    claim('b.3', `Π_t π*(a_t|s_t) = π_ref(y)·exp(R(y)/β)/Z for all ${completionCount} completions (max |Δ log-prob|)`, worst.get('b.3'), '≤', 1e-12),
    claim('b.4', 'β·log π*(a|s)/π_ref(a|s) = r(s,a) + V*(s′) − V*(s) at every (s,a); π* = sequence optimum\'s conditional', worst.get('b.4'), '≤', 1e-12),
    claim('b.5', 'the potentials are needed: max |β·log π*(a|s)/π_ref(a|s) − r(s,a)|', worst.get('b.5'), '≥', 1e-2),
    claim('b.6', 'Σ_t β·log π*/π_ref along y = R(y) − V*(s₀) for every completion (max abs error)', worst.get('b.6'), '≤', 1e-12),
    claim('b.7', `sequence DPO loss = token-level BT loss, random π and π*, ${s.pairs} pairs/tree/β (max rel. error)`, worst.get('b.7'), '≤', 1e-12),
    claim('b.8', 'at π*, the DPO margin β·Δ log π/π_ref = R(y_w) − R(y_l): V*(s₀) cancels (max abs error)', worst.get('b.8'), '≤', 1e-12),
  ];
}
