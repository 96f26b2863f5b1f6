// Loading and saving weights by HF name: a checked key-by-key copy between a model's parameters and a name → tensor
// map (what io/'s safetensors reader returns and its writer takes). There is no mapping table: parameter names are
// the checkpoint's own. Every problem is found before anything is copied, and one error lists them all.
import { fmtShape } from '../engine/errors.js';
import type { CausalLM } from './types.js';

/** A named tensor as checkpoints hold it: a shape and row-major data. */
export interface NamedArray {
  shape: readonly number[];
  data: Float32Array | Float64Array;
}

/**
 * Non-parameter buffers HF checkpoints may hold, ignored on load: GPT-2's causal-mask buffers attn.bias and
 * attn.masked_bias (older checkpoints), and Llama's rotary_emb.inv_freq (recomputed from the config).
 */
export const IGNORED_BUFFERS: readonly RegExp[] = [
  /^transformer\.h\.\d+\.attn\.(bias|masked_bias)$/,
  /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/,
];

const HEAD = 'lm_head.weight';

export interface ShapeMismatch {
  name: string;
  checkpoint: readonly number[];
  model: readonly number[];
}

export class StateDictError extends Error {
  override name = 'StateDictError';
  constructor(readonly missing: string[], readonly unexpected: string[], readonly mismatched: ShapeMismatch[], readonly detail: string) {
    super(detail);
  }
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * HF saves a base model (GPT2Model, LlamaModel) without its prefix: `h.0.ln_1.weight` for `transformer.h.0.ln_1.weight`.
 * When no checkpoint key carries the model's prefix, it is added to every key but lm_head.weight, as HF's loader does.
 */
function withBasePrefix(modelNames: string[], tensors: ReadonlyMap<string, NamedArray>): Map<string, NamedArray> {
  const prefix = modelNames.find((n) => n !== HEAD)?.split('.')[0];
  const keys = [...tensors.keys()];
  const needsPrefix = prefix !== undefined && keys.length > 0 && !keys.some((k) => k.startsWith(`${prefix}.`));
  return new Map(keys.map((k) => [needsPrefix && k !== HEAD ? `${prefix}.${k}` : k, tensors.get(k)!]));
}

/**
 * Copies every checkpoint tensor into the model parameter of the same name. Throws a StateDictError, having copied
 * nothing, that lists every missing, unexpected and wrongly shaped key. IGNORED_BUFFERS are skipped. A tied model
 * (no lm_head.weight parameter) accepts a checkpoint lm_head.weight only when it equals the embedding it is tied to.
 */
export function loadStateDict(model: CausalLM, tensors: ReadonlyMap<string, NamedArray>, source = 'checkpoint'): void {
  const params = new Map(model.namedParameters());
  const names = [...params.keys()];
  const ckpt = withBasePrefix(names, tensors);
  const missing = names.filter((n) => !ckpt.has(n));
  const unexpected: string[] = [];
  const mismatched: ShapeMismatch[] = [];
  const notes: string[] = [];
  for (const [name, t] of ckpt) {
    if (IGNORED_BUFFERS.some((re) => re.test(name))) continue;
    if (t.data.length !== sizeOf(t.shape)) {
      notes.push(`${name} has shape ${fmtShape(t.shape)} but ${t.data.length} values`);
      continue;
    }
    const p = params.get(name);
    if (p) {
      if (!sameShape(p.shape, t.shape)) mismatched.push({ name, checkpoint: t.shape, model: p.shape });
    } else if (name === HEAD) {
      const tiedTo = names.find((n) => params.get(n) === model.lmHeadWeight);
      const embedding = tiedTo === undefined ? undefined : ckpt.get(tiedTo);
      if (!embedding || !sameShape(embedding.shape, t.shape) || embedding.data.some((v, i) => v !== t.data[i])) {
        notes.push(`${HEAD} is in the checkpoint but differs from ${tiedTo ?? 'the embedding'}, to which config.json ties the head; set "tie_word_embeddings": false`);
      }
    } else {
      unexpected.push(name);
    }
  }
  if (missing.length + unexpected.length + mismatched.length + notes.length > 0) {
    const lines = [`${source} does not fit ${model.constructor.name} (${model.modelType}); check that config.json belongs to these weights`];
    if (missing.length) lines.push(`  missing (${missing.length}): ${missing.join(', ')}`);
    if (unexpected.length) lines.push(`  unexpected (${unexpected.length}): ${unexpected.join(', ')}`);
    if (mismatched.length) {
      lines.push(`  wrong shape (${mismatched.length}): ${mismatched.map((m) => `${m.name} is ${fmtShape(m.checkpoint)} in the checkpoint, ${fmtShape(m.model)} in the model`).join(', ')}`);
    }
    for (const n of notes) lines.push(`  ${n}`);
    throw new StateDictError(missing, unexpected, mismatched, lines.join('\n'));
  }
  for (const [name, p] of params) p.data.set(ckpt.get(name)!.data);
}

/** Every parameter by HF name, copied, for saving. A tied lm_head is omitted, as HF omits it. */
export function stateDict(model: CausalLM): Map<string, NamedArray> {
  const out = new Map<string, NamedArray>();
  for (const [name, p] of model.namedParameters()) {
    const data = p.floatData('stateDict');
    out.set(name, { shape: p.shape.slice(), data: data.slice() });
  }
  return out;
}
