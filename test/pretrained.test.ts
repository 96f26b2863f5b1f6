// savePretrained / loadPretrained on tiny random models built here, and the `dpo inspect`, `dpo generate` and
// `dpo bench forward` commands run as child processes on a saved directory with the committed test tokenizer.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Rng, currentBackend, noGrad, tensor } from '../src/index.js';
import { decodeBF16, encodeBF16, readSafetensorsHeader, saveSafetensors } from '../src/io/index.js';
import { generationDefaults, loadPretrained, savePretrained, summarizeWeights } from '../src/io/pretrained.js';
import { createStreamDecoder, loadTokenizer } from '../src/io/tokenizer.js';
import { generate } from '../src/models/generate.js';
import { createModelFromHFConfig, stateDict, type CausalLM } from '../src/models/index.js';
import { assertClose } from './helpers.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..'); // tests run from dist/test/
const BIN = join(REPO, 'bin', 'dpo.js');
const TOKENIZER_DIR = join(REPO, 'test', 'fixtures', 'tokenizer', 'chatml'); // byte-level BPE, 307 ids, a chat template

const CONFIGS = {
  gpt2: { model_type: 'gpt2', vocab_size: 307, n_positions: 64, n_embd: 16, n_layer: 2, n_head: 2, initializer_range: 0.5, eos_token_id: 306, bos_token_id: 306 },
  llama: {
    model_type: 'llama', vocab_size: 53, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, max_position_embeddings: 64, initializer_range: 0.5, eos_token_id: 2, custom_note: 'kept',
  },
  qwen2: {
    model_type: 'qwen2', vocab_size: 53, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2,
    max_position_embeddings: 64, initializer_range: 0.5, tie_word_embeddings: true,
  },
} as const;
type Arch = keyof typeof CONFIGS;

const root = mkdtempSync(join(tmpdir(), 'dpo-pretrained-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (name: string) => join(root, `${name}-${dirCount++}`);

const build = (arch: Arch, seed = 7) => createModelFromHFConfig(CONFIGS[arch], new Rng(seed));
const IDS = [[1, 5, 9, 13, 2, 40], [7, 3, 11, 50, 8, 6]];
/** (B, T, V) logits of IDS, as a plain array. */
const logitsOf = (model: CausalLM): number[] =>
  noGrad(() => model.logits(model.forward(tensor(IDS.flat(), [IDS.length, IDS[0].length], 'int32'))).toArray());
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8'));

describe(`savePretrained → loadPretrained (${currentBackend().name} backend)`, () => {
  for (const arch of Object.keys(CONFIGS) as Arch[]) {
    test(`${arch}: an F32 round trip gives identical logits`, async () => {
      const model = build(arch);
      const dir = freshDir(arch);
      const files = await savePretrained(model, dir, { config: CONFIGS[arch] });
      assert.deepEqual(files, ['config.json', 'model.safetensors', 'generation_config.json']);
      const loaded = loadPretrained(dir);
      assert.deepEqual(logitsOf(loaded.model), logitsOf(model));
      assert.equal(loaded.tokenizer, null, 'a directory without tokenizer.json loads without a tokenizer');
      model.dispose();
      loaded.model.dispose();
    });
  }

  test('config.json keeps every original key and adds architectures, model_type and torch_dtype; weights carry {"format": "pt"}', async () => {
    const model = build('llama');
    const dir = freshDir('keys');
    await savePretrained(model, dir, { config: CONFIGS.llama });
    const config = readJson(join(dir, 'config.json'));
    assert.deepEqual(config, { ...CONFIGS.llama, architectures: ['LlamaForCausalLM'], torch_dtype: 'float32' });
    assert.deepEqual(readJson(join(dir, 'generation_config.json')), { _from_model_config: true, eos_token_id: 2 });
    assert.equal(readSafetensorsHeader(join(dir, 'model.safetensors')).metadata.format, 'pt');
    model.dispose();
  });

  test('BF16: weights are stored as bfloat16 (torch_dtype "bfloat16") and load back as their rounding; logits stay close', async () => {
    const model = build('gpt2');
    const dir = freshDir('bf16');
    await savePretrained(model, dir, { config: CONFIGS.gpt2, dtype: 'BF16' });
    assert.equal(readJson(join(dir, 'config.json')).torch_dtype, 'bfloat16');
    assert.deepEqual(Object.keys(summarizeWeights(dir).dtypes), ['BF16']);
    const loaded = loadPretrained(dir);
    const reloaded = new Map(loaded.model.namedParameters());
    for (const [name, p] of model.namedParameters()) {
      const src = Float32Array.from(p.data);
      const bits = new Uint16Array(src.length);
      encodeBF16(src, bits);
      const rounded = new Float32Array(src.length);
      decodeBF16(bits, rounded);
      assert.deepEqual(reloaded.get(name)!.data, rounded, `${name} is the bfloat16 rounding of the original`);
    }
    // bfloat16 keeps 8 significant bits (relative rounding ≤ 2⁻⁹); through this model's two layers (weights of std 0.5)
    // the worst logit moves by 1.0% of the largest |logit|. Allow 3%.
    const want = logitsOf(model);
    const range = Math.max(...want.map(Math.abs));
    assertClose(logitsOf(loaded.model), want, { atol: 0.03 * range, rtol: 0 }, 'bf16 logits');
    model.dispose();
    loaded.model.dispose();
  });

  test('a sharded save (tiny maxShardBytes) writes shards and an index with the standard keys, and loads back identical', async () => {
    const model = build('llama');
    const dir = freshDir('sharded');
    const files = await savePretrained(model, dir, { config: CONFIGS.llama, maxShardBytes: 4096 });
    const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    assert.ok(shards.length > 1, `several shards, got ${files.join(', ')}`);
    assert.ok(!existsSync(join(dir, 'model.safetensors')));
    const index = readJson(join(dir, 'model.safetensors.index.json')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    const params = stateDict(model);
    assert.deepEqual(Object.keys(index.weight_map).sort(), [...params.keys()].sort());
    assert.deepEqual([...new Set(Object.values(index.weight_map))].sort(), shards);
    assert.equal(index.metadata.total_size, [...params.values()].reduce((s, t) => s + 4 * t.data.length, 0));
    const loaded = loadPretrained(dir);
    assert.deepEqual(logitsOf(loaded.model), logitsOf(model));
    // Saving again unsharded replaces the whole directory: no stale shard or index remains.
    await savePretrained(model, dir, { config: CONFIGS.llama });
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'generation_config.json', 'model.safetensors']);
    model.dispose();
    loaded.model.dispose();
  });

  test('the tokenizer files travel with tokenizerFrom and load back; generation defaults come from the saved files', async () => {
    const model = build('gpt2');
    const dir = freshDir('tok');
    const files = await savePretrained(model, dir, { config: CONFIGS.gpt2, tokenizerFrom: TOKENIZER_DIR });
    assert.ok(files.includes('tokenizer.json') && files.includes('tokenizer_config.json'));
    const loaded = loadPretrained(dir);
    assert.ok(loaded.tokenizer);
    assert.deepEqual(loaded.tokenizer.encode('hi there'), loadTokenizer(TOKENIZER_DIR)!.encode('hi there'));
    assert.deepEqual(loaded.generationConfig, { _from_model_config: true, bos_token_id: 306, eos_token_id: 306 });
    assert.deepEqual(generationDefaults(loaded), { temperature: 0, eosTokenIds: [306], padTokenId: 304 });
    model.dispose();
    loaded.model.dispose();
  });
});

describe('loadPretrained and savePretrained errors name the file and the fix', () => {
  test('a missing directory, and a directory without config.json', () => {
    assert.throws(() => loadPretrained(freshDir('nothing')), /not a model directory \(it does not exist or is a file\)/);
    const dir = freshDir('noconfig');
    mkdirSync(dir);
    writeFileSync(join(dir, 'model.safetensors'), '');
    assert.throws(() => loadPretrained(dir), (e: Error) => e.message.startsWith(`${join(dir, 'config.json')} not found`) && /needs the HF config\.json/.test(e.message));
  });

  test('an unsupported model_type', async () => {
    const dir = freshDir('bert');
    const model = build('qwen2');
    await savePretrained(model, dir, { config: CONFIGS.qwen2 });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'bert', hidden_size: 16 }));
    assert.throws(() => loadPretrained(dir), (e: Error) => e.message.includes(join(dir, 'config.json')) && /model_type "bert" is not supported; supported model types: gpt2/.test(e.message));
    model.dispose();
  });

  test('a wrongly shaped weight', async () => {
    const dir = freshDir('shape');
    const model = build('gpt2');
    await savePretrained(model, dir, { config: CONFIGS.gpt2 });
    const weights = stateDict(model);
    weights.set('transformer.ln_f.weight', { shape: [17], data: new Float32Array(17) });
    saveSafetensors(join(dir, 'model.safetensors'), weights);
    assert.throws(() => loadPretrained(dir), (e: Error) =>
      e.message.includes(join(dir, 'model.safetensors')) && /wrong shape \(1\): transformer\.ln_f\.weight is \[17\] in the checkpoint, \[16\] in the model/.test(e.message) && /check that config\.json belongs to these weights/.test(e.message));
    model.dispose();
  });

  test('saving with a config that does not describe the model, or a tokenizer directory without tokenizer.json', async () => {
    const model = build('gpt2');
    await assert.rejects(savePretrained(model, freshDir('bad'), { config: { ...CONFIGS.gpt2, n_embd: 32 } }), /hiddenSize 32 in the config, 16 in the model/);
    await assert.rejects(savePretrained(model, freshDir('bad'), { config: CONFIGS.gpt2, tokenizerFrom: root }), /has no tokenizer\.json/);
    model.dispose();
  });
});

// ------------------------------------------------------------------------------------------------ the CLI
function dpo(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: process.env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the dpo CLI on a saved model directory', () => {
  let dir = '';
  const model = build('gpt2', 3);
  const ready = (async () => {
    dir = freshDir('cli');
    await savePretrained(model, dir, { config: CONFIGS.gpt2, tokenizerFrom: TOKENIZER_DIR });
  })();
  after(() => model.dispose());

  test('dpo inspect --json reports architecture, parameters, stored dtype, vocabulary, special tokens and the chat template', async () => {
    await ready;
    const r = dpo('inspect', '--model', dir, '--json');
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.equal(info.architecture, 'GPT2LMHeadModel');
    assert.equal(info.parameters, model.numParameters());
    assert.equal(info.weights_dtype, 'F32');
    assert.equal(info.vocab_size, 307);
    assert.deepEqual(info.tokenizer, {
      vocab_size: 307, chat_template: true,
      special_tokens: { bos: null, eos: { token: '<|im_end|>', id: 306 }, pad: { token: '<|endoftext|>', id: 304 }, unk: null },
    });
    const text = dpo('inspect', '--model', dir);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /GPT2LMHeadModel[\s\S]*parameters:\s+\S+ \(\d+\)[\s\S]*F32[\s\S]*chat template: yes/);
  });

  for (const chat of [false, true]) {
    test(`dpo generate${chat ? ' --chat' : ''} streams the greedy continuation that generate() gives in-process`, async () => {
      await ready;
      const r = dpo('generate', '--model', dir, '--prompt', 'hello world', '--max-new-tokens', '12', ...(chat ? ['--chat'] : []));
      assert.equal(r.status, 0, r.stderr);
      const tokenizer = loadTokenizer(dir)!;
      const text = chat ? tokenizer.applyChatTemplate([{ role: 'user', content: 'hello world' }], { addGenerationPrompt: true }) : 'hello world';
      const ids = tokenizer.encode(text, { addSpecialTokens: !chat });
      const result = generate(model, [ids], { maxNewTokens: 12, eosTokenIds: [306] });
      const stream = createStreamDecoder(tokenizer, { skipSpecialTokens: true });
      const expected = result.tokens[0].filter((id) => tokenizer.idToToken(id) !== null).map((id) => stream.push(id)).join('') + stream.flush();
      assert.equal(r.stdout, expected + '\n');
      assert.match(r.stderr, new RegExp(`\\[${result.tokens[0].length} tokens from a ${ids.length}-token prompt`));
    });
  }

  test('usage errors exit with status 2 and name the problem', async () => {
    await ready;
    const unknown = dpo('generate', '--model', dir, '--prompt', 'x', '--bogus', '1');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown flag --bogus/);
    const missing = dpo('inspect');
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /--model DIR is required/);
  });

  test('dpo generate on a directory without a tokenizer exits 1 and says what is missing', async () => {
    const bare = freshDir('bare');
    await savePretrained(model, bare, { config: CONFIGS.gpt2 });
    const r = dpo('generate', '--model', bare, '--prompt', 'x');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /has no tokenizer\.json/);
  });

  test('dpo bench forward prints one JSON object with the forward and generation rates as its last line', () => {
    const r = dpo('bench', 'forward', '--layers', '1', '--hidden', '16', '--heads', '2', '--vocab', '50', '--seq', '8', '--prompt-tokens', '4', '--new-tokens', '3', '--repeats', '1');
    assert.equal(r.status, 0, r.stderr);
    const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.equal(last.bench, 'forward');
    assert.equal(last.seq, 8);
    for (const key of ['forward_tokens_per_s', 'generate_tokens_per_s_cache', 'generate_tokens_per_s_no_cache']) assert.ok(last[key] > 0, key);
  });
});
