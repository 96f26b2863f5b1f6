// The Backend interface: the closed set of kernels the engine runs on.
// A kernel works on flat, contiguous, row-major typed arrays plus explicit dimensions; it knows nothing of
// tensors, shapes objects or autograd. Argument order follows llm.c: outputs, inputs, saved values, then dims.
// Every size and index is checked by the engine before a kernel runs, so kernels may trust their arguments.
//
// Legend used in the comments below:  B batch, T time (Tq queries, Tk keys), H query heads, KVH key/value heads,
// D head size, C channels, V vocabulary, N rows, M/N/K GEMM sizes.

export type FloatArray = Float32Array | Float64Array;
export type AnyArray = Float32Array | Float64Array | Int32Array;

export const unaryOps = ['neg', 'exp', 'log', 'tanh', 'sqrt', 'rsqrt', 'sigmoid', 'silu', 'gelu', 'relu', 'abs', 'square'] as const;
export type UnaryOp = (typeof unaryOps)[number];

export const binaryOps = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'eq', 'gt'] as const;
export type BinaryOp = (typeof binaryOps)[number];

export interface Backend {
  /** 'reference' (pure TypeScript loops) or 'native' (the C++ addon). */
  readonly name: 'reference' | 'native';
  /** Threads the backend's parallel kernels use (1 for reference). */
  readonly threads: number;

  // ---------------------------------------------------------------- memory movement
  /** out[:] = value */
  fill(out: AnyArray, value: number): void;
  /** out (contiguous, of `shape`) = x[offset + Σ idx_d·xStrides_d]. Slice, permute and broadcast-materialise. */
  stridedCopy(out: AnyArray, x: AnyArray, shape: readonly number[], xStrides: readonly number[], xOffset: number): void;
  /** out[offset + Σ idx_d·outStrides_d] += x (contiguous, of `shape`). Backward of slice and strided views. */
  stridedAccumulate(out: FloatArray, x: FloatArray, shape: readonly number[], outStrides: readonly number[], outOffset: number): void;
  /** out (N, C) = table[ids[i], :] ; table (V, C). Embedding lookup. */
  gatherRows(out: FloatArray, table: FloatArray, ids: Int32Array, n: number, c: number): void;
  /** table[ids[i], :] += src[i, :] ; src (N, C). Embedding backward. */
  scatterAddRows(table: FloatArray, src: FloatArray, ids: Int32Array, n: number, c: number): void;

  // ---------------------------------------------------------------- elementwise
  /** out = op(x), same length. */
  unary(op: UnaryOp, out: FloatArray, x: FloatArray): void;
  /** dx = dy · op'(x); y = op(x) is passed too so rules may use whichever is cheaper. Overwrites dx. */
  unaryBackward(op: UnaryOp, dx: FloatArray, dy: FloatArray, x: FloatArray, y: FloatArray): void;
  /** out (contiguous, of `shape`) = a[Σ idx·aStrides] op b[Σ idx·bStrides]; stride 0 broadcasts. eq/gt give 1 or 0. */
  binary(op: BinaryOp, out: FloatArray, a: FloatArray, b: FloatArray, shape: readonly number[], aStrides: readonly number[], bStrides: readonly number[]): void;
  /** out = cond ≠ 0 ? a : b, all three read through broadcast strides into the contiguous `shape`. */
  where(out: FloatArray, cond: FloatArray, a: FloatArray, b: FloatArray, shape: readonly number[], condStrides: readonly number[], aStrides: readonly number[], bStrides: readonly number[]): void;
  /** out[i] = x[i]·scale + shift (float or int arrays; also casts float32 ↔ float64 when the types differ). */
  affine(out: AnyArray, x: AnyArray, scale: number, shift: number): void;

  // ---------------------------------------------------------------- reductions, viewing x as (outer, n, inner)
  /** out (outer, inner) = Σ_j x[o, j, i] */
  reduceSum(out: FloatArray, x: FloatArray, outer: number, n: number, inner: number): void;
  /** out (outer, inner) = max_j x[o, j, i]; argmax gets the first index of the maximum. */
  reduceMax(out: FloatArray, argmax: Int32Array, x: FloatArray, outer: number, n: number, inner: number): void;

  // ---------------------------------------------------------------- GEMM
  /**
   * For each b < batch: C_b (M, N) [+]= op(A_b) · op(B_b).
   * A_b is (M, K) row-major, or (K, M) when transA; B_b is (K, N), or (N, K) when transB.
   * A_b starts at b·aBatchStride (0 shares one A), likewise B and C. accumulate adds into C instead of overwriting.
   */
  matmul(c: FloatArray, a: FloatArray, b: FloatArray, batch: number, m: number, n: number, k: number,
    transA: boolean, transB: boolean, aBatchStride: number, bBatchStride: number, cBatchStride: number, accumulate: boolean): void;
  /**
   * Fused linear layer: out (N, Cout) = x (N, Cin) · Wᵀ + bias, with W (Cout, Cin) as torch.nn.Linear stores it,
   * or out = x · W + bias with W (Cin, Cout) when wIsInOut (GPT-2's Conv1D). bias (Cout) or null.
   */
  linear(out: FloatArray, x: FloatArray, w: FloatArray, bias: FloatArray | null, n: number, cin: number, cout: number, wIsInOut: boolean): void;

  // ---------------------------------------------------------------- fused row kernels, rows of length `cols`
  /** out = softmax(x) along each row. */
  softmax(out: FloatArray, x: FloatArray, rows: number, cols: number): void;
  /** dx = y ⊙ (dy − Σ dy⊙y), y = softmax(x). Overwrites dx. */
  softmaxBackward(dx: FloatArray, dy: FloatArray, y: FloatArray, rows: number, cols: number): void;
  /** out = x − logΣexp(x) along each row. */
  logSoftmax(out: FloatArray, x: FloatArray, rows: number, cols: number): void;
  /** dx = dy − exp(y)·Σ dy, y = logSoftmax(x). Overwrites dx. */
  logSoftmaxBackward(dx: FloatArray, dy: FloatArray, y: FloatArray, rows: number, cols: number): void;
  /** out = (x − mean)·rstd·weight + bias; saves mean, rstd (rows). weight/bias (cols) may be null (= 1 / 0). */
  layerNorm(out: FloatArray, mean: FloatArray, rstd: FloatArray, x: FloatArray, weight: FloatArray | null, bias: FloatArray | null, rows: number, cols: number, eps: number): void;
  /** Overwrites dx; accumulates into dweight and dbias when they are given. */
  layerNormBackward(dx: FloatArray, dweight: FloatArray | null, dbias: FloatArray | null, dy: FloatArray, x: FloatArray, weight: FloatArray | null, mean: FloatArray, rstd: FloatArray, rows: number, cols: number): void;
  /** out = x·rstd·weight with rstd = 1/sqrt(mean(x²) + eps); saves rstd (rows). weight may be null. */
  rmsNorm(out: FloatArray, rstd: FloatArray, x: FloatArray, weight: FloatArray | null, rows: number, cols: number, eps: number): void;
  /** Overwrites dx; accumulates into dweight when given. */
  rmsNormBackward(dx: FloatArray, dweight: FloatArray | null, dy: FloatArray, x: FloatArray, weight: FloatArray | null, rstd: FloatArray, rows: number, cols: number): void;

  // ---------------------------------------------------------------- log-prob head
  /**
   * out (N) = logits[i, t_i] − logΣexp(logits[i, :]); saves lse (N). logits (N, V), targets (N).
   * A negative target (e.g. −100, "ignore") gives out = 0 and lse = 0.
   */
  logSoftmaxGather(out: FloatArray, lse: FloatArray, logits: FloatArray, targets: Int32Array, n: number, v: number): void;
  /** dlogits[i, j] = dout[i]·(1[j = t_i] − exp(logits[i, j] − lse[i])); zero rows for ignored targets. Overwrites. */
  logSoftmaxGatherBackward(dlogits: FloatArray, dout: FloatArray, logits: FloatArray, lse: FloatArray, targets: Int32Array, n: number, v: number): void;

  // ---------------------------------------------------------------- attention and rotary embeddings
  /**
   * Scaled dot-product attention with grouped-query heads. q (B, Tq, H, D); k, v (B, Tk, KVH, D); out (B, Tq, H, D).
   * Head h reads key/value head floor(h / (H / KVH)). probs (B, H, Tq, Tk) receives the attention weights (saved).
   * mask null: causal, query i sits at position Tk − Tq + i and sees keys j ≤ that position.
   * mask (B, Tq, Tk) of 0/1: replaces the causal rule. A query that sees no key gets zero output.
   */
  attention(out: FloatArray, probs: FloatArray, q: FloatArray, k: FloatArray, v: FloatArray, mask: Uint8Array | null,
    b: number, tq: number, tk: number, h: number, kvh: number, d: number, scale: number): void;
  /** Overwrites dq, dk, dv (same layouts as q, k, v). */
  attentionBackward(dq: FloatArray, dk: FloatArray, dv: FloatArray, dout: FloatArray, q: FloatArray, k: FloatArray, v: FloatArray, probs: FloatArray,
    b: number, tq: number, tk: number, h: number, kvh: number, d: number, scale: number): void;
  /**
   * Rotary embedding, HF rotate-half layout: with h = D/2, out[i] = x[i]·cos[i] − x[i+h]·sin[i] and
   * out[i+h] = x[i+h]·cos[i] + x[i]·sin[i]. x, out (B, T, H, D); cos, sin (B, T, D/2). inverse negates sin (the backward).
   */
  rope(out: FloatArray, x: FloatArray, cos: FloatArray, sin: FloatArray, b: number, t: number, h: number, d: number, inverse: boolean): void;

  // ---------------------------------------------------------------- optimizer
  /**
   * AdamW, in place, as torch.optim.AdamW: p −= lr·wd·p; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
   * p −= lr · (m / (1 − β1^step)) / (sqrt(v / (1 − β2^step)) + eps).
   */
  adamw(param: FloatArray, grad: FloatArray, m: FloatArray, v: FloatArray, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
}
