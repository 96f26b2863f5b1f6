// Golden tests: three tiny models (an MLP, one GPT-2 block, one Llama block) built from the engine's ops, run forward
// and backward, and checked against PyTorch: logits, loss and every gradient recorded in test/fixtures/engine/*.json
// by scripts/fixtures/make_engine_fixtures.py (see there for the reference code). Float64 must match to ~1e-10;
// float32 to float32 rounding. This is an end-to-end check of the ops' composition, not of each op (grad.test.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import {
  Tensor, add, arange, attention, backward, currentBackend, gather, gelu, layerNorm, linear, logSoftmax,
  logSoftmaxGather, matmul, mul, reshape, rmsNorm, rope, scale, scope, silu, slice, sum, tensor, type FloatDType,
} from '../src/index.js';
import { assertClose, type Tolerance } from './helpers.js';

// ------------------------------------------------------------------------------------------------ fixtures
interface TensorRecord { shape: number[]; data: number[] }
interface InputRecord extends TensorRecord { dtype: 'float' | 'int' }
interface TorchResults {
  logits: TensorRecord;
  loss: number;
  grads: Record<string, TensorRecord>;
  /** Gradients of float inputs (the MLP's x); those inputs are made leaves that require grad. */
  inputGrads?: Record<string, TensorRecord>;
}
interface Fixture {
  about: string;
  config: Record<string, number>;
  inputs: Record<string, InputRecord>;
  params: Record<string, TensorRecord>;
  float64: TorchResults;
  float32: TorchResults;
}

// This file runs as dist/test/golden.test.js; the fixtures stay in the source tree.
const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'engine');
const REGENERATE = 'regenerate with /usr/bin/python3 scripts/fixtures/make_engine_fixtures.py';

function readFixture(name: string): Fixture {
  const path = join(FIXTURE_DIR, name);
  const fx: Fixture = JSON.parse(readFileSync(path, 'utf8'));
  const records: [string, TensorRecord][] = [...Object.entries(fx.inputs), ...Object.entries(fx.params)];
  for (const dtype of ['float64', 'float32'] as const) {
    records.push([`${dtype} logits`, fx[dtype].logits], ...Object.entries(fx[dtype].grads));
  }
  for (const [what, r] of records) {
    const size = r.shape.reduce((a, b) => a * b, 1);
    if (r.data.length !== size) throw new Error(`${path}: ${what} has shape [${r.shape}] but ${r.data.length} values; ${REGENERATE}`);
  }
  return fx;
}

/** A config value the model needs; a missing one means the fixture and this test disagree on the model. */
function config<K extends string>(fx: Fixture, keys: readonly K[]): Record<K, number> {
  const out: Partial<Record<K, number>> = {};
  for (const k of keys) {
    if (typeof fx.config[k] !== 'number') throw new Error(`fixture "${fx.about.slice(0, 40)}…" has no config.${k}; ${REGENERATE}`);
    out[k] = fx.config[k];
  }
  return out as Record<K, number>;
}

type Params = Record<string, Tensor>;
type Inputs = Record<string, Tensor>;

/** The parameter `name` (an HF/torch name); throws when the model asks for one the fixture lacks. */
function param(p: Params, name: string): Tensor {
  const t = p[name];
  if (!t) throw new Error(`the model uses parameter ${name}, which the fixture does not hold (it has ${Object.keys(p).join(', ')})`);
  return t;
}

function input(inputs: Inputs, name: string): Tensor {
  const t = inputs[name];
  if (!t) throw new Error(`the model needs input ${name}, which the fixture does not hold`);
  return t;
}

// ------------------------------------------------------------------------------------------------ models
interface Output { logits: Tensor; loss: Tensor }
type Model = (fx: Fixture, p: Params, inputs: Inputs) => Output;

/** −mean of log p(target) over positions whose target is not −100. logits (B, T, V), targets (B, T). */
function nextTokenLoss(logits: Tensor, targets: Tensor): Tensor {
  const counted = Array.from(targets.data).filter((t) => t >= 0).length;
  return scale(sum(logSoftmaxGather(logits, targets)), -1 / counted); // ignored positions give 0
}

/** x (N, CIN) → fc1 → GELU → fc2 → log-softmax → NLL. The NLL uses a one-hot mask, so plain logSoftmax is covered. */
const mlp: Model = (fx, p, inputs) => {
  const { N, K } = config(fx, ['N', 'K']);
  const x = input(inputs, 'x');
  const targets = input(inputs, 'targets').data;
  const hidden = gelu(linear(x, param(p, 'fc1.weight'), param(p, 'fc1.bias'))); // (N, HID)
  const logits = linear(hidden, param(p, 'fc2.weight'), param(p, 'fc2.bias')); // (N, K)
  const oneHot = tensor(Array.from({ length: N * K }, (_, i) => (targets[Math.floor(i / K)] === i % K ? 1 : 0)), [N, K], x.dtype);
  return { logits, loss: scale(sum(mul(logSoftmax(logits), oneHot)), -1 / N) };
};

/** GPT-2: wte + wpe → block (ln_1, attention, ln_2, MLP; Conv1D weights are (in, out)) → ln_f → head tied to wte. */
const gpt2Block: Model = (fx, p, inputs) => {
  const { B, T, C, NH, LN_EPS } = config(fx, ['B', 'T', 'C', 'NH', 'LN_EPS']);
  const w = (name: string) => param(p, `transformer.${name}.weight`);
  const b = (name: string) => param(p, `transformer.${name}.bias`);
  const conv1d = (x: Tensor, name: string) => linear(x, w(name), b(name), true);
  const ln = (x: Tensor, name: string) => layerNorm(x, w(name), b(name), LN_EPS);
  const heads = (qkv: Tensor, i: number) => reshape(slice(qkv, [0, 0, i * C], [B, T, (i + 1) * C]), [B, T, NH, C / NH]);

  let x = add(gather(w('wte'), input(inputs, 'ids')), gather(w('wpe'), arange(T))); // (B, T, C) + (T, C)
  const qkv = conv1d(ln(x, 'h.0.ln_1'), 'h.0.attn.c_attn'); // (B, T, 3C): q, k, v side by side
  const y = reshape(attention(heads(qkv, 0), heads(qkv, 1), heads(qkv, 2)), [B, T, C]);
  x = add(x, conv1d(y, 'h.0.attn.c_proj'));
  x = add(x, conv1d(gelu(conv1d(ln(x, 'h.0.ln_2'), 'h.0.mlp.c_fc')), 'h.0.mlp.c_proj'));
  const logits = matmul(ln(x, 'ln_f'), w('wte'), { transB: true }); // (B, T, V)
  return { logits, loss: nextTokenLoss(logits, input(inputs, 'targets')) };
};

/** Llama: embed → block (RMSNorm, GQA with RoPE, RMSNorm, SwiGLU; nn.Linear weights, no biases) → norm → lm_head. */
const llamaBlock: Model = (fx, p, inputs) => {
  const { B, T, H, KVH, D, RMS_EPS } = config(fx, ['B', 'T', 'H', 'KVH', 'D', 'RMS_EPS']);
  const w = (name: string) => param(p, `${name}.weight`);
  const layer = (name: string) => w(`model.layers.0.${name}`);
  const [cos, sin] = [input(inputs, 'cos'), input(inputs, 'sin')]; // (T, D/2) each

  let x = gather(w('model.embed_tokens'), input(inputs, 'ids')); // (B, T, C), C = H·D
  let h = rmsNorm(x, layer('input_layernorm'), RMS_EPS);
  const q = rope(reshape(linear(h, layer('self_attn.q_proj')), [B, T, H, D]), cos, sin);
  const k = rope(reshape(linear(h, layer('self_attn.k_proj')), [B, T, KVH, D]), cos, sin);
  const v = reshape(linear(h, layer('self_attn.v_proj')), [B, T, KVH, D]);
  x = add(x, linear(reshape(attention(q, k, v), [B, T, H * D]), layer('self_attn.o_proj')));
  h = rmsNorm(x, layer('post_attention_layernorm'), RMS_EPS);
  const gated = mul(silu(linear(h, layer('mlp.gate_proj'))), linear(h, layer('mlp.up_proj'))); // (B, T, I)
  x = add(x, linear(gated, layer('mlp.down_proj')));
  const logits = linear(rmsNorm(x, w('model.norm'), RMS_EPS), w('lm_head')); // (B, T, V)
  return { logits, loss: nextTokenLoss(logits, input(inputs, 'targets')) };
};

// ------------------------------------------------------------------------------------------------ the check
/**
 * Loads the fixture's parameters and inputs in `dtype` (float32 casts PyTorch's float64 values, as the fixture's
 * float32 run did), runs the model forward and backward, and compares with PyTorch's results in the same dtype.
 */
function checkAgainstTorch(fx: Fixture, model: Model, dtype: FloatDType, tol: Tolerance): void {
  const want = fx[dtype];
  scope(() => {
    const params: Params = {};
    for (const [name, r] of Object.entries(fx.params)) params[name] = tensor(r.data, r.shape, dtype).requireGrad();
    const inputs: Inputs = {};
    for (const [name, r] of Object.entries(fx.inputs)) {
      inputs[name] = tensor(r.data, r.shape, r.dtype === 'int' ? 'int32' : dtype).requireGrad(name in (want.inputGrads ?? {}));
    }
    const { logits, loss } = model(fx, params, inputs);
    backward(loss);

    assert.deepEqual(logits.shape, want.logits.shape, 'logits shape');
    assertClose(logits.data, want.logits.data, tol, 'logits');
    assertClose([loss.item()], [want.loss], tol, 'loss');
    assert.deepEqual(Object.keys(want.grads).sort(), Object.keys(params).sort(), 'the fixture has a gradient for every parameter');
    const leaves: [string, Tensor, TensorRecord][] = [
      ...Object.entries(want.grads).map(([name, g]): [string, Tensor, TensorRecord] => [name, param(params, name), g]),
      ...Object.entries(want.inputGrads ?? {}).map(([name, g]): [string, Tensor, TensorRecord] => [name, input(inputs, name), g]),
    ];
    for (const [name, leaf, expected] of leaves) {
      assert.ok(leaf.grad, `d loss / d ${name}: no gradient reached this leaf`);
      assert.deepEqual(leaf.grad.shape, expected.shape, `d loss / d ${name}: shape`);
      assertClose(leaf.grad.data, expected.data, tol, `d loss / d ${name}`);
    }
  });
}

const cases: [claim: string, file: string, model: Model][] = [
  ['MLP (fc1 → GELU → fc2 → NLL): logits, loss, every parameter gradient and the input gradient match PyTorch', 'mlp.json', mlp],
  ['one GPT-2 block (tied head, Conv1D, fused c_attn): logits, loss and every parameter gradient match PyTorch', 'gpt2_block.json', gpt2Block],
  ['one Llama block (RMSNorm, GQA 4:2, RoPE, SwiGLU): logits, loss and every parameter gradient match PyTorch', 'llama_block.json', llamaBlock],
];

// float64: the same arithmetic up to summation order; the worst error seen is 3e-15, so a 1e-9 slip in one gradient
// fails. float32: both sides round every op to float32 (ε ≈ 1.2e-7) in different orders; the worst seen is 2e-6.
const tolerances: [FloatDType, Tolerance][] = [['float64', { atol: 1e-12, rtol: 1e-10 }], ['float32', { atol: 1e-5, rtol: 1e-4 }]];

describe(`golden models against PyTorch (${currentBackend().name} backend)`, () => {
  for (const [claim, file, model] of cases) {
    const fx = readFixture(file);
    for (const [dtype, tol] of tolerances) {
      test(`${claim} (${dtype})`, () => checkAgainstTorch(fx, model, dtype, tol));
    }
  }
});
