// safetensors I/O: 16-bit float conversions, F32/BF16 round trips, a file written from PyTorch, sharded directories,
// one specific error per kind of malformed file, the memory bound of loading, and the atomic-write and JSON helpers
// they rest on. Malformed files are built byte by byte here; the PyTorch fixture is made by
// scripts/fixtures/make_safetensors_fixture.py.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { tensor } from '../src/index.js';
import {
  decodeBF16, decodeF16, describeWriteError, encodeBF16, f16BitsToNumber, getInteger, getNumber, getString,
  loadSafetensors, loadSafetensorsDir, readJsonFile, readSafetensorsHeader, rejectUnknownKeys, saveSafetensors,
  saveSafetensorsSharded, writeDirAtomic, writeFileAtomic, type JsonObject,
} from '../src/io/index.js';
import { assertClose } from './helpers.js';

const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'safetensors');
const tmp = () => mkdtempSync(join(tmpdir(), 'dpo-ts-st-'));

/** A safetensors file from a header (object, or raw text) and a data section. */
function buildFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

function writeTemp(bytes: Uint8Array, name = 'model.safetensors'): string {
  const path = join(tmp(), name);
  writeFileSync(path, bytes);
  return path;
}

const f32Bytes = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

// ------------------------------------------------------------------------------------------------ 16-bit floats
describe('half-precision conversions', () => {
  test('binary16 bit patterns decode to their IEEE values, subnormals, ±∞ and NaN included', () => {
    const cases: [number, number][] = [
      [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x7bff, 65504], [0x0400, 2 ** -14],
      [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x7c00, Infinity], [0xfc00, -Infinity], [0x0000, 0],
    ];
    for (const [bits, value] of cases) assert.equal(f16BitsToNumber(bits), value, `0x${bits.toString(16)}`);
    assert.ok(Object.is(f16BitsToNumber(0x8000), -0));
    assert.ok(Number.isNaN(f16BitsToNumber(0x7e01)));
  });

  test('the F16 table agrees with the scalar decoder on all 65,536 patterns', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const out = new Float32Array(65536);
    decodeF16(all, out);
    for (let h = 0; h < 65536; h++) {
      const want = f16BitsToNumber(h);
      if (!Object.is(out[h], want) && !(Number.isNaN(want) && Number.isNaN(out[h]))) assert.fail(`0x${h.toString(16)}: ${out[h]} vs ${want}`);
    }
  });

  test('float32 → bf16 rounds to nearest even exactly as torch does (NaN stays NaN)', () => {
    const fixture = JSON.parse(readFileSync(join(FIXTURE_DIR, 'torch_small.expected.json'), 'utf8')) as Record<string, { inputs: (number | string)[]; bits: number[] }>;
    const { inputs, bits } = fixture.__bf16_encode__;
    const out = new Uint16Array(inputs.length);
    encodeBF16(Float32Array.from(inputs, Number), out);
    const back = new Float32Array(out.length);
    decodeBF16(out, back);
    inputs.forEach((x, i) => {
      if (x === 'NaN') assert.ok(Number.isNaN(back[i]), `input ${i}: NaN must stay NaN, got bits 0x${out[i].toString(16)}`);
      else assert.equal(out[i], bits[i], `input ${i} (${x}): bits 0x${out[i].toString(16)}, torch 0x${bits[i].toString(16)}`);
    });
  });
});

// ------------------------------------------------------------------------------------------------ round trips
describe('saving and loading', () => {
  const sample = () => new Map([
    ['transformer.wte.weight', { shape: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => Math.sin(i) * 10 ** (i % 7 - 3)) }],
    ['a.scalar', { shape: [], data: Float32Array.of(-7.25) }],
    ['b.empty', { shape: [0, 4], data: new Float32Array(0) }],
    ['h.0.ln.bias', { shape: [4], data: Float32Array.of(1e-30, -0, Infinity, NaN) }],
  ]);

  test('F32 round trip is bit exact, sorted by name, header padded to 8 bytes with format=pt metadata', () => {
    const path = join(tmp(), 'model.safetensors');
    saveSafetensors(path, sample(), { metadata: { step: '12' } });
    const header = readSafetensorsHeader(path);
    assert.deepEqual([...header.tensors.keys()], ['a.scalar', 'b.empty', 'h.0.ln.bias', 'transformer.wte.weight']);
    assert.deepEqual(header.metadata, { format: 'pt', step: '12' });
    assert.equal(header.dataStart % 8, 0);
    assert.deepEqual(readdirSync(dirname(path)), ['model.safetensors'], 'no temp file is left behind');
    const loaded = loadSafetensors(path);
    for (const [name, t] of sample()) {
      const got = loaded.get(name);
      assert.ok(got, name);
      assert.deepEqual(got.shape, t.shape);
      assert.equal(got.dtype, 'F32');
      assert.deepEqual(new Uint8Array(got.data.buffer), new Uint8Array(t.data.buffer), `${name} bytes`);
    }
  });

  test('BF16 round trip is within bf16 rounding (half an ulp: 2^-8 relative) and keeps ±∞ and NaN', () => {
    const path = join(tmp(), 'model.safetensors');
    saveSafetensors(path, sample(), { dtype: 'BF16' });
    const loaded = loadSafetensors(path);
    for (const [name, t] of sample()) {
      const got = loaded.get(name);
      assert.ok(got);
      assert.equal(got.dtype, 'BF16');
      assertClose(got.data, t.data, { atol: 1e-38, rtol: 2 ** -8 }, name);
    }
  });

  test('engine Tensors save directly (float64 data is stored as float32) and `names` loads a subset', () => {
    const path = join(tmp(), 'model.safetensors');
    saveSafetensors(path, [['w', tensor([0.1, 0.2, 0.3, 0.4], [2, 2], 'float64')], ['b', tensor([1, 2], [2])]]);
    const only = loadSafetensors(path, { names: ['w'] });
    assert.deepEqual([...only.keys()], ['w']);
    assert.deepEqual(Array.from(only.get('w')?.data ?? []), [0.1, 0.2, 0.3, 0.4].map(Math.fround));
    assert.throws(() => loadSafetensors(path, { names: ['w', 'nope'] }), /no tensor named "nope"; the file has 2 tensors: b, w/);
    assert.throws(() => saveSafetensors(path, [['i', tensor([1, 2], [2], 'int32')]]), /"i" is int32/);
    assert.throws(() => saveSafetensors(path, [['x', { shape: [3], data: new Float32Array(2) }]]), /shape \[3\] but 2 elements/);
  });

  test('a hand-built F16 file decodes normals, subnormals, ±∞, NaN and −0', () => {
    const bits = Uint16Array.of(0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3555);
    const path = writeTemp(buildFile({ h: { dtype: 'F16', shape: [2, 5], data_offsets: [0, 20] } }, new Uint8Array(bits.buffer)));
    const h = loadSafetensors(path).get('h');
    assert.ok(h);
    assert.deepEqual(h.shape, [2, 5]);
    assertClose(h.data, [1, -2, 2 ** -24, 1023 * 2 ** -24, 65504, Infinity, -Infinity, NaN, -0, 0.333251953125], { atol: 0, rtol: 0 });
    assert.ok(Object.is(h.data[8], -0));
  });

  test('a file written from PyTorch tensors (F32, F16, BF16, F64) loads to torch\'s float32 values', () => {
    const path = join(FIXTURE_DIR, 'torch_small.safetensors');
    const expected = JSON.parse(readFileSync(join(FIXTURE_DIR, 'torch_small.expected.json'), 'utf8')) as Record<string, { dtype: string; shape: number[]; values?: (number | string)[] }>;
    const header = readSafetensorsHeader(path);
    assert.deepEqual(header.metadata, { format: 'pt' });
    const floatNames = Object.keys(expected).filter((n) => expected[n].values && !n.startsWith('__'));
    const loaded = loadSafetensors(path, { names: floatNames });
    for (const name of floatNames) {
      const got = loaded.get(name);
      assert.ok(got, name);
      assert.equal(got.dtype, expected[name].dtype);
      assert.deepEqual(got.shape, expected[name].shape);
      assertClose(got.data, (expected[name].values ?? []).map(Number), { atol: 0, rtol: 0 }, name);
    }
    assert.throws(() => loadSafetensors(path), /tensor "position_ids": unsupported dtype I64/);
  });
});

// ------------------------------------------------------------------------------------------------ sharded
describe('sharded model directories', () => {
  const weights = new Map(Array.from({ length: 5 }, (_, i) => [`layers.${i}.weight`, { shape: [10, 10], data: Float32Array.from({ length: 100 }, (_, j) => i * 100 + j) }] as const));

  test('tensors over maxShardBytes split into HF-named shards plus an index; loading merges them', () => {
    const dir = join(tmp(), 'model');
    const result = saveSafetensorsSharded(dir, weights, { maxShardBytes: 900 }); // 400 bytes a tensor: two per shard
    assert.deepEqual(result.files, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors', 'model.safetensors.index.json']);
    const index = readJsonFile(join(dir, 'model.safetensors.index.json')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    assert.equal(index.metadata.total_size, 2000);
    assert.equal(index.weight_map['layers.2.weight'], 'model-00002-of-00003.safetensors');
    const loaded = loadSafetensorsDir(dir);
    assert.equal(loaded.size, 5);
    for (const [name, t] of weights) assert.deepEqual(loaded.get(name)?.data, t.data, name);
    assert.deepEqual([...loadSafetensorsDir(dir, { names: ['layers.4.weight'] }).keys()], ['layers.4.weight']);

    // Saving again below the limit writes one model.safetensors and removes the old shards and index.
    saveSafetensorsSharded(dir, weights);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    assert.equal(loadSafetensorsDir(dir).size, 5);
  });

  test('a bad index or missing shard names the problem', () => {
    const dir = join(tmp(), 'model');
    saveSafetensorsSharded(dir, weights, { maxShardBytes: 900 });
    const indexPath = join(dir, 'model.safetensors.index.json');
    const withMap = (weightMap: unknown) => writeFileSync(indexPath, JSON.stringify({ metadata: {}, weight_map: weightMap }));
    withMap({ 'layers.0.weight': '../model-00001-of-00003.safetensors' });
    assert.throws(() => loadSafetensorsDir(dir), /plain file names inside the model directory/);
    withMap({ 'layers.0.weight': 'model-00009-of-00009.safetensors' });
    assert.throws(() => loadSafetensorsDir(dir), /model-00009-of-00009.safetensors, not found in .*download is incomplete/);
    withMap({ 'layers.4.weight': 'model-00001-of-00003.safetensors' });
    assert.throws(() => loadSafetensorsDir(dir), /puts "layers.4.weight" in model-00001-of-00003.safetensors, but that shard does not contain it/);
    withMap({ 'layers.0.weight': 7 });
    assert.throws(() => loadSafetensorsDir(dir), /weight_map\["layers.0.weight"\] must be a shard file name/);
    writeFileSync(indexPath, '{"weight_map": [1]}');
    assert.throws(() => loadSafetensorsDir(dir), /field "weight_map" must be a JSON object, got an array/);
  });

  test('a directory without weights lists what it holds', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), '{}');
    writeFileSync(join(dir, 'pytorch_model.bin'), '');
    assert.throws(() => loadSafetensorsDir(dir), /no model.safetensors or model.safetensors.index.json; found config.json, pytorch_model.bin; PyTorch pickle/);
    assert.throws(() => loadSafetensorsDir(join(dir, 'missing')), /it does not exist/);
  });
});

// ------------------------------------------------------------------------------------------------ malformed files
describe('malformed files each give their own error, naming the file', () => {
  const entry = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });
  const good = buildFile({ a: entry('F32', [2], 0, 8), b: entry('F32', [3], 8, 20) }, f32Bytes([1, 2, 3, 4, 5]));
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty file', new Uint8Array(0), /the file is 0 bytes, too short to hold the 8-byte header length/],
    ['truncated data', good.subarray(0, good.length - 4), /tensor "b": data_offsets \[8, 20\] run past the end of the 16-byte data section; the file is truncated/],
    ['huge header length', buildFile({}, undefined, 1n << 40n), /header length 1099511627776 exceeds the 100000000-byte limit/],
    ['header length beyond the file', buildFile({}, undefined, 1000n), /header length 1000 runs past the end of the 10-byte file/],
    ['overlapping offsets', buildFile({ a: entry('F32', [2], 0, 8), b: entry('F32', [2], 4, 12) }, f32Bytes([1, 2, 3])), /tensor "b": data_offsets \[4, 12\] overlap tensor "a", which ends at 8/],
    ['offsets out of bounds', buildFile({ a: entry('F32', [2], 0, 8), b: entry('F32', [1], 8, 12) }, f32Bytes([1, 2])), /tensor "b": data_offsets \[8, 12\] run past the end of the 8-byte data section/],
    ['begin after end', buildFile({ a: entry('F32', [0], 8, 0) }, f32Bytes([1, 2])), /tensor "a": data_offsets \[8, 0\] has begin > end/],
    ['bytes not matching dtype × shape', buildFile({ a: entry('F16', [3], 0, 8) }, f32Bytes([1, 2])), /tensor "a": data_offsets \[0, 8\] hold 8 bytes, but F16 \[3\] needs 3 × 2 = 6 bytes/],
    ['unknown dtype', buildFile({ a: entry('F12', [2], 0, 8) }, f32Bytes([1, 2])), /tensor "a": unknown dtype "F12"; the safetensors dtypes are BOOL/],
    ['bad shape', buildFile({ a: entry('F32', [-2], 0, 8) }, f32Bytes([1, 2])), /tensor "a": shape must be an array of non-negative integers, got \[-2\]/],
    ['gap between tensors', buildFile({ a: entry('F32', [1], 0, 4), b: entry('F32', [1], 8, 12) }, f32Bytes([1, 2, 3])), /tensor "b": .* leave a gap of 4 bytes after tensor "a"/],
    ['trailing bytes', buildFile({ a: entry('F32', [1], 0, 4) }, f32Bytes([1, 2])), /4 bytes after the last tensor that the header does not describe/],
    ['non-string metadata', buildFile({ __metadata__: { step: 3 } }), /__metadata__\["step"\] must be a string, got 3/],
    ['non-JSON header', buildFile('{"a": {"dtype": "F32",'), /the safetensors header is not valid JSON at line 1, column 23/],
    ['header that is a JSON array', buildFile('[1, 2]'), /the header must be a JSON object of tensor entries, got an array/],
    ['header that is not UTF-8', buildFile('{"\u00e9": 1}').map((b, i) => (i === 10 ? 0xff : b)), /the 9-byte header is not valid UTF-8/],
  ];
  for (const [what, bytes, message] of cases) {
    test(what, () => {
      const path = writeTemp(bytes);
      assert.throws(() => loadSafetensors(path), (e: Error) => {
        assert.match(e.message, message);
        assert.ok(e.message.startsWith(path), `the message names the file: ${e.message}`);
        return true;
      });
    });
  }

  test('an unsupported dtype passes header checks but is refused on load unless skipped with `names`', () => {
    const path = writeTemp(buildFile({ ids: entry('I32', [2], 0, 8), w: entry('F32', [1], 8, 12) }, f32Bytes([1, 2, 3])));
    assert.equal(readSafetensorsHeader(path).tensors.get('ids')?.dtype, 'I32');
    assert.throws(() => loadSafetensors(path), /tensor "ids": unsupported dtype I32; dpo-ts loads F32, F16, BF16 and F64/);
    assert.deepEqual(Array.from(loadSafetensors(path, { names: ['w'] }).get('w')?.data ?? []), [3]);
  });
});

// ------------------------------------------------------------------------------------------------ memory
test('loading a 64 MiB F32 file grows peak memory by at most 1.2× the file (no whole-file buffer, no second copy)', () => {
  const path = join(tmp(), 'model.safetensors');
  const perTensor = 4 << 20; // 4 Mi floats = 16 MiB
  saveSafetensors(path, Array.from({ length: 4 }, (_, i) => [`w${i}`, { shape: [perTensor], data: new Float32Array(perTensor).fill(i) }] as const));
  const moduleUrl = new URL('../src/io/safetensors.js', import.meta.url).href;
  const script = `import { loadSafetensors } from ${JSON.stringify(moduleUrl)};
    const before = process.resourceUsage().maxRSS * 1024, rss = process.memoryUsage().rss;
    const m = loadSafetensors(${JSON.stringify(path)});
    const peak = process.resourceUsage().maxRSS * 1024;
    console.log(JSON.stringify({ growth: peak - Math.min(before, rss), tensors: m.size }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const { growth, tensors } = JSON.parse(r.stdout) as { growth: number; tensors: number };
  assert.equal(tensors, 4);
  const fileBytes = 4 * perTensor * 4;
  assert.ok(growth <= 1.2 * fileBytes, `peak memory grew by ${(growth / 2 ** 20).toFixed(1)} MiB for a ${fileBytes / 2 ** 20} MiB file`);
});

// ------------------------------------------------------------------------------------------------ atomic writes
describe('atomic writes', () => {
  test('writeFileAtomic replaces the file and leaves no temp file', () => {
    const dir = tmp();
    const path = join(dir, 'state.json');
    writeFileAtomic(path, 'old');
    writeFileAtomic(path, (write) => { write(Buffer.from('ne')); write(Buffer.from('w')); });
    assert.equal(readFileSync(path, 'utf8'), 'new');
    assert.deepEqual(readdirSync(dir), ['state.json']);
  });

  test('a failing write leaves the existing target unchanged, removes the temp file, and names the path', () => {
    const dir = tmp();
    const path = join(dir, 'model.safetensors');
    writeFileSync(path, 'previous');
    assert.throws(() => writeFileAtomic(path, (write) => { write(Buffer.from('partial')); throw new Error('disk unplugged'); }), /disk unplugged/);
    assert.throws(() => saveSafetensors(path, [['x', { shape: [2], data: new Float32Array(3) }]]), /model.safetensors: tensor "x" has shape/);
    assert.equal(readFileSync(path, 'utf8'), 'previous');
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    const missing = join(dir, 'no-such-dir', 'model.safetensors');
    assert.throws(() => writeFileAtomic(missing, 'x'), (e: Error) => e.message.includes(`cannot write ${missing}`) && /does not exist; create it first/.test(e.message));
    mkdirSync(join(dir, 'a-directory'));
    assert.throws(() => writeFileAtomic(join(dir, 'a-directory'), 'x'), /a-directory.*\((EISDIR|ENOTEMPTY|EEXIST)\)/);
    assert.deepEqual(readdirSync(dir).sort(), ['a-directory', 'model.safetensors']);
  });

  test('full disks, permissions and read-only file systems get actionable messages', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    assert.match(describeWriteError('/ckpt/model.safetensors', err('ENOSPC')).message, /^cannot write \/ckpt\/model.safetensors: no space left on the device; free some space/);
    assert.match(describeWriteError('/ckpt/x', err('EACCES')).message, /permission denied; check the permissions/);
    assert.match(describeWriteError('/ckpt/x', err('EROFS')).message, /read-only; choose an output path on a writable disk/);
  });

  test('writeDirAtomic creates, replaces, and leaves the old directory intact when fill fails', async () => {
    const parent = tmp();
    const dir = join(parent, 'checkpoint-10');
    await writeDirAtomic(dir, (t) => writeFileSync(join(t, 'a.txt'), 'one'));
    await writeDirAtomic(dir, async (t) => { await Promise.resolve(); writeFileSync(join(t, 'b.txt'), 'two'); });
    assert.deepEqual(readdirSync(dir), ['b.txt']);
    await assert.rejects(writeDirAtomic(dir, (t) => { writeFileSync(join(t, 'c.txt'), 'partial'); throw new Error('out of memory'); }), /out of memory/);
    assert.deepEqual(readdirSync(dir), ['b.txt']);
    assert.deepEqual(readdirSync(parent), ['checkpoint-10'], 'no .tmp- or .old- directory is left');
    assert.ok(!existsSync(join(parent, 'checkpoint-10', 'c.txt')));
  });
});

// ------------------------------------------------------------------------------------------------ JSON helpers
describe('JSON files and config fields', () => {
  test('a syntax error names the file, the line and column, and the fix', () => {
    const path = writeTemp(new TextEncoder().encode('{\n  "a": 1,\n  "b" 2\n}'), 'config.json');
    assert.throws(() => readJsonFile(path, { what: 'config.json' }), (e: Error) =>
      e.message.startsWith(`${path}: config.json is not valid JSON at line 3, column 7`) && /fix the syntax/.test(e.message));
    assert.throws(() => readJsonFile(path, { maxBytes: 4 }), /is 21 bytes, over the 4-byte limit/);
    assert.throws(() => readJsonFile(join(dirname(path), 'nope.json')), /nope.json: JSON file not found/);
  });

  test('field readers check types, apply defaults and treat null as unset', () => {
    const cfg: JsonObject = { hidden_size: 64, eps: 1e-5, act: 'gelu', rope_scaling: null, n_layer: '2' };
    assert.equal(getInteger(cfg, 'hidden_size', 'config.json'), 64);
    assert.equal(getNumber(cfg, 'eps', 'config.json'), 1e-5);
    assert.equal(getNumber(cfg, 'rope_theta', 'config.json', { default: 10000 }), 10000);
    assert.equal(getString(cfg, 'rope_scaling', 'config.json', { optional: true }), undefined);
    assert.throws(() => getInteger(cfg, 'n_layer', 'config.json'), /^FormatError: config.json: field "n_layer" must be an integer, got the string "2"/);
    assert.throws(() => getNumber(cfg, 'vocab_size', 'config.json'), /config.json: missing required field "vocab_size" \(a finite number\)/);
    assert.throws(() => rejectUnknownKeys(cfg, ['hidden_size', 'eps', 'act', 'rope_scaling'], 'run.json'), /run.json: unknown field "n_layer"/);
  });
});
