// Judges for on-policy preference optimisation: one interface that scores a completion or prefers one of two, plus
// the reward-function judge (a user's JS function) and the batch helper scoreAll. The HTTP pairwise judge lives in
// http-judge.ts. Not here: reward-model judges and local LLM judges.
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The outcome of one pairwise comparison. */
export interface Preference {
  /** 0: the first completion wins, 1: the second wins, null: a tie or unknown. */
  winner: 0 | 1 | null;
  /**
   * With a winner: the judge's probability that the winner is the better one, in [0.5, 1] (1 for a categorical
   * verdict, e.g. the HTTP judge when both orders agree; σ(|Δr|) for a reward model). With a tie: 0 marks two orders
   * that disagreed (position bias), 0.5 an even judgement.
   */
  confidence?: number;
  /** 'skipped': the judge gave up on this pair (winner is then null and must not be used as a label). */
  status: 'ok' | 'skipped';
  /** Why the pair was skipped, for logs; never contains credentials. */
  reason?: string;
}

export interface Judge {
  name: string;
  /** A scalar reward for one completion; absent for judges that only compare. */
  score?(prompt: string, completion: string): Promise<number>;
  prefer(prompt: string, a: string, b: string): Promise<Preference>;
}

export type RewardFunction = (prompt: string, completion: string) => number | Promise<number>;

/** A judge from a JS reward function; prefer() compares the two scores (equal → tie). */
export function rewardFunctionJudge(fn: RewardFunction, name = fn.name || 'reward-function'): Judge {
  const score = async (prompt: string, completion: string): Promise<number> => {
    const value = await fn(prompt, completion);
    if (typeof value !== 'number' || Number.isNaN(value)) {
      throw new Error(`reward function '${name}' returned ${String(value)}; expected a number (not NaN)`);
    }
    return value;
  };
  return {
    name,
    score,
    async prefer(prompt, a, b) {
      const [scoreA, scoreB] = await Promise.all([score(prompt, a), score(prompt, b)]);
      if (scoreA === scoreB) return { winner: null, status: 'ok' };
      return { winner: scoreA > scoreB ? 0 : 1, status: 'ok' };
    },
  };
}

const rewardModuleExtensions = ['.js', '.mjs'];

/** Dynamic-imports a .js/.mjs module whose default export or `reward` export is a RewardFunction. */
export async function loadRewardFunction(path: string): Promise<RewardFunction> {
  const file = resolve(path);
  const ext = extname(file);
  if (!rewardModuleExtensions.includes(ext)) {
    throw new Error(`reward function module ${file}: extension '${ext}' is not supported; expected a .js or .mjs ES module`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(file).href) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`reward function module ${file} could not be imported: ${(err as Error).message}`, { cause: err });
  }
  const fn = typeof mod.default === 'function' ? mod.default : mod.reward;
  if (typeof fn !== 'function') {
    const found = Object.keys(mod).map((key) => `${key}: ${typeof mod[key]}`).join(', ') || 'no exports';
    throw new Error(`reward function module ${file}: expected a default export or an export named 'reward' that is a ` +
      `function (prompt, completion) => number; found ${found}`);
  }
  return fn as RewardFunction;
}

/** Scores completions[i] for prompts[i] for every i; a failure names the judge and the prompt index. */
export async function scoreAll(judge: Judge, prompts: readonly string[], completions: readonly string[]): Promise<number[]> {
  if (prompts.length !== completions.length) {
    throw new Error(`scoreAll: ${prompts.length} prompts but ${completions.length} completions; expected one completion per prompt`);
  }
  const score = judge.score;
  if (score === undefined) {
    throw new Error(`scoreAll: judge '${judge.name}' cannot score single completions (it only compares pairs); use prefer()`);
  }
  return Promise.all(prompts.map(async (prompt, index) => {
    try {
      return await score.call(judge, prompt, completions[index]);
    } catch (err) {
      throw new Error(`judge '${judge.name}' failed on prompt index ${index}: ${(err as Error).message}`, { cause: err });
    }
  }));
}

/** A counting semaphore: at most `limit` holders at once; waiters are served first come, first served. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`Semaphore: limit ${limit}; expected an integer ≥ 1`);
  }
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((wake) => this.waiting.push(wake));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // hand the slot over directly, so `active` never dips and lets a newcomer jump the queue
      else this.active--;
    }
  }
}
