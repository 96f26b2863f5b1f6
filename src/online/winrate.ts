// Win rate of a model A over a baseline B under a judge: each prompt's two completions are compared in both
// presentation orders (or by score), giving a win, a tie, a loss or a skip; the summary is the win rate with ties as
// half, its Wilson score interval, the counts, and how often the two orders agreed. Pure statistics plus one thin
// async loop over the judge. Not here: sampling the completions (sample.ts) or building judges (judges.ts).
import type { Judge, Preference } from './judges.js';

/** A's result on one prompt; 'skipped' means the judge gave up, and the prompt is left out of the rate. */
export type ComparisonResult = 'win' | 'tie' | 'loss' | 'skipped';

/** What one presentation order said, from A's side: A better, B better, a tie, or no answer. */
export type Verdict = 'A' | 'B' | 'tie' | 'skipped';

export interface Comparison {
  result: ComparisonResult;
  /**
   * Whether the presentation orders agreed; null when skipped or when there was no order to disagree (a scoring
   * judge, or a judge that averages both orders into one verdict).
   */
  consistent: boolean | null;
  /** Pairwise judges: the verdicts of prefer(prompt, A, B) and, when asked, of prefer(prompt, B, A). */
  orders?: Verdict[];
  /** Scoring judges: [score of A, score of B]. */
  scores?: [number, number];
  /** Why the comparison was skipped (from the judge). */
  reason?: string;
}

/** z of a two-sided 95% interval: Φ⁻¹(0.975). */
export const Z_95 = 1.959963984540054;

/**
 * The Wilson score interval of a proportion (Wilson 1927; Newcombe 1998, method 3): the p with
 * |p̂ − p| ≤ z·√(p(1−p)/n), i.e. centre (p̂ + z²/2n)/(1 + z²/n) ± z/(1 + z²/n)·√(p̂(1−p̂)/n + z²/4n²).
 * `successes` may be fractional (a tie counts ½). Unlike the Wald interval p̂ ± z·√(p̂(1−p̂)/n) it stays inside [0, 1]
 * and does not collapse to a point at p̂ = 0 or 1.
 */
export function wilsonInterval(successes: number, n: number, z = Z_95): [number, number] {
  if (!(Number.isFinite(n) && n > 0)) throw new Error(`wilsonInterval: n = ${n}; expected a count > 0`);
  if (!(successes >= 0 && successes <= n)) throw new Error(`wilsonInterval: ${successes} successes out of ${n}; expected 0 ≤ successes ≤ n`);
  if (!(z > 0)) throw new Error(`wilsonInterval: z = ${z}; expected z > 0 (1.96 for 95%)`);
  const p = successes / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z / (1 + z2n)) * Math.sqrt(p * (1 - p) / n + z2n / (4 * n));
  // At p̂ = 0 (or 1) the lower (upper) end is exactly 0 (1); rounding would leave ±1e-17.
  return [successes === 0 ? 0 : Math.max(0, centre - half), successes === n ? 1 : Math.min(1, centre + half)];
}

export interface WinRateSummary {
  /** All comparisons, skipped ones included. */
  comparisons: number;
  /** Comparisons the judge answered: wins + ties + losses. */
  judged: number;
  wins: number;
  /** Ties, including order disagreements. */
  ties: number;
  losses: number;
  skipped: number;
  /** Judged comparisons whose order agreement could be seen (consistent not null). */
  consistencyChecked: number;
  /** Judged comparisons whose presentation orders disagreed (each is also a tie). */
  inconsistent: number;
  /** (wins + ties/2) / judged; null when nothing was judged. */
  winRate: number | null;
  /** The 95% Wilson score interval of winRate with ties as half a win; null when nothing was judged. */
  ci: [number, number] | null;
  /** Share of the checked comparisons whose presentation orders agreed; null when none could be checked. */
  positionConsistency: number | null;
}

/** Counts the outcomes; skipped ones are counted but left out of the rate, the interval and the consistency. */
export function winRateSummary(outcomes: readonly Comparison[], z = Z_95): WinRateSummary {
  const count = (result: ComparisonResult) => outcomes.filter((o) => o.result === result).length;
  const wins = count('win');
  const ties = count('tie');
  const losses = count('loss');
  const skipped = count('skipped');
  const judged = wins + ties + losses;
  const checked = outcomes.filter((o) => o.result !== 'skipped' && o.consistent !== null);
  const inconsistent = checked.filter((o) => o.consistent === false).length;
  const points = wins + ties / 2;
  return {
    comparisons: outcomes.length, judged, wins, ties, losses, skipped, consistencyChecked: checked.length, inconsistent,
    winRate: judged === 0 ? null : points / judged,
    ci: judged === 0 ? null : wilsonInterval(points, judged, z),
    positionConsistency: checked.length === 0 ? null : (checked.length - inconsistent) / checked.length,
  };
}

/**
 * One order's verdict from A's side. `aFirst`: A was shown first. A tie with confidence 0 is a judge that asked both
 * orders itself and saw them disagree (the HTTP judge does this); `split` reports it.
 */
export function verdictOf(preference: Preference, aFirst: boolean): { verdict: Verdict; split: boolean } {
  if (preference.status === 'skipped') return { verdict: 'skipped', split: false };
  if (preference.winner === null) return { verdict: 'tie', split: preference.confidence === 0 };
  const firstWins = preference.winner === 0;
  return { verdict: firstWins === aFirst ? 'A' : 'B', split: false };
}

/**
 * A's result from prefer(prompt, A, B) and, if given, prefer(prompt, B, A). Any skipped order skips the comparison.
 * Orders that agree give their verdict; orders that disagree (A vs B, or a win vs a tie) give a tie, as does a judge
 * that reports its own orders split. Both count as position-inconsistent.
 */
export function combineOrders(forward: Preference, backward?: Preference): Comparison {
  const asked = [verdictOf(forward, true), ...(backward === undefined ? [] : [verdictOf(backward, false)])];
  const orders = asked.map((a) => a.verdict);
  if (orders.includes('skipped')) {
    const reason = [forward, backward].find((p) => p?.status === 'skipped')?.reason ?? 'the judge skipped the pair';
    return { result: 'skipped', consistent: null, orders, reason };
  }
  const consistent = orders.every((v) => v === orders[0]) && !asked.some((a) => a.split);
  const verdict = consistent ? orders[0] : 'tie';
  return { result: verdict === 'A' ? 'win' : verdict === 'B' ? 'loss' : 'tie', consistent, orders };
}

/** A's result from two scores: the higher one wins, equal scores tie. Scores have no order to disagree. */
export function compareScores(scoreA: number, scoreB: number): Comparison {
  return { result: scoreA > scoreB ? 'win' : scoreA < scoreB ? 'loss' : 'tie', consistent: null, scores: [scoreA, scoreB] };
}

/**
 * Who puts a pairwise judge's completions in both orders:
 * - 'ask-both': winrate asks prefer(prompt, A, B) and prefer(prompt, B, A) and compares the verdicts;
 * - 'judge-swaps': the judge asks both orders inside prefer() and reports a split as a tie with confidence 0 (the HTTP
 *   judge), so one prefer() per prompt is enough and a second would only repeat its requests;
 * - 'judge-averages': the judge merges both orders into one order-free verdict inside prefer() (the local judge), so
 *   one prefer() per prompt is enough and its order agreement cannot be seen (consistent is null).
 */
export type OrderHandling = 'ask-both' | 'judge-swaps' | 'judge-averages';

export interface CompareOptions {
  /** Pairwise judges: see OrderHandling (default 'ask-both'). Scoring judges ignore it. */
  orders?: OrderHandling;
  /** Called after each prompt's comparison settles, with the number settled so far. */
  onProgress?: (done: number, total: number) => void;
}

/** One prompt: the text the judge reads and the two completions. */
export interface CompletionPair {
  prompt: string;
  a: string;
  b: string;
}

/**
 * Compares A's completion with B's for every prompt, all prompts at once (an HTTP judge bounds its own requests in
 * flight). A judge with score() is compared by score; else by prefer(). A judge that throws (not a skip: a bug or a
 * refused request) fails the whole run with the prompt's position.
 */
export async function compareCompletions(judge: Judge, pairs: readonly CompletionPair[], opts: CompareOptions = {}): Promise<Comparison[]> {
  const orders = opts.orders ?? 'ask-both';
  const score = judge.score;
  let done = 0;
  return Promise.all(pairs.map(async ({ prompt, a, b }, index) => {
    let outcome: Comparison;
    try {
      if (score !== undefined) {
        const [scoreA, scoreB] = await Promise.all([score.call(judge, prompt, a), score.call(judge, prompt, b)]);
        outcome = compareScores(scoreA, scoreB);
      } else {
        const [forward, backward] = await Promise.all([judge.prefer(prompt, a, b), orders === 'ask-both' ? judge.prefer(prompt, b, a) : undefined]);
        outcome = combineOrders(forward, backward);
        if (orders === 'judge-averages' && outcome.result !== 'skipped') outcome.consistent = null;
      }
    } catch (err) {
      throw new Error(`judge '${judge.name}' failed on prompt ${index}: ${(err as Error).message}`, { cause: err });
    }
    opts.onProgress?.(++done, pairs.length);
    return outcome;
  }));
}
