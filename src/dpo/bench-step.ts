// The DPO training step that `dpo bench train` times: the workload of ../shared/bench/bench_torch.py (a fresh
// GPT-2 or Llama policy, P pairs of random T-token sequences sharing their prompt, a frozen reference copy, the
// sigmoid loss, AdamW), optionally with shorter random completions, its model-FLOP count, and the step itself with
// per-phase wall times, in the padded layout or a packed one (prefix sharing, padding-free; data/pack.ts). Not the
// timing loop, the GEMM ceiling or the report (cli/bench-train.ts), and not the real trainer (trainer.ts).
// Legend: P pairs, R = 2P rows, T tokens per row, T_p prompt tokens, L layers, C hidden, V vocabulary.
import { backward, zeroGrad } from '../engine/autograd.js';
import { mean } from '../engine/ops/index.js';
import { Rng } from '../engine/random.js';
import { noGrad, scope, tensor, type Tensor } from '../engine/tensor.js';
import { collatePreferenceBatch, type PreferenceBatch } from '../data/collate.js';
import { packPreferenceBatch, type PackedBatch } from '../data/pack.js';
import { createModelFromHFConfig } from '../models/registry.js';
import type { CausalLM } from '../models/types.js';
import type { BatchLayout } from './forward.js';
import { concatenatedLogps } from './logps.js';
import { computeLoss, defaultLossOptions } from './losses/index.js';
import { createOptimizer, type Optimizer } from './optim.js';

export const benchArchs = ['gpt2', 'llama'] as const;
export type BenchArch = (typeof benchArchs)[number];

export interface BenchShape {
  arch: BenchArch;
  layers: number;
  heads: number;
  hidden: number;
  vocab: number;
  /** T: tokens per sequence (also n_positions). */
  seq: number;
  /** P: preference pairs per step (2P sequences). */
  pairs: number;
  /** T_p: tokens shared by chosen and rejected; not scored. */
  promptLen: number;
  /** Shortest completion: each completion is drawn in [this, T − T_p] tokens (default T − T_p, bench_torch's fixed length). */
  minCompletionLen?: number;
}

export interface BenchStepOptions extends BenchShape {
  beta: number;
  lr: number;
  seed: number;
  /** Distinct random batches, used in turn (bench_torch draws one per step; 1 repeats the same batch). */
  batches: number;
  /** Reference log-probs computed for every batch before the first step, and the reference model freed. */
  precomputeRefLogProbs: boolean;
  /** How each batch is run (dpo/forward's layouts); packing happens inside the timed step, as in the trainer. */
  layout: BatchLayout;
}

/** Llama's SwiGLU width for a hidden size: 8C/3 rounded up to a multiple of 64, as Llama's configs do. */
export const llamaIntermediate = (hidden: number) => 64 * Math.ceil((8 * hidden) / 3 / 64);

/** The HF config.json of each architecture at a bench shape; GPT-2's matches bench_torch.py's GPT. */
const hfConfigs: { readonly [K in BenchArch]: (s: BenchShape) => Record<string, unknown> } = {
  gpt2: (s) => ({
    model_type: 'gpt2', n_layer: s.layers, n_head: s.heads, n_embd: s.hidden, vocab_size: s.vocab,
    n_positions: s.seq, // wpe has one row per position of the sequence, as bench_torch's max_len
    layer_norm_epsilon: 1e-5, initializer_range: 0.02, tie_word_embeddings: true, activation_function: 'gelu_new',
  }),
  llama: (s) => ({
    model_type: 'llama', num_hidden_layers: s.layers, num_attention_heads: s.heads, hidden_size: s.hidden,
    intermediate_size: llamaIntermediate(s.hidden), vocab_size: s.vocab, max_position_embeddings: s.seq,
    initializer_range: 0.02, tie_word_embeddings: false,
  }),
};

/**
 * A freshly initialised model: weights N(0, 0.02²), GPT-2's residual projections (c_proj) N(0, (0.02/√(2L))²), biases 0,
 * norms 1, as bench_torch.py initialises its GPT (the same distributions; torch's random stream differs from ours).
 */
export function createBenchModel(s: BenchShape, seed: number): CausalLM {
  return createModelFromHFConfig(hfConfigs[s.arch](s), new Rng(seed), `dpo bench train --arch ${s.arch}`);
}

/**
 * `count` batches of R = 2P rows of T uniform random ids: rows [0, P) chosen, [P, 2P) rejected, and each rejected row
 * copies its chosen row's first T_p ids (the shared prompt), as bench_torch.py. Targets score ids T_p … T−1. With
 * minCompletionLen below T − T_p, each completion keeps a random length in [minCompletionLen, T − T_p] (drawn after
 * the ids, so the fixed-length stream is bench_torch's shape unchanged) and the batch is right-padded to its longest.
 */
export function makeBenchBatches(s: BenchShape, count: number, rng: Rng): PreferenceBatch[] {
  const { pairs: p, seq: t, promptLen: tp } = s;
  const longest = t - tp;
  const shortest = Math.min(longest, s.minCompletionLen ?? longest);
  return Array.from({ length: count }, (_, b) => {
    const ids = Int32Array.from({ length: 2 * p * t }, () => rng.int(s.vocab)); // (R, T)
    const length = () => shortest + (shortest < longest ? rng.int(longest - shortest + 1) : 0);
    const row = (r: number) => Array.from(ids.subarray(r * t + tp, r * t + tp + length()));
    return collatePreferenceBatch(Array.from({ length: p }, (_, i) => ({
      index: b * p + i, source: 'bench', promptIds: Array.from(ids.subarray(i * t, i * t + tp)), chosenIds: row(i), rejectedIds: row(p + i), promptMismatch: false,
    })), { padTokenId: 0 });
  });
}

/** Parameters by role, for the FLOP count: embeddings (wte, wpe, embed_tokens) and the LM head are not block GEMMs. */
export function countParams(model: CausalLM): { total: number; blockMatmul: number; head: number } {
  let total = 0;
  let blockMatmul = 0;
  for (const [name, p] of model.namedParameters()) {
    total += p.size;
    if (p.rank === 2 && !/(wte|wpe|embed_tokens|lm_head)\.weight$/.test(name)) blockMatmul += p.size;
  }
  return { total, blockMatmul, head: model.lmHeadWeight.size };
}

export interface StepFlops {
  /**
   * One forward over the batch: 2·N_blocks·R·T + 2·V·C·R·(T − T_p) + attention 2·L·C·R·T·(T + 1); with shorter
   * completions, the same per sequence at its own length, averaged over the batches.
   */
  forward: number;
  /** Policy forward + backward: 3 forwards (the backward costs two: input and weight gradients). */
  policy: number;
  /** The live reference's forward; 0 when its log-probs are precomputed. */
  reference: number;
  perStep: number;
}

/**
 * Model FLOPs of one step (multiply-adds count 2). N_blocks counts the rank-2 weights inside the blocks (12·L·C² for
 * GPT-2); biases, norms, GELU, softmax and embedding lookups are not counted. The LM head (V·C) runs only at the
 * R·(T − T_p) completion positions, as dpo/logps does (bench_torch runs it at all R·T, more work than counted here).
 * Causal attention: query i meets i + 1 keys, with q·kᵀ and p·v each 2·C FLOPs per pair, so 2·C·T·(T + 1) per row
 * and layer. These are the workload's FLOPs in the padded layout without its padding: a packed layout that runs
 * fewer tokens (a shared prompt once) is credited with the same count, so its MFU shows the saving.
 * `batches`: count each sequence at its real length (mean over the batches); default: every row is T long.
 */
export function stepFlops(s: BenchShape, params: { blockMatmul: number; head: number }, liveReference: boolean, batches?: readonly PreferenceBatch[]): StepFlops {
  const perSequence = (length: number, scored: number) => 2 * params.blockMatmul * length + 2 * params.head * scored + 2 * s.layers * s.hidden * length * (length + 1);
  const rows = 2 * s.pairs;
  let forward = rows * perSequence(s.seq, s.seq - s.promptLen);
  if (batches && batches.length > 0) {
    let total = 0;
    for (const b of batches) {
      for (let r = 0; r < 2 * b.B; r++) total += perSequence(b.promptLengths[r] + b.completionLengths[r] + (b.promptLengths[r] === 0 ? 1 : 0), b.completionLengths[r]);
    }
    forward = total / batches.length;
  }
  const policy = 3 * forward;
  const reference = liveReference ? forward : 0;
  return { forward, policy, reference, perStep: policy + reference };
}

/** Wall seconds of one step's phases (reference is 0 with precomputed log-probs). */
export interface PhaseSeconds {
  total: number;
  reference: number;
  policyForward: number;
  backward: number;
  optimizer: number;
}

export interface StepResult {
  loss: number;
  seconds: PhaseSeconds;
}

type PairSums = { chosen: Tensor; rejected: Tensor };

/** Σ log π_ref(y_w), Σ log π_ref(y_l) (P each) without a graph; everything else the pass made is freed. */
function frozenLogps(model: CausalLM, batch: PreferenceBatch | PackedBatch): PairSums {
  return noGrad(() => scope(() => {
    const lp = concatenatedLogps(model, batch);
    return { chosen: lp.chosen, rejected: lp.rejected };
  }));
}

/** Policy, reference (live or precomputed), optimizer and batches for a run of bench steps. */
export class BenchRun {
  readonly policy: CausalLM;
  readonly batches: PreferenceBatch[];
  /** Seconds spent precomputing reference log-probs (0 for a live reference). */
  readonly precomputeSeconds: number = 0;
  private reference: CausalLM | null;
  private readonly refSums: { chosen: Float32Array; rejected: Float32Array }[] = [];
  private readonly optimizer: Optimizer;

  constructor(private readonly o: BenchStepOptions) {
    // Same seed, same draws: the reference starts as an exact copy of the policy, frozen.
    this.policy = createBenchModel(o, o.seed);
    this.reference = createBenchModel(o, o.seed).requiresGrad(false);
    this.batches = makeBenchBatches(o, o.batches, new Rng(o.seed + 1));
    this.optimizer = createOptimizer([...this.policy.namedParameters()], { type: 'adamw', weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    if (o.precomputeRefLogProbs) {
      const start = performance.now();
      for (const batch of this.batches) {
        scope(() => {
          const s = frozenLogps(this.reference!, this.laidOut(batch));
          this.refSums.push({ chosen: Float32Array.from(s.chosen.data), rejected: Float32Array.from(s.rejected.data) });
        });
      }
      this.precomputeSeconds = (performance.now() - start) / 1e3;
      this.reference.dispose();
      this.reference = null;
    }
  }

  get liveReference(): boolean {
    return this.reference !== null;
  }

  /** The batch as the step runs it: padded, or packed into the chosen layout. */
  laidOut(batch: PreferenceBatch): PreferenceBatch | PackedBatch {
    const { prefixSharing, paddingFree } = this.o.layout;
    return prefixSharing || paddingFree ? packPreferenceBatch(batch, this.o.layout) : batch;
  }

  /** One timed DPO step on batch `index mod batches`: zero grads, layout, reference, policy, sigmoid loss, backward, AdamW. */
  step(index: number): StepResult {
    const i = index % this.batches.length;
    const t0 = performance.now();
    zeroGrad(this.policy.parameters()); // torch's zero_grad(set_to_none=True)
    const batch = this.laidOut(this.batches[i]);
    return scope(() => {
      const ref = this.reference ? frozenLogps(this.reference, batch)
        : { chosen: tensor(this.refSums[i].chosen, [this.o.pairs]), rejected: tensor(this.refSums[i].rejected, [this.o.pairs]) };
      const t1 = performance.now();
      const pol = concatenatedLogps(this.policy, batch);
      const out = computeLoss(['sigmoid'], null, {
        chosen: pol.chosen, rejected: pol.rejected, refChosen: ref.chosen, refRejected: ref.rejected,
        chosenLength: pol.chosenLength, rejectedLength: pol.rejectedLength,
      }, { ...defaultLossOptions, beta: this.o.beta });
      const loss = mean(out.losses); // −log σ(β·((π_w − π_l) − (ref_w − ref_l))), averaged over the P pairs
      const t2 = performance.now();
      backward(loss);
      const t3 = performance.now();
      this.optimizer.step(this.o.lr);
      const t4 = performance.now();
      const s = (ms: number) => ms / 1e3;
      return { loss: loss.item(), seconds: { total: s(t4 - t0), reference: s(t1 - t0), policyForward: s(t2 - t1), backward: s(t3 - t2), optimizer: s(t4 - t3) } };
    });
  }

  dispose(): void {
    this.policy.dispose();
    this.reference?.dispose();
    for (const t of this.optimizer.stateTensors().values()) t.dispose();
  }
}
