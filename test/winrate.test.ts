// `dpo winrate` and its statistics: the Wilson interval against published and hand-computed values, the counting of
// wins, ties, order disagreements and skips, the two-order comparison with fake judges, and the command end to end on
// two tiny random GPT-2 models (built here, with the committed ChatML test tokenizer) against a JS reward function
// and a real node:http judge server on 127.0.0.1 that is honest, position-biased, slow, failing and malformed by prompt.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Rng, currentBackend } from '../src/index.js';
import { loadPretrained, savePretrained } from '../src/io/pretrained.js';
import { createModelFromHFConfig } from '../src/models/index.js';
import {
  combineOrders, compareCompletions, compareScores, wilsonInterval, winRateSummary,
  type Comparison, type Judge, type Preference,
} from '../src/online/index.js';
import { loadPrompts } from '../src/online/prompts.js';
import { samplePolicy } from '../src/online/sample.js';
import { assertClose } from './helpers.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..'); // tests run from dist/test/
const BIN = join(REPO, 'bin', 'dpo.js');
const TOKENIZER_DIR = join(REPO, 'test', 'fixtures', 'tokenizer', 'chatml'); // byte-level BPE, 307 ids, a chat template

describe('wilsonInterval', () => {
  test('matches the score-method values Newcombe (1998) publishes, to their 4 decimals', () => {
    // Newcombe, "Two-sided confidence intervals for the single proportion: comparison of seven methods",
    // Statistics in Medicine 17:857–872; its worked examples 81/263, 15/148, 0/20 and 1/29.
    const published: [number, number, number, number][] = [[81, 263, 0.2553, 0.3662], [15, 148, 0.0624, 0.1605], [0, 20, 0, 0.1611], [1, 29, 0.0061, 0.1718]];
    for (const [s, n, lo, hi] of published) assertClose(wilsonInterval(s, n), [lo, hi], { atol: 5e-5, rtol: 0 }, `${s}/${n}`);
  });

  test('matches the closed form computed by hand in Python, fractional successes (ties as ½) included', () => {
    // (p + z²/2n)/(1 + z²/n) ± z/(1 + z²/n)·√(p(1−p)/n + z²/4n²), z = 1.959963984540054, in float64 by /usr/bin/python3.
    assertClose(wilsonInterval(7, 10), [0.39677814746114537, 0.8922087325936989], { atol: 1e-14 }, '7/10');
    assertClose(wilsonInterval(6.5, 10), [0.3536707235111688, 0.8630694365299644], { atol: 1e-14 }, '6.5/10');
    assertClose(wilsonInterval(4, 6), [0.299993315138392, 0.9032285888942195], { atol: 1e-14 }, '4/6');
  });

  test('is exact at the edges, mirrors under s → n − s, and refuses impossible counts', () => {
    assert.equal(wilsonInterval(0, 10)[0], 0);
    assert.equal(wilsonInterval(10, 10)[1], 1);
    assertClose(wilsonInterval(10, 10), [1 - wilsonInterval(0, 10)[1], 1], { atol: 1e-15 }, '10/10');
    const [lo, hi] = wilsonInterval(3, 7);
    assertClose(wilsonInterval(4, 7), [1 - hi, 1 - lo], { atol: 1e-15 }, '4/7 vs 3/7');
    assert.throws(() => wilsonInterval(0, 0), /n = 0; expected a count > 0/);
    assert.throws(() => wilsonInterval(11, 10), /11 successes out of 10/);
  });
});

const win = (consistent: boolean | null = true): Comparison => ({ result: 'win', consistent });
const tie = (consistent = true): Comparison => ({ result: 'tie', consistent });
const loss = (): Comparison => ({ result: 'loss', consistent: true });
const skip = (): Comparison => ({ result: 'skipped', consistent: null, reason: 'timed out' });

describe('winRateSummary', () => {
  test('3 wins, a tie, an order disagreement, a loss and 2 skips: rate 4/6, Wilson(4, 6), consistency 4/5 of the checked', () => {
    const s = winRateSummary([win(), skip(), win(), tie(), tie(false), loss(), skip(), win(null)]);
    assert.deepEqual({ ...s, winRate: null, ci: null, positionConsistency: null }, {
      comparisons: 8, judged: 6, wins: 3, ties: 2, losses: 1, skipped: 2, consistencyChecked: 5, inconsistent: 1, winRate: null, ci: null, positionConsistency: null,
    });
    assertClose([s.winRate!, s.positionConsistency!], [4 / 6, 4 / 5], { atol: 1e-15 });
    assertClose(s.ci!, [0.299993315138392, 0.9032285888942195], { atol: 1e-14 }, 'ci');
  });

  test('nothing judged (all skipped, or no prompts) gives null rate, interval and consistency, and keeps the counts', () => {
    const s = winRateSummary([skip(), skip()]);
    assert.equal(s.skipped, 2);
    assert.equal(s.judged, 0);
    assert.deepEqual([s.winRate, s.ci, s.positionConsistency], [null, null, null]);
    assert.equal(winRateSummary([]).winRate, null);
  });

  test('order-free verdicts (scores) leave the consistency unknown, not 1', () => {
    const s = winRateSummary([compareScores(2, 1), compareScores(1, 1)]);
    assert.deepEqual([s.winRate, s.consistencyChecked, s.positionConsistency], [0.75, 0, null]);
  });
});

const ok = (winner: 0 | 1 | null, confidence?: number): Preference => ({ winner, status: 'ok', ...(confidence === undefined ? {} : { confidence }) });
const skipped: Preference = { winner: null, status: 'skipped', reason: '3 attempts failed, last: HTTP 500' };

describe('combineOrders: prefer(prompt, A, B) then prefer(prompt, B, A)', () => {
  test('agreeing orders give their verdict; disagreeing ones a position-inconsistent tie', () => {
    assert.deepEqual(combineOrders(ok(0), ok(1)), { result: 'win', consistent: true, orders: ['A', 'A'] });
    assert.deepEqual(combineOrders(ok(1), ok(0)), { result: 'loss', consistent: true, orders: ['B', 'B'] });
    assert.deepEqual(combineOrders(ok(null), ok(null)), { result: 'tie', consistent: true, orders: ['tie', 'tie'] });
    assert.deepEqual(combineOrders(ok(0), ok(0)), { result: 'tie', consistent: false, orders: ['A', 'B'] }, 'always the first shown');
    assert.deepEqual(combineOrders(ok(0), ok(null)), { result: 'tie', consistent: false, orders: ['A', 'tie'] });
  });

  test('a skip in either order skips the comparison and keeps the reason; it is never a label', () => {
    assert.deepEqual(combineOrders(ok(0), skipped), { result: 'skipped', consistent: null, orders: ['A', 'skipped'], reason: skipped.reason });
    assert.equal(combineOrders(skipped, ok(1)).result, 'skipped');
  });

  test('one order from a judge that swaps itself: a tie with confidence 0 is its orders split', () => {
    assert.deepEqual(combineOrders(ok(1, 1)), { result: 'loss', consistent: true, orders: ['B'] });
    assert.deepEqual(combineOrders(ok(null, 0)), { result: 'tie', consistent: false, orders: ['tie'] });
    assert.deepEqual(combineOrders(ok(null)), { result: 'tie', consistent: true, orders: ['tie'] });
  });

  test('scores: higher wins, equal ties, no order to disagree', () => {
    assert.deepEqual(compareScores(2, 1), { result: 'win', consistent: null, scores: [2, 1] });
    assert.equal(compareScores(-1, 0).result, 'loss');
    assert.equal(compareScores(3, 3).result, 'tie');
  });
});

describe('compareCompletions with in-process judges', () => {
  const pairs = [{ prompt: 'p0', a: 'long answer', b: 'short' }, { prompt: 'p1', a: 'x', b: 'yyyy' }, { prompt: 'p2', a: 'same', b: 'SAME' }];
  /** A pairwise-only judge that prefers the longer text, and counts its calls. */
  const pairwise = (biased: boolean) => {
    const calls: string[][] = [];
    const judge: Judge = {
      name: biased ? 'first-shown' : 'longer',
      async prefer(_prompt, first, second) {
        calls.push([first, second]);
        if (biased) return ok(0);
        return ok(first.length === second.length ? null : first.length > second.length ? 0 : 1);
      },
    };
    return { judge, calls };
  };

  test('a fair pairwise judge is asked both orders and gives win, loss, tie', async () => {
    const { judge, calls } = pairwise(false);
    const outcomes = await compareCompletions(judge, pairs);
    assert.deepEqual(outcomes.map((o) => o.result), ['win', 'loss', 'tie']);
    assert.equal(calls.length, 6);
    assert.ok(calls.some(([f, s]) => f === 'short' && s === 'long answer'), 'B shown first once');
    assert.equal(winRateSummary(outcomes).positionConsistency, 1);
  });

  test('a judge that always picks the first shown ties everything: win rate ½, position consistency 0', async () => {
    const s = winRateSummary(await compareCompletions(pairwise(true).judge, pairs));
    assert.deepEqual([s.ties, s.winRate, s.positionConsistency, s.inconsistent], [3, 0.5, 0, 3]);
  });

  test('judges that swap or average the orders themselves are asked once per prompt', async () => {
    for (const orders of ['judge-swaps', 'judge-averages'] as const) {
      const { judge, calls } = pairwise(false);
      const outcomes = await compareCompletions(judge, pairs, { orders });
      assert.deepEqual(calls, pairs.map((p) => [p.a, p.b]), orders);
      assert.deepEqual(outcomes.map((o) => o.consistent), orders === 'judge-swaps' ? [true, true, true] : [null, null, null], orders);
    }
  });

  test('a scoring judge is compared by score, and a judge that throws names the prompt', async () => {
    const scorer: Judge = {
      name: 'length',
      score: async (_p, completion) => completion.length,
      prefer: () => { throw new Error('prefer() must not be called for a scoring judge'); },
    };
    const outcomes = await compareCompletions(scorer, pairs);
    assert.deepEqual(outcomes.map((o) => [o.result, o.scores]), [['win', [11, 5]], ['loss', [1, 4]], ['tie', [4, 4]]]);
    const broken: Judge = { name: 'broken', score: async (p) => { if (p === 'p1') throw new Error('boom'); return 0; }, prefer: async () => ok(null) };
    await assert.rejects(compareCompletions(broken, pairs), /judge 'broken' failed on prompt 1: boom/);
  });
});

// ------------------------------------------------------------------------------------------------ the command end to end
const MODEL_CONFIG = { model_type: 'gpt2', vocab_size: 307, n_positions: 64, n_embd: 16, n_layer: 2, n_head: 2, initializer_range: 0.5, eos_token_id: 306, bos_token_id: 306 };
const MAX_NEW = 8;
// The fault prompts make the HTTP judge server misbehave; to the reward function they are ordinary prompts.
const FAULTS = ['SLOW', 'FAIL', 'JUNK', 'GARBAGE'];
const PROMPTS = [
  { prompt: 'Tell me a story about a cat.' },
  { prompt: 'What is the capital of France?' },
  { prompt: [{ role: 'user', content: 'Say hello in three languages.' }] },
  { prompt: 'BIASED: which is better?' },
  { prompt: 'List two prime numbers.' },
  ...FAULTS.map((f) => ({ prompt: `${f} prompt for the judge` })),
];
const KEY_ENV = 'DPO_TS_WINRATE_TEST_KEY';

interface Run { status: number | null; stdout: string; stderr: string }

/** Runs `dpo winrate` as a child process without blocking this process (the judge server lives here). */
async function runWinrate(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [BIN, 'winrate', ...args], { env: { ...process.env, [KEY_ENV]: 'sk-test-key' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const [status] = await once(child, 'close') as [number | null];
  return { status, stdout, stderr };
}

const lastJson = (run: Run): Record<string, unknown> => {
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
};

interface SampleRow { index: number; prompt: string; completion_a: string; completion_b: string; result: string; consistent: boolean | null; orders?: string[]; score_a?: number; score_b?: number; reason?: string }
const readRows = (path: string): SampleRow[] => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SampleRow);

/** The rate, interval and counts the JSON must carry for these per-prompt results. */
function expectSummary(json: Record<string, unknown>, rows: readonly SampleRow[]): void {
  const count = (r: string) => rows.filter((row) => row.result === r).length;
  const [wins, ties, losses, skippedCount] = ['win', 'tie', 'loss', 'skipped'].map(count);
  const judged = wins + ties + losses;
  assert.deepEqual([json.wins, json.ties, json.losses, json.skipped, json.judged, json.comparisons], [wins, ties, losses, skippedCount, judged, rows.length]);
  assertClose([json.win_rate as number], [(wins + ties / 2) / judged], { atol: 1e-12 }, 'win_rate');
  assertClose([json.ci_low as number, json.ci_high as number], wilsonInterval(wins + ties / 2, judged), { atol: 1e-12 }, 'ci');
  const checked = rows.filter((r) => r.consistent !== null);
  const agreed = checked.filter((r) => r.consistent === true).length;
  assert.equal(json.position_consistency, checked.length === 0 ? null : agreed / checked.length, 'position_consistency');
}

describe(`dpo winrate end to end (${currentBackend().name} backend)`, () => {
  const root = mkdtempSync(join(tmpdir(), 'dpo-winrate-'));
  const modelA = join(root, 'model-a');
  const modelB = join(root, 'model-b');
  const promptsFile = join(root, 'prompts.jsonl');
  const rewardFile = join(root, 'length-reward.mjs');
  const templateFile = join(root, 'template.txt');
  const requests = new Map<string, number>();
  let url = '';

  /** An OpenAI-compatible judge: the longer response wins (equal lengths: always "A"); prompts named in FAULTS misbehave. */
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const content = (JSON.parse(Buffer.concat(chunks).toString()) as { messages: { content: string }[] }).messages[0].content;
    const kind = [...FAULTS, 'BIASED'].find((f) => content.startsWith(f)) ?? 'honest';
    requests.set(kind, (requests.get(kind) ?? 0) + 1);
    const reply = (status: number, body: string, delayMs = 0) => setTimeout(() => {
      if (!res.destroyed) res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    }, delayMs).unref(); // a slow reply to a client that gave up must not hold the test process
    const chat = (answer: string) => JSON.stringify({ choices: [{ message: { role: 'assistant', content: answer } }] });
    const a = /<<<A>>>([\s\S]*)<<<\/A>>>/.exec(content)![1];
    const b = /<<<B>>>([\s\S]*)<<<\/B>>>/.exec(content)![1];
    switch (kind) {
      case 'SLOW': return reply(200, chat('A'), 5000); // past the 1.5 s timeout, on every attempt
      case 'FAIL': return reply(500, 'upstream down');
      case 'JUNK': return reply(200, '{"choices": [ not json');
      case 'GARBAGE': return reply(200, chat('Both have merit; I cannot pick.'));
      case 'BIASED': return reply(200, chat('A'));
      default: return reply(200, chat(b.length > a.length ? 'B' : 'A'));
    }
  });

  before(async () => {
    for (const [dir, seed] of [[modelA, 1], [modelB, 2]] as const) {
      const model = createModelFromHFConfig(MODEL_CONFIG, new Rng(seed));
      await savePretrained(model, dir, { config: MODEL_CONFIG, tokenizerFrom: TOKENIZER_DIR });
      model.dispose();
    }
    writeFileSync(promptsFile, PROMPTS.map((p) => JSON.stringify(p)).join('\n') + '\n');
    writeFileSync(rewardFile, 'export default (prompt, completion) => completion.length;\n');
    writeFileSync(templateFile, '{prompt}\n<<<A>>>{a}<<</A>>>\n<<<B>>>{b}<<</B>>>\nAnswer A or B.');
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`;
  });
  after(async () => {
    server.closeAllConnections();
    server.close();
    rmSync(root, { recursive: true, force: true });
  });

  const common = () => ['--prompts', promptsFile, '--max-new-tokens', String(MAX_NEW), '--batch-size', '4'];

  test('a model against itself ties every prompt: win rate ½ with the Wilson interval of 4.5/9', async () => {
    const json = lastJson(await runWinrate(['--model', modelA, '--baseline', modelA, ...common(), '--reward-fn', rewardFile]));
    assert.deepEqual([json.wins, json.ties, json.losses, json.skipped, json.win_rate, json.position_consistency], [0, 9, 0, 0, 0.5, null]);
    assertClose([json.ci_low as number, json.ci_high as number], wilsonInterval(4.5, 9), { atol: 1e-12 });
  });

  test('reward-function judge: greedy completions of each model, scored and counted; --output holds the stdout JSON', async () => {
    const output = join(root, 'out', 'winrate.json');
    const samplesOut = join(root, 'out', 'samples.jsonl');
    const run = await runWinrate(['--model', modelA, '--baseline', modelB, ...common(), '--reward-fn', rewardFile, '--output', output, '--samples-out', samplesOut]);
    const json = lastJson(run);
    assert.deepEqual(JSON.parse(readFileSync(output, 'utf8')), json);
    assert.match(run.stderr, /win rate of A over B .*95% CI \[.*\] \(Wilson score, ties count ½\)/);
    assert.deepEqual([json.temperature, json.max_new_tokens, json.ci_method, json.judge], [0, MAX_NEW, 'wilson', rewardFile]);

    const rows = readRows(samplesOut);
    assert.equal(rows.length, PROMPTS.length);
    // The completions are each model's own greedy continuation of the prompt tokenized by its own tokenizer.
    for (const [dir, key] of [[modelA, 'completion_a'], [modelB, 'completion_b']] as const) {
      const loaded = loadPretrained(dir);
      const items = await loadPrompts(promptsFile, loaded.tokenizer!);
      const greedy = samplePolicy(loaded.model, loaded.tokenizer!, items, 1, { maxNewTokens: MAX_NEW, batchSize: 9, rng: new Rng(0), eosTokenIds: [306], padTokenId: 0 });
      assert.deepEqual(rows.map((r) => r[key]), greedy.map((g) => g[0].text), key);
      loaded.model.dispose();
    }
    assert.equal(rows[2].prompt, 'user: Say hello in three languages.');
    assert.notDeepEqual(rows.map((r) => r.completion_a), rows.map((r) => r.completion_b), 'the two random models should differ');
    for (const row of rows) {
      assert.deepEqual([row.score_a, row.score_b], [row.completion_a.length, row.completion_b.length]);
      assert.equal(row.result, compareScores(row.score_a!, row.score_b!).result);
      assert.equal(row.consistent, null, 'scores have no order');
    }
    expectSummary(json, rows);
  });

  test('HTTP judge: the slow, failing, malformed and unparseable prompts are skipped and excluded; a biased answer is a split tie', async () => {
    requests.clear();
    const samplesOut = join(root, 'http-samples.jsonl');
    const run = await runWinrate(['--model', modelA, '--baseline', modelB, ...common(), '--samples-out', samplesOut,
      '--judge-url', url, '--judge-model', 'judge', '--judge-api-key-env', KEY_ENV, '--judge-template', templateFile,
      '--judge-timeout-ms', '1500', '--judge-retries', '1', '--judge-concurrency', '16']);
    const json = lastJson(run);
    const rows = readRows(samplesOut);
    assert.equal(json.skipped, FAULTS.length);
    assert.equal(json.comparisons, PROMPTS.length);
    for (const row of rows) {
      const fault = FAULTS.find((f) => row.prompt.startsWith(f));
      if (fault !== undefined) {
        assert.equal(row.result, 'skipped', fault);
        assert.equal(row.consistent, null);
        assert.ok(row.reason !== undefined && row.reason.includes('2 attempts failed'), `${fault}: ${row.reason}`);
      } else if (row.prompt.startsWith('BIASED')) {
        assert.deepEqual([row.result, row.consistent], ['tie', false]);
      } else {
        const [a, b] = [row.completion_a.length, row.completion_b.length];
        assert.deepEqual([row.result, row.consistent], a === b ? ['tie', false] : [a > b ? 'win' : 'loss', true], row.prompt);
      }
    }
    expectSummary(json, rows);
    // The HTTP judge swaps A/B itself, so winrate asks once: 2 requests per answered prompt, 2 × 2 attempts per fault.
    // (The 1.5 s timeout is generous so that a loaded machine does not time out, and retry, an instant answer.)
    assert.equal(requests.get('honest'), 2 * 4);
    assert.equal(requests.get('BIASED'), 2);
    for (const fault of FAULTS) assert.equal(requests.get(fault), 4, fault);
  });

  test('reward-model judge: both completions scored by a GPT2ForSequenceClassification, compared by score', async () => {
    const rm = join(root, 'reward-model');
    mkdirSync(rm, { recursive: true });
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(REPO, 'test', 'fixtures', 'seqcls', 'gpt2', f), join(rm, f));
    for (const f of readdirSync(TOKENIZER_DIR)) copyFileSync(join(TOKENIZER_DIR, f), join(rm, f));
    const samplesOut = join(root, 'rm-samples.jsonl');
    const json = lastJson(await runWinrate(['--model', modelA, '--baseline', modelB, ...common(), '--reward-model', rm, '--samples-out', samplesOut]));
    const rows = readRows(samplesOut);
    assert.equal(json.orders, 'scores');
    assert.equal(json.skipped, 0);
    for (const row of rows) {
      assert.ok(Number.isFinite(row.score_a) && Number.isFinite(row.score_b), 'both completions have a reward');
      assert.equal(row.result, compareScores(row.score_a!, row.score_b!).result);
    }
    expectSummary(json, rows);
  });

  test('local judge: a dpo-ts model reads the A/B answer log-probs, both orders averaged inside the judge', async () => {
    const judgeDir = join(root, 'judge'); // room for the judge prompt: the template, the prompt and both completions
    const config = { ...MODEL_CONFIG, n_positions: 256 };
    const model = createModelFromHFConfig(config, new Rng(3));
    await savePretrained(model, judgeDir, { config, tokenizerFrom: TOKENIZER_DIR });
    model.dispose();
    const samplesOut = join(root, 'local-samples.jsonl');
    const json = lastJson(await runWinrate(['--model', modelA, '--baseline', modelB, ...common(), '--local-judge', judgeDir, '--judge-template', templateFile, '--samples-out', samplesOut]));
    const rows = readRows(samplesOut);
    assert.deepEqual([json.orders, json.skipped, json.position_consistency, rows.length], ['judge-averages', 0, null, PROMPTS.length]);
    expectSummary(json, rows);
  });

  test('no judge flag is a usage error (exit 2) that lists the judge kinds', async () => {
    const run = await runWinrate(['--model', modelA, '--baseline', modelB, '--prompts', promptsFile]);
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /give exactly one judge: --reward-fn FILE/);
  });
});
