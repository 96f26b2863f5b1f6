// The reference log-prob cache: a saved cache is hit with bit-identical float64 values; changing one byte of the
// dataset, the reference weights or the tokenizer, or one tokenization option, changes the fingerprint (a miss);
// a corrupt or truncated cache file is a miss with a warning, never trusted.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Rng, createModelFromHFConfig } from '../src/index.js';
import { savePretrained } from '../src/io/pretrained.js';
import { readSafetensorsHeader } from '../src/io/safetensors.js';
import {
  defaultRefCacheDir, hashParameters, loadRefCache, refCacheFile, refCacheFingerprint, saveRefCache,
  type RefCacheInputs, type RefLogps,
} from '../src/dpo/ref-cache.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..'); // tests run from dist/test/
const TOKENIZER_JSON = join(REPO, 'test', 'fixtures', 'tokenizer', 'chatml', 'tokenizer.json');
const CONFIG = { model_type: 'gpt2', vocab_size: 61, n_positions: 16, n_embd: 8, n_layer: 1, n_head: 2 };
const PAIRS = [
  { prompt: 'Is the sky blue?', chosen: ' Yes.', rejected: ' No.' },
  { prompt: '2 + 2 =', chosen: ' 4', rejected: ' 5' },
].map((r) => JSON.stringify(r)).join('\n') + '\n';

const root = mkdtempSync(join(tmpdir(), 'dpo-ref-cache-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (name: string) => join(root, `${name}-${dirCount++}`);

/** A dataset file, a saved reference model and a tokenizer.json copy in a fresh directory, plus the inputs naming them. */
async function fixture(): Promise<{ dir: string; inputs: RefCacheInputs }> {
  const dir = freshDir('inputs');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'pairs.jsonl'), PAIRS);
  const model = createModelFromHFConfig(CONFIG, new Rng(3));
  await savePretrained(model, join(dir, 'ref'), { config: CONFIG });
  model.dispose();
  copyFileSync(TOKENIZER_JSON, join(dir, 'tokenizer.json'));
  const inputs: RefCacheInputs = {
    datasetFiles: [join(dir, 'pairs.jsonl')],
    refWeightsDir: join(dir, 'ref'),
    tokenizerFiles: [join(dir, 'tokenizer.json')],
    tokenization: { max_length: 128, max_prompt_length: 64, truncation_mode: 'keep_end', chat_template: '{{ messages }}' },
  };
  return { dir, inputs };
}

/** Flips every bit of the byte at `offset` (negative: from the end) of a file. */
function flipByte(path: string, offset: number): void {
  const bytes = readFileSync(path);
  const i = offset < 0 ? bytes.length + offset : offset;
  bytes[i] ^= 0xff;
  writeFileSync(path, bytes);
}

// Values chosen to expose any rounding through float32 or decimal text.
const ENTRIES = new Map<number, RefLogps>([
  [0, { chosen: -12.345678901234567, rejected: -0.1 - 0.2 }],
  [7, { chosen: -1e-300, rejected: -Infinity }],
  [3, { chosen: -Math.PI * 1e6, rejected: -Number.MIN_VALUE }],
]);

describe('reference log-prob cache', () => {
  test('a saved cache is hit on the next load with bit-identical values', async () => {
    const { dir, inputs } = await fixture();
    const cacheDir = defaultRefCacheDir(join(dir, 'out'));
    assert.equal(cacheDir, join(dir, 'out', 'ref_logps_cache'));
    const fingerprint = refCacheFingerprint(inputs);
    assert.match(fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(loadRefCache(cacheDir, fingerprint, { warn: assert.fail }), null, 'nothing cached yet: a plain miss, no warning');
    const path = saveRefCache(cacheDir, fingerprint, ENTRIES);
    assert.equal(path, refCacheFile(cacheDir, fingerprint));
    for (let load = 0; load < 2; load++) {
      const again = refCacheFingerprint(inputs);
      assert.equal(again, fingerprint, 'the same inputs give the same fingerprint');
      assert.deepEqual(loadRefCache(cacheDir, again, { warn: assert.fail }), ENTRIES);
    }
  });

  test('the order of tokenization option keys does not matter; their values do', async () => {
    const { inputs } = await fixture();
    const reordered = Object.fromEntries(Object.entries(inputs.tokenization).reverse());
    assert.equal(refCacheFingerprint({ ...inputs, tokenization: reordered }), refCacheFingerprint(inputs));
  });

  test('one changed byte in the dataset, reference weights, config.json or tokenizer.json, or one option, changes the fingerprint', async () => {
    const { dir, inputs } = await fixture();
    const cacheDir = join(dir, 'cache');
    const base = refCacheFingerprint(inputs);
    saveRefCache(cacheDir, base, ENTRIES);
    const seen = new Set([base]);
    const expectMiss = (what: string, fingerprint: string) => {
      assert.ok(!seen.has(fingerprint), `${what} changes the fingerprint`);
      seen.add(fingerprint);
      assert.equal(loadRefCache(cacheDir, fingerprint, { warn: assert.fail }), null, `${what}: a miss`);
    };
    expectMiss('max_length 128 → 129', refCacheFingerprint({ ...inputs, tokenization: { ...inputs.tokenization, max_length: 129 } }));
    expectMiss('another chat template', refCacheFingerprint({ ...inputs, tokenization: { ...inputs.tokenization, chat_template: '{{ messages }} ' } }));
    expectMiss('no tokenizer file', refCacheFingerprint({ ...inputs, tokenizerFiles: [] }));

    const weights = join(inputs.refWeightsDir!, 'model.safetensors');
    const dataStart = readSafetensorsHeader(weights).dataStart;
    const edits: [string, string, number][] = [
      ['a dataset byte', inputs.datasetFiles[0], 5],
      ['a weight byte', weights, dataStart + 17],
      ['a config.json byte', join(inputs.refWeightsDir!, 'config.json'), 3],
      ['a tokenizer.json byte', inputs.tokenizerFiles![0], 40],
    ];
    for (const [what, file, offset] of edits) {
      flipByte(file, offset);
      expectMiss(what, refCacheFingerprint(inputs));
      flipByte(file, offset); // restored: the original cache is hit again
      assert.deepEqual(loadRefCache(cacheDir, refCacheFingerprint(inputs), { warn: assert.fail }), ENTRIES);
    }
  });

  test('in-memory reference weights are fingerprinted by hashParameters; one changed element changes it', () => {
    const model = createModelFromHFConfig(CONFIG, new Rng(4));
    const before = hashParameters(model.namedParameters());
    assert.equal(hashParameters(model.namedParameters()), before);
    const [, p] = [...model.namedParameters()][2];
    p.data[1] = Math.fround(p.data[1] + 1e-3);
    assert.notEqual(hashParameters(model.namedParameters()), before);
    model.dispose();
  });

  test('refCacheFingerprint needs exactly one of refWeightsDir and refWeightsFingerprint', async () => {
    const { inputs } = await fixture();
    assert.throws(() => refCacheFingerprint({ ...inputs, refWeightsFingerprint: 'ab' }), /exactly one of refWeightsDir and refWeightsFingerprint/);
    assert.throws(() => refCacheFingerprint({ ...inputs, refWeightsDir: undefined }), /exactly one/);
    assert.notEqual(refCacheFingerprint({ ...inputs, refWeightsDir: undefined, refWeightsFingerprint: 'ab' }), refCacheFingerprint(inputs));
  });

  for (const [what, damage, reason] of [
    ['one flipped byte of a value', (f: string) => flipByte(f, -40), /checksum/],
    ['a truncated file', (f: string) => truncateSync(f, 50), /checksum|too short/],
    ['a file that is not a cache', (f: string) => writeFileSync(f, 'not a cache at all, just some text'), /bad magic/],
  ] as const) {
    test(`${what}: a miss with a warning naming the file; saving again repairs it`, () => {
      const cacheDir = freshDir('corrupt');
      const fingerprint = 'c'.repeat(64);
      const path = saveRefCache(cacheDir, fingerprint, ENTRIES);
      damage(path);
      const warnings: string[] = [];
      assert.equal(loadRefCache(cacheDir, fingerprint, { warn: (m) => warnings.push(m) }), null);
      assert.equal(warnings.length, 1);
      assert.ok(warnings[0].includes(path), warnings[0]);
      assert.match(warnings[0], reason);
      saveRefCache(cacheDir, fingerprint, ENTRIES);
      assert.deepEqual(loadRefCache(cacheDir, fingerprint, { warn: assert.fail }), ENTRIES);
    });
  }

  test('a file renamed to another fingerprint is refused: the fingerprint inside is checked', () => {
    const cacheDir = freshDir('renamed');
    const path = saveRefCache(cacheDir, 'a'.repeat(64), ENTRIES);
    copyFileSync(path, refCacheFile(cacheDir, 'b'.repeat(64)));
    const warnings: string[] = [];
    assert.equal(loadRefCache(cacheDir, 'b'.repeat(64), { warn: (m) => warnings.push(m) }), null);
    assert.match(warnings[0] ?? '', /holds fingerprint a{64}, not b{64}/);
  });

  test('caches of different inputs (train and eval splits) live side by side in one directory', () => {
    const cacheDir = freshDir('splits');
    const evalEntries = new Map([[0, { chosen: -1, rejected: -2 }]]);
    saveRefCache(cacheDir, '1'.repeat(64), ENTRIES);
    saveRefCache(cacheDir, '2'.repeat(64), evalEntries);
    assert.deepEqual(loadRefCache(cacheDir, '1'.repeat(64)), ENTRIES);
    assert.deepEqual(loadRefCache(cacheDir, '2'.repeat(64)), evalEntries);
    assert.deepEqual(loadRefCache(cacheDir, '3'.repeat(64)), null);
  });
});
