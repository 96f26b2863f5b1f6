// Judges: the reward-function judge and its loader, scoreAll's error reporting, answer parsing, and the HTTP pairwise
// judge against a real node:http server on 127.0.0.1 that plays honest, position-biased, slow, failing, malformed and
// key-echoing judges, counting requests and requests in flight.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  fillTemplate, httpPairwiseJudge, loadRewardFunction, parseAnswer, rewardFunctionJudge, scoreAll,
  type HttpPairwiseJudgeOptions,
} from '../src/online/index.js';

const lengthReward = (_prompt: string, completion: string) => completion.length;

describe('reward-function judge', () => {
  test('prefers the completion with the higher reward, and calls equal rewards a tie', async () => {
    const judge = rewardFunctionJudge(lengthReward);
    assert.deepEqual(await judge.prefer('p', 'long answer', 'short'), { winner: 0, status: 'ok' });
    assert.deepEqual(await judge.prefer('p', 'short', 'long answer'), { winner: 1, status: 'ok' });
    assert.deepEqual(await judge.prefer('p', 'same1', 'same2'), { winner: null, status: 'ok' });
    assert.equal(await judge.score?.('p', 'four'), 4);
  });

  test('async reward functions work and a NaN reward is an error naming the function', async () => {
    const judge = rewardFunctionJudge(async (_p, c) => (c === 'nan' ? NaN : 1), 'myReward');
    assert.equal(await judge.score?.('p', 'x'), 1);
    await assert.rejects(judge.score!('p', 'nan'), /myReward.*returned NaN; expected a number/);
  });

  test('scoreAll scores every pair in order and names the prompt index where the function throws', async () => {
    const judge = rewardFunctionJudge((prompt, completion) => {
      if (prompt === 'bad') throw new Error('boom');
      return completion.length;
    }, 'fragile');
    assert.deepEqual(await scoreAll(judge, ['a', 'b', 'c'], ['x', 'yy', 'zzz']), [1, 2, 3]);
    await assert.rejects(scoreAll(judge, ['a', 'b', 'bad'], ['x', 'y', 'z']), /judge 'fragile' failed on prompt index 2: boom/);
    await assert.rejects(scoreAll(judge, ['a', 'b'], ['x']), /2 prompts but 1 completions/);
  });

  test('scoreAll refuses a judge that can only compare', async () => {
    const pairwise = { name: 'pairs-only', prefer: async () => ({ winner: null, status: 'ok' as const }) };
    await assert.rejects(scoreAll(pairwise, ['a'], ['x']), /judge 'pairs-only' cannot score single completions/);
  });
});

describe('loadRewardFunction', () => {
  let dir = '';
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'dpo-judges-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  test('loads a default export and a named `reward` export', async () => {
    await writeFile(join(dir, 'default.mjs'), 'export default (prompt, completion) => completion.length * 2;\n');
    await writeFile(join(dir, 'named.js'), 'export function reward(prompt, completion) { return -completion.length; }\n');
    assert.equal(await (await loadRewardFunction(join(dir, 'default.mjs')))('p', 'abc'), 6);
    assert.equal(await (await loadRewardFunction(join(dir, 'named.js')))('p', 'abc'), -3);
  });

  test('errors name the file and what was expected', async () => {
    const wrong = join(dir, 'wrong.mjs');
    await writeFile(wrong, 'export const score = 3;\n');
    await assert.rejects(loadRewardFunction(wrong), (err: Error) =>
      err.message.includes(wrong) && /expected a default export or an export named 'reward'/.test(err.message) &&
      err.message.includes('score: number'));
    const missing = join(dir, 'missing.mjs');
    await assert.rejects(loadRewardFunction(missing), (err: Error) => err.message.includes(`${missing} could not be imported`));
    await assert.rejects(loadRewardFunction(join(dir, 'reward.py')), /extension '.py' is not supported; expected a .js or .mjs/);
  });
});

describe('parseAnswer and fillTemplate', () => {
  test('reads the judge letter from the usual answer shapes', () => {
    const cases: [string, 'A' | 'B' | null][] = [
      ['A', 'A'], ['b', 'B'], [' **A** ', 'A'], ['B.', 'B'], ['(a)', 'A'], ['Answer: B', 'B'], ['answer: a', 'A'],
      ['The answer is **B**.', 'B'], ['Response B is better.', 'B'], ['I prefer A because it is a complete answer.', 'A'],
      ['', null], ['I cannot decide.', null], ['both are a fine choice', null], ['ABBA', null],
    ];
    for (const [text, expected] of cases) assert.equal(parseAnswer(text), expected, `parseAnswer(${JSON.stringify(text)})`);
  });

  test('placeholders inside the texts are not substituted again', () => {
    assert.equal(fillTemplate('{prompt}|{a}|{b}', 'P {a}', 'A {b}', 'B'), 'P {a}|A {b}|B');
  });
});

// ------------------------------------------------------------------------------------------------ the fake judge server
const API_KEY = 'sk-test-SECRET-1234567890';
const KEY_ENV = 'DPO_TS_TEST_JUDGE_KEY';
const GOOD = 'GOOD-COMPLETION';
const BAD = 'BAD-COMPLETION';

type Scenario = 'honest' | 'biased' | 'slow' | 'flaky' | 'malformed' | 'garbage' | 'echo500' | 'echo401' | 'throttled';

interface ServerLog { requests: Map<string, number>; authorizations: Set<string>; inFlight: number; maxInFlight: number }

const chat = (content: string) => JSON.stringify({ choices: [{ message: { role: 'assistant', content } }] });

function startJudgeServer(log: ServerLog) {
  return createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const scenario = (req.url ?? '').split('/')[1] as Scenario;
    const count = (log.requests.get(scenario) ?? 0) + 1;
    log.requests.set(scenario, count);
    log.authorizations.add(req.headers.authorization ?? '');
    log.inFlight++;
    log.maxInFlight = Math.max(log.maxInFlight, log.inFlight);
    res.once('close', () => log.inFlight--); // answered, or abandoned by a client that timed out
    const request = JSON.parse(Buffer.concat(chunks).toString()) as { model: string; temperature: number; messages: { content: string }[] };
    assert.equal(request.temperature, 0);
    const content = request.messages[0].content;
    const honest = content.indexOf(GOOD) < content.indexOf(BAD) ? 'A' : 'B';
    const reply = (status: number, body: string, delayMs = 0) => setTimeout(() => {
      if (!res.destroyed) res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    }, delayMs);
    switch (scenario) {
      case 'honest': return reply(200, chat(count % 2 ? `Answer: **${honest}**` : honest.toLowerCase()), 20);
      case 'biased': return reply(200, chat('A'));
      case 'slow': return reply(200, chat(honest), 400);
      case 'flaky': return count <= 2 ? reply(500, 'upstream down') : reply(200, chat(honest));
      case 'throttled': return count === 1 ? reply(429, 'slow down') : reply(200, chat(honest));
      case 'malformed': return reply(200, '{"choices": [ not json');
      case 'garbage': return reply(200, chat('Both responses have merit; I cannot pick.'));
      case 'echo500': return reply(500, `bad gateway for ${req.headers.authorization}`);
      case 'echo401': return reply(401, `invalid key ${req.headers.authorization}`);
      default: return reply(404, 'unknown scenario');
    }
  });
}

describe('httpPairwiseJudge against a real HTTP server', () => {
  const log: ServerLog = { requests: new Map(), authorizations: new Set(), inFlight: 0, maxInFlight: 0 };
  const server = startJudgeServer(log);
  let base = '';
  const judgeFor = (scenario: Scenario, overrides: Partial<HttpPairwiseJudgeOptions> = {}) => httpPairwiseJudge({
    url: `${base}/${scenario}/v1/chat/completions`, model: 'judge-model', apiKeyEnv: KEY_ENV,
    timeoutMs: 5000, retries: 2, concurrency: 4, backoffMs: 5, ...overrides, // generous: a loaded CI machine must not time out honest replies
  });

  before(async () => {
    process.env[KEY_ENV] = API_KEY;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    delete process.env[KEY_ENV];
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  test('an honest judge picks the better completion in either order, asking twice per pair', async () => {
    const judge = judgeFor('honest');
    assert.deepEqual(await judge.prefer('q', GOOD, BAD), { winner: 0, confidence: 1, status: 'ok' });
    assert.deepEqual(await judge.prefer('q', BAD, GOOD), { winner: 1, confidence: 1, status: 'ok' });
    assert.deepEqual(judge.stats(), { pairs: 2, skipped: 0, requests: 4, retries: 0 });
    assert.equal(judge.score, undefined);
  });

  test('a judge that always says "A" yields ties, not labels', async () => {
    const judge = judgeFor('biased');
    assert.deepEqual(await judge.prefer('q', GOOD, BAD), { winner: null, confidence: 0, status: 'ok' });
    assert.equal(judge.stats().skipped, 0);
  });

  test('responses slower than the timeout are retried, then the pair is skipped', async () => {
    const judge = judgeFor('slow', { timeoutMs: 60, retries: 1 });
    const result = await judge.prefer('q', GOOD, BAD);
    assert.equal(result.status, 'skipped');
    assert.equal(result.winner, null);
    assert.match(result.reason ?? '', /2 attempts failed, last: timed out after 60 ms/);
    assert.deepEqual(judge.stats(), { pairs: 1, skipped: 1, requests: 4, retries: 2 });
    assert.equal(log.requests.get('slow'), 4);
  });

  test('500s and 429s are retried until the server answers', async () => {
    const flaky = judgeFor('flaky');
    assert.deepEqual(await flaky.prefer('q', BAD, GOOD), { winner: 1, confidence: 1, status: 'ok' });
    assert.deepEqual(flaky.stats(), { pairs: 1, skipped: 0, requests: 4, retries: 2 });
    const throttled = judgeFor('throttled');
    assert.deepEqual(await throttled.prefer('q', GOOD, BAD), { winner: 0, confidence: 1, status: 'ok' });
    assert.equal(throttled.stats().retries, 1);
  });

  for (const [scenario, reason] of [['malformed', /malformed JSON body/], ['garbage', /malformed answer/]] as const) {
    test(`${scenario} replies are retried, then the pair is skipped and counted`, async () => {
      const judge = judgeFor(scenario, { retries: 2 });
      const result = await judge.prefer('q', GOOD, BAD);
      assert.equal(result.status, 'skipped');
      assert.match(result.reason ?? '', reason);
      assert.deepEqual(judge.stats(), { pairs: 1, skipped: 1, requests: 6, retries: 4 });
      assert.equal(log.requests.get(scenario), 6);
    });
  }

  test('requests in flight never exceed the concurrency limit', async () => {
    log.maxInFlight = 0;
    const judge = judgeFor('honest', { concurrency: 2 });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => judge.prefer(`q${i}`, GOOD, BAD)));
    assert.ok(results.every((r) => r.winner === 0 && r.status === 'ok'));
    assert.equal(log.maxInFlight, 2, 'the limit is reached and never exceeded');
    assert.equal(judge.stats().requests, 12);
  });

  test('the key travels as a Bearer token and never appears in errors or skip reasons', async () => {
    assert.deepEqual([...log.authorizations], [`Bearer ${API_KEY}`]);
    const echoed = await judgeFor('echo500', { retries: 0 }).prefer('q', GOOD, BAD);
    assert.equal(echoed.status, 'skipped');
    assert.match(echoed.reason ?? '', /HTTP 500: bad gateway for Bearer \[redacted\]/);
    assert.ok(!(echoed.reason ?? '').includes(API_KEY));
    await assert.rejects(judgeFor('echo401').prefer('q', GOOD, BAD), (err: Error) =>
      /HTTP 401/.test(err.message) && !err.message.includes(API_KEY) && !String(err.stack).includes(API_KEY));
    assert.equal(log.requests.get('echo401'), 2, 'a 401 is not retried');
  });

  test('an unset key variable and a template without placeholders are rejected up front', () => {
    assert.throws(() => judgeFor('honest', { apiKeyEnv: 'DPO_TS_NO_SUCH_KEY' }), /DPO_TS_NO_SUCH_KEY is unset or empty/);
    assert.throws(() => judgeFor('honest', { template: 'Which is better, {a} or {b}?' }), /template lacks \{prompt\}/);
  });
});
