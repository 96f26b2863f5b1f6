// The local pairwise judge on a tiny random GPT-2 built here, with the test tokenizers. The log-probs it reads equal
// an independent forward of the exact prompt text, both orders are combined as documented (swapping the pair mirrors
// the result, a judge biased only by position ties), answer letters follow the documented " A" / "A" rule, concurrent
// calls share batches without changing the numbers, and the judge is deterministic, also when loaded from disk.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Rng, currentBackend, logSoftmax, noGrad, reshape, scope, slice, tensor } from '../src/index.js';
import { loadTokenizer, savePretrained, type Pretrained, type Tokenizer } from '../src/io/index.js';
import { createModel, parseModelConfig, type CausalLM } from '../src/models/index.js';
import { answerTokenIds, localPairwiseJudge, type LocalComparison } from '../src/online/index.js';
import { assertClose } from './helpers.js';

const TOKENIZERS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'tokenizer'); // tests run from dist/test/
// initializer_range 0.5 spreads the logits (std ≈ 2), so the two letters and the two orders read clearly different.
const CONFIG = { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 320, n_positions: 512, n_embd: 16, n_layer: 2, n_head: 2, initializer_range: 0.5 };
const TEMPLATE = 'Which is better?\n{prompt}\nA: {a}\nB: {b}';
const tmpRoot = mkdtempSync(join(tmpdir(), 'dpo-local-judge-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));

function pretrained(tokenizer: 'chatml' | 'llama-style' | Tokenizer, seed = 1): Pretrained {
  const model = createModel(parseModelConfig(CONFIG), new Rng(seed));
  const tok = typeof tokenizer === 'string' ? loadTokenizer(join(TOKENIZERS, tokenizer))! : tokenizer;
  return { model, config: CONFIG, modelConfig: parseModelConfig(CONFIG), tokenizer: tok, generationConfig: null };
}

/** Independently: one unpadded forward of `ids`, the full log-softmax at the last position. */
function nextTokenLogps(model: CausalLM, ids: number[]): number[] {
  return noGrad(() => scope(() => {
    const hidden = model.forward(tensor(ids, [1, ids.length], 'int32'));
    const last = reshape(slice(hidden, [0, ids.length - 1, 0], [1, ids.length, model.hiddenSize]), [1, model.hiddenSize]);
    return Array.from(logSoftmax(model.logits(last)).data);
  }));
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const LOGP = { atol: 1e-5, rtol: 1e-5 };

/** The chatml tokenizer with "ĠA" and "ĠB" merged into single tokens (ids 310 and 311), and no chat template. */
function spacedLetterTokenizer(): Tokenizer {
  const dir = mkdtempSync(join(tmpRoot, 'tok-'));
  cpSync(join(TOKENIZERS, 'chatml'), dir, { recursive: true });
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  Object.assign(json.model.vocab, { 'ĠA': 310, 'ĠB': 311 });
  json.model.merges.push(['Ġ', 'A'], ['Ġ', 'B']);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
  delete config.chat_template;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return loadTokenizer(dir)!;
}

describe(`localPairwiseJudge (${currentBackend().name} backend)`, () => {
  test('with a chat template: it reads log p(A) and log p(B) after the rendered prompt, in both orders, as a plain forward does', async () => {
    const pre = pretrained('chatml');
    const tok = pre.tokenizer!;
    const judge = localPairwiseJudge(pre, { template: TEMPLATE });
    const cmp = await judge.compare('2+2?', 'four', 'five');
    const rendered = (a: string, b: string) => `<|im_start|>user\nWhich is better?\n2+2?\nA: ${a}\nB: ${b}<|im_end|>\n<|im_start|>assistant\n`;
    const [A, B] = [tok.tokenToId('A')!, tok.tokenToId('B')!]; // after "assistant\n" the letter comes bare
    const straightIds = tok.encode(rendered('four', 'five'), { addSpecialTokens: false });
    const swappedIds = tok.encode(rendered('five', 'four'), { addSpecialTokens: false });
    assert.deepEqual(judge.context('2+2?', 'four', 'five'), { ids: straightIds, answerIds: [A, B] });
    const straight = nextTokenLogps(pre.model, straightIds);
    const swapped = nextTokenLogps(pre.model, swappedIds);
    assertClose([cmp.straight.logpA, cmp.straight.logpB], [straight[A], straight[B]], LOGP, 'straight order');
    assertClose([cmp.swapped.logpA, cmp.swapped.logpB], [swapped[A], swapped[B]], LOGP, 'swapped order');
    // P(four better): "A" in the straight order, "B" in the swapped one, each a two-way softmax, averaged.
    const pFirst = (sigmoid(straight[A] - straight[B]) + sigmoid(swapped[B] - swapped[A])) / 2;
    assertClose([cmp.pFirst], [pFirst], LOGP, 'pFirst');
    assert.ok(Math.abs(pFirst - 0.5) > 1e-3, `the random model has an opinion here (pFirst ${pFirst})`);
    assert.deepEqual(cmp.preference, { winner: cmp.pFirst > 0.5 ? 0 : 1, confidence: Math.max(cmp.pFirst, 1 - cmp.pFirst), status: 'ok' });
    assert.deepEqual(await judge.prefer('2+2?', 'four', 'five'), cmp.preference);
    assert.equal(judge.score, undefined, 'a pairwise judge cannot score');
    pre.model.dispose();
  });

  test('without a chat template: BOS, the filled template and "\\nAnswer:", then " A" / " B" when they are single tokens, else "A" / "B"', async () => {
    const pre = pretrained('llama-style');
    const tok = pre.tokenizer!;
    const judge = localPairwiseJudge(pre, { template: TEMPLATE, chatTemplate: false });
    const text = 'Which is better?\n2+2?\nA: four\nB: five\nAnswer:';
    const ids = [tok.bosTokenId!, ...tok.encode(text, { addSpecialTokens: false })];
    // This tokenizer has no single-token " A", so the bare letters are read.
    assert.deepEqual(judge.context('2+2?', 'four', 'five'), { ids, answerIds: [tok.tokenToId('A')!, tok.tokenToId('B')!] });
    const cmp = await judge.compare('2+2?', 'four', 'five');
    assertClose([cmp.straight.logpA, cmp.straight.logpB], [nextTokenLogps(pre.model, ids)[65], nextTokenLogps(pre.model, ids)[66]], LOGP);

    const spaced = spacedLetterTokenizer();
    assert.deepEqual(answerTokenIds(spaced, 'Answer:'), [310, 311], 'after text: " A"');
    assert.deepEqual(answerTokenIds(spaced, 'Answer:\n'), [65, 66], 'after whitespace: "A"');
    assert.deepEqual(answerTokenIds(tok, 'Answer:'), [65, 66], 'no single-token " A": fall back to "A"');
    const spacedPre = pretrained(spaced);
    const spacedJudge = localPairwiseJudge(spacedPre, { template: TEMPLATE });
    const context = spacedJudge.context('2+2?', 'four', 'five');
    assert.deepEqual(context, { ids: spaced.encode(text, { addSpecialTokens: false }), answerIds: [310, 311] }, 'no BOS: this tokenizer has none');
    const reading = (await spacedJudge.compare('2+2?', 'four', 'five')).straight;
    const independent = nextTokenLogps(spacedPre.model, context.ids);
    assertClose([reading.logpA, reading.logpB], [independent[310], independent[311]], LOGP);
    pre.model.dispose();
    spacedPre.model.dispose();
  });

  test('swapping a and b mirrors the result: the orders trade places, pFirst becomes 1 − pFirst, the winner flips', async () => {
    const pre = pretrained('chatml', 2);
    const judge = localPairwiseJudge(pre, { template: TEMPLATE });
    const ab = await judge.compare('Name a colour.', 'blue', 'the loss');
    const ba = await judge.compare('Name a colour.', 'the loss', 'blue');
    assertClose([ba.straight.logpA, ba.straight.logpB, ba.swapped.logpA, ba.swapped.logpB], [ab.swapped.logpA, ab.swapped.logpB, ab.straight.logpA, ab.straight.logpB], LOGP);
    assertClose([ba.pFirst], [1 - ab.pFirst], LOGP);
    assert.equal(ba.preference.winner, ab.preference.winner === 0 ? 1 : 0);
    assertClose([ba.preference.confidence!], [ab.preference.confidence!], LOGP);
    pre.model.dispose();
  });

  test('a judge biased only by position (it says "A" whatever the content) ties, and identical answers tie', async () => {
    const pre = pretrained('chatml', 3);
    const tok = pre.tokenizer!;
    // ln_f = 0·x + 3·e₀: every position's hidden state is (3, 0, …), so the next token ignores the prompt entirely;
    // wte[A][0] = 2 makes "A" far likelier than "B".
    const C = 16;
    pre.model.setParameter('transformer.ln_f.weight', new Float32Array(C), [C]);
    pre.model.setParameter('transformer.ln_f.bias', Float32Array.from({ length: C }, (_, i) => (i === 0 ? 3 : 0)), [C]);
    const wte = pre.model.getParameter('transformer.wte.weight');
    const [A, B] = [tok.tokenToId('A')!, tok.tokenToId('B')!];
    wte.data[A * C] = 2;
    wte.data[B * C] = -1;
    const judge = localPairwiseJudge(pre, { template: TEMPLATE });
    const cmp = await judge.compare('Say something kind.', 'You did well.', 'the rejected answer');
    assert.ok(cmp.straight.logpA - cmp.straight.logpB > 8 && cmp.swapped.logpA - cmp.swapped.logpB > 8, 'both orders say "A"');
    assert.equal(cmp.pFirst, 0.5);
    assert.deepEqual(cmp.preference, { winner: null, confidence: 0.5, status: 'ok' });
    pre.model.dispose();

    const random = pretrained('chatml', 4);
    const same = await localPairwiseJudge(random, { template: TEMPLATE }).compare('Why?', 'Because.', 'Because.');
    assert.deepEqual(same.preference, { winner: null, confidence: 0.5, status: 'ok' });
    random.model.dispose();
  });

  test('concurrent calls share batches with the same numbers; the judge is deterministic, also loaded from a directory', async () => {
    const pre = pretrained('chatml', 5);
    const pairs: [string, string, string][] = [['2+2?', 'four', 'five'], ['Name a colour.', 'blue', 'the loss'], ['Why?', 'Because the margin grows.', 'no']];
    const one = localPairwiseJudge(pre, { template: TEMPLATE, batchSize: 1 });
    const sequential: LocalComparison[] = [];
    for (const [p, a, b] of pairs) sequential.push(await one.compare(p, a, b));
    assert.deepEqual(one.stats(), { pairs: 3, sequences: 6, batches: 6 });
    const batched = localPairwiseJudge(pre, { template: TEMPLATE, batchSize: 4 });
    const together = await Promise.all(pairs.map(([p, a, b]) => batched.compare(p, a, b)));
    assert.deepEqual(batched.stats(), { pairs: 3, sequences: 6, batches: 2 }, 'six prompts in ⌈6/4⌉ forward passes');
    const numbers = (cs: LocalComparison[]) => cs.flatMap((c) => [c.straight.logpA, c.straight.logpB, c.swapped.logpA, c.swapped.logpB, c.pFirst]);
    assertClose(numbers(together), numbers(sequential), LOGP, 'batched vs one at a time');
    assert.deepEqual(await Promise.all(pairs.map(([p, a, b]) => batched.compare(p, a, b))), together, 'the same calls again give the same numbers');

    const dir = join(tmpRoot, 'model');
    await savePretrained(pre.model, dir, { config: CONFIG, tokenizerFrom: join(TOKENIZERS, 'chatml') });
    const fromDisk = localPairwiseJudge(dir, { template: TEMPLATE, batchSize: 4 });
    assert.equal(fromDisk.name, `local-judge:${dir}`);
    assert.deepEqual(await Promise.all(pairs.map(([p, a, b]) => fromDisk.compare(p, a, b))), together, 'saved and reloaded: identical');
    fromDisk.dispose();
    pre.model.dispose();
  });

  test('the CLI flag --local-judge builds it with --judge-template, and bad inputs fail clearly', async () => {
    const pre = pretrained('chatml', 6);
    const dir = join(tmpRoot, 'cli-model');
    await savePretrained(pre.model, dir, { config: CONFIG, tokenizerFrom: join(TOKENIZERS, 'chatml') });
    const templateFile = join(tmpRoot, 'template.txt');
    writeFileSync(templateFile, TEMPLATE);
    const { judgeFromFlags } = await import('../src/cli/judge-flags.js');
    const judge = await judgeFromFlags({
      'reward-fn': undefined, 'reward-model': undefined, 'judge-url': undefined, 'judge-model': undefined, 'judge-api-key-env': 'OPENAI_API_KEY',
      'judge-template': templateFile, 'judge-timeout-ms': 1000, 'judge-retries': 0, 'judge-concurrency': 1, 'local-judge': dir,
    }, 'test');
    assert.equal(judge.name, `local-judge:${dir}`);
    assert.deepEqual(await judge.prefer('2+2?', 'four', 'five'), (await localPairwiseJudge(pre, { template: TEMPLATE }).compare('2+2?', 'four', 'five')).preference);

    assert.throws(() => localPairwiseJudge(pre, { template: 'Which? {a} or {b}' }), /template lacks \{prompt\}/);
    assert.throws(() => localPairwiseJudge({ ...pre, tokenizer: null }), /has no tokenizer/);
    const noTemplate = pretrained(spacedLetterTokenizer());
    assert.throws(() => localPairwiseJudge(noTemplate, { chatTemplate: true }), /has no chat template/);
    noTemplate.model.dispose();
    await assert.rejects(localPairwiseJudge(pre, { maxLength: 10 }).prefer('2+2?', 'four', 'five'), /the judge prompt is \d+ tokens, more than maxLength 10/);
    pre.model.dispose();
  });
});
