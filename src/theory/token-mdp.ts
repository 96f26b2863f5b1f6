// The token-level MDP of "From r to Q*" (Rafailov et al. 2024, arXiv 2404.12358): a tree whose state is the prefix,
// a token a moves s to s′ = s·a, and every state at depth D is terminal. Per-token rewards r(s,a) and π_ref(a|s) are
// seeded. Soft Q*/V* come from backward induction; π* and its sequence-level counterpart are enumerated exactly.
// Not here: the claims checked on it (claims-token.ts).
import type { Rng } from '../engine/random.js';
import { logSumExp, softmax } from './numeric.js';

/** One prefix. Terminal states (depth D) have no tokens. */
export interface TreeState {
  depth: number;
  next: number[]; // (A_s,) index of s′ = s·a for each token a
  refProbs: number[]; // (A_s,) π_ref(a|s)
  rewards: number[]; // (A_s,) r(s, a)
}

/** states[0] is s₀, the prompt. Children are created after their parent, so reverse order is a valid backward pass. */
export interface TokenTree {
  states: TreeState[];
  depth: number;
}

/** A seeded tree of the given depth; each non-terminal state has between minTokens and maxTokens tokens. */
export function makeTokenTree(rng: Rng, depth: number, minTokens: number, maxTokens: number): TokenTree {
  const states: TreeState[] = [{ depth: 0, next: [], refProbs: [], rewards: [] }];
  for (let s = 0; s < states.length; s++) {
    const state = states[s];
    if (state.depth === depth) continue;
    const A = minTokens + rng.int(maxTokens - minTokens + 1);
    state.refProbs = softmax(Array.from({ length: A }, () => rng.normal()));
    state.rewards = Array.from({ length: A }, () => rng.normal());
    for (let a = 0; a < A; a++) {
      state.next.push(states.length);
      states.push({ depth: state.depth + 1, next: [], refProbs: [], rewards: [] });
    }
  }
  return { states, depth };
}

/** A policy on the tree: (A_s,) probabilities for each state (empty at terminal states). */
export type TokenPolicy = number[][];

export interface SoftValues {
  V: number[]; // (S,) V*(s)
  Q: number[][]; // (S, A_s) Q*(s, a)
}

/**
 * Backward induction: V*(s) = 0 at terminal states, Q*(s,a) = r(s,a) + V*(s′), and
 * V*(s) = β·log Σ_a π_ref(a|s)·exp(Q*(s,a)/β).
 */
export function softValues(tree: TokenTree, beta: number): SoftValues {
  const V = new Array<number>(tree.states.length).fill(0);
  const Q: number[][] = tree.states.map(() => []);
  for (let s = tree.states.length - 1; s >= 0; s--) {
    const state = tree.states[s];
    if (state.next.length === 0) continue;
    Q[s] = state.next.map((child, a) => state.rewards[a] + V[child]);
    V[s] = beta * logSumExp(Q[s].map((q, a) => Math.log(state.refProbs[a]) + q / beta));
  }
  return { V, Q };
}

/** π*(a|s) = π_ref(a|s)·exp((Q*(s,a) − V*(s))/β). */
export function optimalTokenPolicy(tree: TokenTree, values: SoftValues, beta: number): TokenPolicy {
  return tree.states.map((state, s) => state.refProbs.map((q, a) => q * Math.exp((values.Q[s][a] - values.V[s]) / beta)));
}

/** A random policy: softmax of N(0, 2²) logits at every state. */
export function randomTokenPolicy(rng: Rng, tree: TokenTree): TokenPolicy {
  return tree.states.map((state) => (state.next.length === 0 ? [] : softmax(state.next.map(() => 2 * rng.normal()))));
}

/** One full completion y: the (state, token) pairs from s₀ to a terminal state. */
export interface Completion {
  steps: { state: number; action: number }[]; // (D,)
  terminal: number;
}

/** Every completion of the tree, depth first. */
export function completions(tree: TokenTree): Completion[] {
  const out: Completion[] = [];
  const walk = (s: number, steps: Completion['steps']): void => {
    const state = tree.states[s];
    if (state.next.length === 0) out.push({ steps, terminal: s });
    state.next.forEach((child, a) => walk(child, [...steps, { state: s, action: a }]));
  };
  walk(0, []);
  return out;
}

/** R(y) = Σ_t r(s_t, a_t). */
export function summedReward(tree: TokenTree, y: Completion): number {
  return y.steps.reduce((sum, { state, action }) => sum + tree.states[state].rewards[action], 0);
}

/** Sequence-level log π(y) = log Π_t π(a_t|s_t): the product of probabilities first, then one log. */
export function sequenceLogProb(policy: TokenPolicy, y: Completion): number {
  return Math.log(y.steps.reduce((prob, { state, action }) => prob * policy[state][action], 1));
}

/** Per-token log-ratios log π(a_t|s_t) − log π_ref(a_t|s_t) along y. */
export function tokenLogRatios(tree: TokenTree, policy: TokenPolicy, y: Completion): number[] {
  return y.steps.map(({ state, action }) => Math.log(policy[state][action]) - Math.log(tree.states[state].refProbs[action]));
}

/**
 * The sequence-level optimum, enumerated: π*(y) = π_ref(y)·exp(R(y)/β)/Z with Z = Σ_y π_ref(y)·exp(R(y)/β), and its
 * conditionals π*(a|s) = π*(prefixes through s·a)/π*(prefixes through s), computed from the completion masses alone.
 */
export function sequenceOptimum(tree: TokenTree, ys: readonly Completion[], beta: number): { logZ: number; probs: number[]; conditionals: TokenPolicy } {
  const logWeights = ys.map((y) => sequenceLogProb(tree.states.map((st) => st.refProbs), y) + summedReward(tree, y) / beta);
  const logZ = logSumExp(logWeights);
  const probs = logWeights.map((w) => Math.exp(w - logZ));
  const mass = new Array<number>(tree.states.length).fill(0); // π*(completion passes through s)
  ys.forEach((y, i) => {
    for (const { state } of y.steps) mass[state] += probs[i];
    mass[y.terminal] += probs[i];
  });
  const conditionals = tree.states.map((state, s) => state.next.map((child) => mass[child] / mass[s]));
  return { logZ, probs, conditionals };
}
