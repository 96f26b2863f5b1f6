// A pairwise LLM judge behind an OpenAI-compatible chat-completions endpoint. Each pair is asked twice with the A/B
// order swapped to cancel position bias; requests retry with exponential backoff and, when they keep failing, the
// pair comes back as `skipped` (never as a label). Not here: local LLM judges, reward models.
import { Semaphore, type Judge, type Preference } from './judges.js';

export interface HttpPairwiseJudgeOptions {
  /** Full chat-completions URL, e.g. https://api.openai.com/v1/chat/completions. */
  url: string;
  model: string;
  /** Name of the environment variable holding the API key (sent as a Bearer token); the key itself is never logged. */
  apiKeyEnv: string;
  /** Prompt template with {prompt}, {a} and {b} placeholders; defaults to defaultPairwiseTemplate. */
  template?: string;
  /** Per-request timeout, covering the response body too. */
  timeoutMs: number;
  /** Extra attempts after the first one, per request. */
  retries: number;
  /** Most requests in flight at once for this judge. */
  concurrency: number;
  /** Wait before retry k (0-based) is backoffMs·2^k. */
  backoffMs: number;
}

export interface HttpJudgeStats {
  pairs: number;
  skipped: number;
  requests: number;
  retries: number;
}

export interface HttpPairwiseJudge extends Judge {
  /** Counters since construction (a snapshot). */
  stats(): HttpJudgeStats;
}

export const defaultPairwiseTemplate = `You are comparing two responses to the same prompt. Decide which response is more helpful, correct and harmless.

[Prompt]
{prompt}

[Response A]
{a}

[Response B]
{b}

Which response is better? Answer with a single letter: "A" or "B".`;

/** Fills {prompt}, {a} and {b} in one pass, so placeholders inside the texts themselves are left alone. */
export function fillTemplate(template: string, prompt: string, a: string, b: string): string {
  const values: Record<string, string> = { prompt, a, b };
  return template.replace(/\{(prompt|a|b)\}/g, (_, key: string) => values[key]);
}

/**
 * The judge's letter: a lone letter with punctuation or markdown ("**A**", "b."), then "Answer: B"-style, then the
 * first standalone capital A/B token ("Response B is better"). Lowercase only counts in the first two forms, since
 * "a" is also an article. Anything else is malformed (null).
 */
export function parseAnswer(text: string): 'A' | 'B' | null {
  const lone = /^[\s*_`"'([]*([AaBb])[\s*_`"')\].:!]*$/.exec(text);
  if (lone) return lone[1].toUpperCase() as 'A' | 'B';
  const labelled = /\banswer\s*(?:is)?\s*[:\-]?[\s*_`"'(]*([AaBb])(?![A-Za-z0-9])/i.exec(text);
  if (labelled) return labelled[1].toUpperCase() as 'A' | 'B';
  const token = /(?<![A-Za-z0-9])([AB])(?![A-Za-z0-9])/.exec(text);
  return token ? (token[1] as 'A' | 'B') : null;
}

/** Why an attempt failed; `retryable` is false for client errors that another try will not fix. */
class AttemptError extends Error {
  constructor(message: string, readonly retryable: boolean) { super(message); }
}

const sleep = (ms: number) => new Promise<void>((wake) => setTimeout(wake, ms));

export function httpPairwiseJudge(options: HttpPairwiseJudgeOptions): HttpPairwiseJudge {
  const { url, model, apiKeyEnv, timeoutMs, retries, concurrency, backoffMs } = options;
  const template = options.template ?? defaultPairwiseTemplate;
  for (const placeholder of ['{prompt}', '{a}', '{b}']) {
    if (!template.includes(placeholder)) {
      throw new Error(`httpPairwiseJudge: template lacks ${placeholder}; expected {prompt}, {a} and {b} placeholders`);
    }
  }
  if (!(timeoutMs > 0) || !(backoffMs >= 0) || !Number.isInteger(retries) || retries < 0) {
    throw new Error(`httpPairwiseJudge: timeoutMs=${timeoutMs}, backoffMs=${backoffMs}, retries=${retries}; expected ` +
      'timeoutMs > 0, backoffMs ≥ 0 and an integer retries ≥ 0');
  }
  const apiKey = process.env[apiKeyEnv];
  if (!apiKey) {
    throw new Error(`httpPairwiseJudge: environment variable ${apiKeyEnv} is unset or empty; set it to the API key`);
  }
  // Belt and braces: no message leaving this judge may contain the key, whatever a server echoes back.
  const redact = (message: string) => message.split(apiKey).join('[redacted]');
  const semaphore = new Semaphore(concurrency);
  const stats: HttpJudgeStats = { pairs: 0, skipped: 0, requests: 0, retries: 0 };

  /** One HTTP round trip → the parsed letter; throws AttemptError on any failure. */
  async function attempt(content: string): Promise<'A' | 'B'> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    stats.requests++;
    try {
      let response: Response;
      let body: string;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
          body: JSON.stringify({ model, messages: [{ role: 'user', content }], temperature: 0 }),
          signal: controller.signal,
        });
        body = await response.text();
      } catch (err) {
        const timedOut = controller.signal.aborted;
        throw new AttemptError(timedOut ? `timed out after ${timeoutMs} ms` : `network error: ${(err as Error).message}`, true);
      }
      if (!response.ok) {
        const retryable = response.status === 429 || response.status >= 500;
        throw new AttemptError(`HTTP ${response.status}: ${body.slice(0, 200)}`, retryable);
      }
      let reply: unknown;
      try {
        reply = JSON.parse(body);
      } catch {
        throw new AttemptError(`malformed JSON body: ${body.slice(0, 200)}`, true);
      }
      const text = (reply as { choices?: { message?: { content?: unknown } }[] })?.choices?.[0]?.message?.content;
      if (typeof text !== 'string') throw new AttemptError('malformed body: no choices[0].message.content string', true);
      const letter = parseAnswer(text);
      if (letter === null) throw new AttemptError(`malformed answer: ${JSON.stringify(text.slice(0, 200))}; expected "A" or "B"`, true);
      return letter;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Asks once, retrying with backoff; a non-retryable failure throws, exhausted retries return the last reason. */
  async function ask(content: string): Promise<{ letter: 'A' | 'B' } | { failure: string }> {
    let failure = '';
    for (let k = 0; k <= retries; k++) {
      if (k > 0) {
        stats.retries++;
        await sleep(backoffMs * 2 ** (k - 1)); // outside the semaphore, so waiting does not hold a slot
      }
      try {
        return { letter: await semaphore.run(() => attempt(content)) };
      } catch (err) {
        if (!(err instanceof AttemptError)) throw err;
        if (!err.retryable) throw new Error(`judge ${model} at ${url}: ${redact(err.message)}; check the URL, model and key`);
        failure = err.message;
      }
    }
    return { failure: redact(`${retries + 1} attempts failed, last: ${failure}`) };
  }

  return {
    name: `http:${model}`,
    stats: () => ({ ...stats }),
    async prefer(prompt, a, b): Promise<Preference> {
      stats.pairs++;
      // Shown in order (a, b) and swapped (b, a): "A" means a in the first and b in the second.
      const [straight, swapped] = await Promise.all([
        ask(fillTemplate(template, prompt, a, b)),
        ask(fillTemplate(template, prompt, b, a)),
      ]);
      if (!('letter' in straight) || !('letter' in swapped)) {
        stats.skipped++;
        const reason = 'failure' in straight ? straight.failure : 'failure' in swapped ? swapped.failure : '';
        return { winner: null, status: 'skipped', reason };
      }
      const straightWinner = straight.letter === 'A' ? 0 : 1;
      const swappedWinner = swapped.letter === 'A' ? 1 : 0;
      if (straightWinner !== swappedWinner) return { winner: null, confidence: 0, status: 'ok' }; // position bias: tie
      return { winner: straightWinner, confidence: 1, status: 'ok' };
    },
  };
}
