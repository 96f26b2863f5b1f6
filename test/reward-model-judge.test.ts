// The reward-model judge. First the sequence classifier against PyTorch: each checkpoint under test/fixtures/seqcls/
// (HF layout, made by scripts/fixtures/make_seqcls_fixtures.py) scores a right-padded batch as a float64 reference
// does (GPT-2 with a pad id that also ends a real row, Llama without a pad id, Qwen2). Then the judge on those weights
// with the test tokenizers: its ids are TRL's tokenization, micro-batched scores equal one-at-a-time ones, prefer()
// follows the scores, and broken directories fail with errors that name the file, the field and the fix.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Rng, currentBackend, scope, tensor } from '../src/index.js';
import { loadSafetensorsDir, saveSafetensors, type LoadedTensor } from '../src/io/index.js';
import {
  SequenceClassifier, loadSequenceClassifierWeights, parseSequenceClassifierConfig, pooledPositions,
} from '../src/models/sequence-classification.js';
import { loadRewardModel, rewardModelJudge, scoreAll } from '../src/online/index.js';
import { assertClose, type Tolerance } from './helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures'); // tests run from dist/test/
const SEQCLS = join(ROOT, 'seqcls');
const TOKENIZERS = join(ROOT, 'tokenizer');
const FIXTURES = ['gpt2', 'llama', 'qwen2'] as const;
type FixtureName = (typeof FIXTURES)[number];

interface Expected {
  input_ids: number[][];
  attention_mask: number[][];
  pooled_positions: number[];
  scores: { shape: number[]; data: number[] };
}

// float32 against a float64 reference on the same weights: rewards are O(1), the worst error seen is 6.5e-7.
const FLOAT32: Tolerance = { atol: 1e-5, rtol: 1e-5 };

function loadClassifier(name: FixtureName): SequenceClassifier {
  const dir = join(SEQCLS, name);
  const config = parseSequenceClassifierConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), `${name}/config.json`);
  const model = new SequenceClassifier(config, new Rng(0));
  loadSequenceClassifierWeights(model, loadSafetensorsDir(dir), `${name}/model.safetensors`);
  return model;
}

const readExpected = (name: FixtureName): Expected => JSON.parse(readFileSync(join(SEQCLS, name, 'expected.json'), 'utf8'));
const realTokens = (ex: Expected) => ex.input_ids.map((row, b) => row.slice(0, ex.attention_mask[b].reduce((s, m) => s + m, 0)));

describe(`sequence classifiers against the PyTorch reference (${currentBackend().name} backend)`, () => {
  for (const name of FIXTURES) {
    test(`${name}: the scores of a right-padded batch match PyTorch, read at HF's pooled positions`, () => {
      const model = loadClassifier(name);
      try {
        const ex = readExpected(name);
        const [b, t] = [ex.input_ids.length, ex.input_ids[0].length];
        const ids = Int32Array.from(ex.input_ids.flat());
        const mask = Uint8Array.from(ex.attention_mask.flat());
        assert.deepEqual(Array.from(pooledPositions(ids, b, t, model.config.padTokenId, mask)), ex.pooled_positions);
        scope(() => {
          const scores = model.forward(tensor(ids, [b, t], 'int32'), mask);
          assert.deepEqual(scores.shape, ex.scores.shape);
          assertClose(scores.data, ex.scores.data, FLOAT32, `${name} scores`);
        });
        // classify() pads by itself; each row alone gives the same score as in the batch.
        const rows = realTokens(ex);
        assertClose(model.classify(rows).flat(), ex.scores.data, FLOAT32, `${name} classify`);
        rows.forEach((row, i) => assertClose(model.classify([row])[0], [ex.scores.data[i]], FLOAT32, `${name} row ${i} alone`));
      } finally {
        model.dispose();
      }
    });
  }

  test('the classifier has exactly the checkpoint\'s tensors, under their HF names, and no lm_head', () => {
    for (const name of FIXTURES) {
      const model = loadClassifier(name);
      const names = [...model.namedParameters()].map(([n]) => n).sort();
      model.dispose();
      assert.deepEqual(names, [...loadSafetensorsDir(join(SEQCLS, name)).keys()].sort(), name);
      assert.ok(names.includes('score.weight') && !names.includes('lm_head.weight'), name);
    }
  });

  test('pooled positions: the last non-pad id (0 when all are padding), else the last real token, else the last column', () => {
    const ids = Int32Array.from([5, 9, 7, 9, 9, /**/ 9, 9, 9, 9, 9]);
    assert.deepEqual(Array.from(pooledPositions(ids, 2, 5, 9)), [2, 0]);
    assert.deepEqual(Array.from(pooledPositions(ids, 2, 5, 0)), [4, 4]);
    assert.deepEqual(Array.from(pooledPositions(ids, 2, 5, null, Uint8Array.from([1, 1, 1, 1, 0, 1, 1, 0, 0, 0]))), [3, 1]);
    assert.deepEqual(Array.from(pooledPositions(ids, 2, 5, null)), [4, 4]);
  });
});

// ------------------------------------------------------------------------------------------------ the judge
const tmpRoot = mkdtempSync(join(tmpdir(), 'dpo-rm-judge-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));

interface DirEdits {
  /** Changes to config.json. */
  config?: (c: Record<string, unknown>) => void;
  /** Changes to the weights (written back as model.safetensors). */
  weights?: (w: Map<string, LoadedTensor>) => void;
  /** Remove the tokenizer's chat template. */
  noChatTemplate?: boolean;
  noTokenizer?: boolean;
}

/** A reward-model directory: a fixture's weights and config next to one of the test tokenizers, edited. */
function rewardDir(name: FixtureName, tokenizer: 'chatml' | 'llama-style', edits: DirEdits = {}): string {
  const src = join(SEQCLS, name);
  const dirPath = mkdtempSync(join(tmpRoot, `${name}-`));
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  edits.config?.(config);
  writeFileSync(join(dirPath, 'config.json'), JSON.stringify(config));
  if (edits.weights) {
    const weights = loadSafetensorsDir(src);
    edits.weights(weights);
    saveSafetensors(join(dirPath, 'model.safetensors'), weights);
  } else {
    copyFileSync(join(src, 'model.safetensors'), join(dirPath, 'model.safetensors'));
  }
  if (!edits.noTokenizer) {
    for (const file of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja']) {
      try { copyFileSync(join(TOKENIZERS, tokenizer, file), join(dirPath, file)); } catch { /* not every tokenizer has every file */ }
    }
    if (edits.noChatTemplate) {
      rmSync(join(dirPath, 'chat_template.jinja'), { force: true });
      const cfgPath = join(dirPath, 'tokenizer_config.json');
      const tc = JSON.parse(readFileSync(cfgPath, 'utf8'));
      delete tc.chat_template;
      writeFileSync(cfgPath, JSON.stringify(tc));
    }
  }
  return dirPath;
}

const PROMPTS = ['What is the capital of France?', 'Say something kind.', 'the model prefers', '2+2=', 'Name a colour.', 'Why?', 'a café in the city'];
const COMPLETIONS = [' Paris.', ' You did well today, thanks for the answer.', ' the chosen answer', ' 4', ' Blue', ' Because the loss is the log sigmoid of the scaled margin.', ' résumé'];

describe('rewardModelJudge', () => {
  test('without a chat template, it scores tokenizer(prompt + completion + EOS), as TRL\'s RewardTrainer tokenizes', async () => {
    const rm = loadRewardModel(rewardDir('gpt2', 'chatml', { noChatTemplate: true }));
    const judge = rewardModelJudge(rm);
    try {
      const expectedIds = rm.tokenizer.encode('What is 2+2? Four.<|im_end|>');
      assert.deepEqual(judge.ids('What is 2+2?', ' Four.'), expectedIds);
      assert.equal(expectedIds[expectedIds.length - 1], rm.tokenizer.eosTokenId, 'the EOS is the last token');
      assert.deepEqual(judge.ids('What is 2+2?', ' Four.<|im_end|>'), expectedIds, 'no second EOS');
      assertClose([await judge.score('What is 2+2?', ' Four.')], rm.classifier.classify([expectedIds])[0], { atol: 1e-6, rtol: 0 });
    } finally {
      rm.classifier.dispose();
    }
  });

  test('with a chat template, it scores [user: prompt, assistant: completion] rendered and tokenized', async () => {
    const rm = loadRewardModel(rewardDir('qwen2', 'chatml'));
    const judge = rewardModelJudge(rm);
    try {
      const rendered = '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\nFour.<|im_end|>\n';
      const expectedIds = rm.tokenizer.encode(rendered, { addSpecialTokens: false });
      assert.deepEqual(judge.ids('What is 2+2?', 'Four.'), expectedIds);
      assertClose([await judge.score('What is 2+2?', 'Four.')], rm.classifier.classify([expectedIds])[0], { atol: 1e-6, rtol: 0 });
      // chatTemplate: false falls back to the plain text form, with the tokenizer's own special tokens.
      assert.deepEqual(rewardModelJudge(rm, { chatTemplate: false }).ids('Hi', ' there'), rm.tokenizer.encode('Hi there<|im_end|>'));
    } finally {
      rm.classifier.dispose();
    }
  });

  test('a Llama reward model with a BOS-adding tokenizer: BOS first, EOS last', () => {
    const rm = loadRewardModel(rewardDir('llama', 'llama-style'));
    try {
      const ids = rewardModelJudge(rm, { chatTemplate: false }).ids('the model', ' learns');
      assert.equal(ids[0], rm.tokenizer.bosTokenId);
      assert.equal(ids[ids.length - 1], rm.tokenizer.eosTokenId);
    } finally {
      rm.classifier.dispose();
    }
  });

  for (const [name, tokenizer] of [['gpt2', 'chatml'], ['llama', 'llama-style'], ['qwen2', 'chatml']] as const) {
    test(`${name}: concurrent calls are micro-batched, and batched scores equal one-at-a-time scores`, async () => {
      const rm = loadRewardModel(rewardDir(name, tokenizer));
      try {
        const judge = rewardModelJudge(rm, { batchSize: 3 });
        const batched = await scoreAll(judge, PROMPTS, COMPLETIONS);
        assert.deepEqual(judge.stats(), { sequences: 7, batches: 3 }, 'seven sequences in ⌈7/3⌉ forward passes');
        const alone = PROMPTS.map((p, i) => rm.classifier.classify([judge.ids(p, COMPLETIONS[i])])[0][0]);
        assertClose(batched, alone, FLOAT32, `${name} batched vs alone`);
        assert.ok(new Set(batched).size === batched.length, 'different texts get different rewards');
        // Awaited one by one, each call is its own forward pass; the numbers do not change.
        const sequential = rewardModelJudge(rm, { batchSize: 3 });
        for (let i = 0; i < 3; i++) assertClose([await sequential.score(PROMPTS[i], COMPLETIONS[i])], [batched[i]], FLOAT32);
        assert.deepEqual(sequential.stats(), { sequences: 3, batches: 3 });
        assert.deepEqual(await judge.scoreBatch(PROMPTS, COMPLETIONS), batched, 'the same batch again gives the same numbers');
      } finally {
        rm.classifier.dispose();
      }
    });
  }

  test('prefer(): the higher reward wins with confidence σ(|Δr|); swapping flips the winner; identical texts tie', async () => {
    const judge = rewardModelJudge(rewardDir('gpt2', 'chatml'));
    try {
      const [ra, rb] = await judge.scoreBatch(['Say something kind.', 'Say something kind.'], [COMPLETIONS[1], COMPLETIONS[5]]);
      assert.notEqual(ra, rb);
      const p = await judge.prefer('Say something kind.', COMPLETIONS[1], COMPLETIONS[5]);
      const q = await judge.prefer('Say something kind.', COMPLETIONS[5], COMPLETIONS[1]);
      assert.equal(p.winner, ra > rb ? 0 : 1);
      assert.equal(q.winner, ra > rb ? 1 : 0);
      assertClose([p.confidence!, q.confidence!], [1, 1].map(() => 1 / (1 + Math.exp(-Math.abs(ra - rb)))), { atol: 1e-6, rtol: 0 });
      assert.ok(p.confidence! > 0.5);
      assert.deepEqual(await judge.prefer('Why?', ' Because.', ' Because.'), { winner: null, confidence: 0.5, status: 'ok' });
    } finally {
      judge.dispose();
    }
  });

  test('the CLI flag --reward-model builds this judge', async () => {
    const { judgeFromFlags } = await import('../src/cli/judge-flags.js');
    const dir = rewardDir('qwen2', 'chatml');
    const judge = await judgeFromFlags({
      'reward-fn': undefined, 'reward-model': dir, 'judge-url': undefined, 'judge-model': undefined, 'judge-api-key-env': 'OPENAI_API_KEY',
      'judge-template': undefined, 'judge-timeout-ms': 1000, 'judge-retries': 0, 'judge-concurrency': 1, 'local-judge': undefined,
    }, 'test');
    assert.equal(judge.name, `reward-model:${dir}`);
    const reference = rewardModelJudge(dir);
    assert.equal(await judge.score!('Hi', 'there'), await reference.score('Hi', 'there'));
    reference.dispose();
  });
});

describe('rewardModelJudge errors name the file, the field and the fix', () => {
  const fails = (dir: string, ...patterns: (RegExp | string)[]) => assert.throws(() => rewardModelJudge(dir), (err: Error) => {
    for (const p of patterns) assert.ok(typeof p === 'string' ? err.message.includes(p) : p.test(err.message), `"${err.message}" lacks ${String(p)}`);
    return true;
  });
  const zeros = (w: Map<string, LoadedTensor>, name: string, shape: number[]) => w.set(name, { dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });

  test('architectures: a causal LM, an unsupported classifier, a model_type that disagrees', () => {
    let dir = rewardDir('gpt2', 'chatml', { config: (c) => { c.architectures = ['GPT2LMHeadModel']; } });
    fails(dir, join(dir, 'config.json'), '"architectures"', 'GPT2LMHeadModel is a causal LM, not a reward model', '--local-judge');
    dir = rewardDir('gpt2', 'chatml', { config: (c) => { c.architectures = ['BertForSequenceClassification']; } });
    fails(dir, join(dir, 'config.json'), 'must be one of GPT2ForSequenceClassification, LlamaForSequenceClassification, Qwen2ForSequenceClassification', 'AutoModelForSequenceClassification');
    dir = rewardDir('gpt2', 'chatml', { config: (c) => { c.model_type = 'llama'; } });
    fails(dir, '"model_type" is "llama" but "architectures" names GPT2ForSequenceClassification');
  });

  test('num_labels ≠ 1, in config.json or in score.weight', () => {
    let dir = rewardDir('gpt2', 'chatml', { config: (c) => { c.id2label = { 0: 'bad', 1: 'good' }; } });
    fails(dir, join(dir, 'config.json'), 'num_labels = 2', 'num_labels=1');
    dir = rewardDir('gpt2', 'chatml', { config: (c) => { delete c.id2label; delete c.label2id; }, weights: (w) => zeros(w, 'score.weight', [2, 16]) });
    fails(dir, join(dir, 'model.safetensors'), 'score.weight is [2, 16], num_labels = 2', 'num_labels=1');
  });

  test('score.weight missing or of the wrong width; lm_head.weight present; a body tensor missing', () => {
    let dir = rewardDir('gpt2', 'chatml', { weights: (w) => { w.delete('score.weight'); } });
    fails(dir, join(dir, 'model.safetensors'), 'no score.weight', 'AutoModelForSequenceClassification');
    dir = rewardDir('gpt2', 'chatml', { weights: (w) => { w.delete('score.weight'); zeros(w, 'lm_head.weight', [320, 16]); } });
    fails(dir, 'no score.weight', 'it is a causal LM, not a reward model');
    dir = rewardDir('gpt2', 'chatml', { weights: (w) => zeros(w, 'score.weight', [1, 8]) });
    fails(dir, join(dir, 'model.safetensors'), 'score.weight is [1, 8]', 'needs [1, 16]');
    dir = rewardDir('qwen2', 'chatml', { weights: (w) => zeros(w, 'lm_head.weight', [320, 24]) });
    fails(dir, 'has lm_head.weight', 'has no LM head');
    dir = rewardDir('llama', 'chatml', { weights: (w) => { w.delete('model.norm.weight'); } });
    fails(dir, 'does not fit LlamaForSequenceClassification', 'missing (1): model.norm.weight');
  });

  test('no tokenizer, a pad_token_id outside the vocabulary, a sequence over maxLength', async () => {
    let dir = rewardDir('gpt2', 'chatml', { noTokenizer: true });
    fails(dir, 'no tokenizer.json', 'copy the tokenizer files');
    dir = rewardDir('gpt2', 'chatml', { config: (c) => { c.pad_token_id = 320; } });
    fails(dir, join(dir, 'config.json'), '"pad_token_id" must be a token id in [0, 320)');
    const judge = rewardModelJudge(rewardDir('gpt2', 'chatml'), { maxLength: 5 });
    await assert.rejects(judge.score('What is the capital of France?', ' Paris.'), /is \d+ tokens, more than maxLength 5; shorten/);
    judge.dispose();
  });
});
