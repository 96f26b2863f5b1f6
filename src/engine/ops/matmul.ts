// Matrix products: batched matmul with optional transposes, and the fused linear layer (GEMM + bias).
// Legend: M, N, K as in C (M, N) = op(A) (M, K) · op(B) (K, N).
import { DTypeError, ShapeError, fmtShape } from '../errors.js';
import type { GradRules } from '../graph.js';
import { empty, getBackend, Tensor } from '../tensor.js';
import { assertFloat, assertSameDType, record, sameShape, sizeOf } from './util.js';
import { reshape, transpose } from './shape.js';
import { sum } from './reduce.js';

export interface MatmulOptions {
  /** Use Aᵀ: A is stored (…, K, M). */
  transA?: boolean;
  /** Use Bᵀ: B is stored (…, N, K). */
  transB?: boolean;
}

/**
 * op(A) · op(B). A is (…, M, K) (or (…, K, M) with transA); B is (K, N) shared across the batch, or (…, K, N) with the
 * same leading dimensions as A (or (…, N, K) with transB).
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const ad = assertFloat('matmul', 'a', a);
  const bd = assertFloat('matmul', 'b', b);
  assertSameDType('matmul', { a, b });
  if (a.rank < 2 || b.rank < 2) throw new ShapeError('matmul', `needs rank ≥ 2 operands, got a ${fmtShape(a.shape)} and b ${fmtShape(b.shape)}`);
  const batchShape = a.shape.slice(0, -2);
  const sharedB = b.rank === 2 && a.rank > 2;
  if (!sharedB && !sameShape(b.shape.slice(0, -2), batchShape)) {
    throw new ShapeError('matmul', `batch dimensions differ: a ${fmtShape(a.shape)} vs b ${fmtShape(b.shape)} (b may also be 2-D and shared)`);
  }
  const [m, ka] = transA ? [a.shape[a.rank - 1], a.shape[a.rank - 2]] : [a.shape[a.rank - 2], a.shape[a.rank - 1]];
  const [kb, n] = transB ? [b.shape[b.rank - 1], b.shape[b.rank - 2]] : [b.shape[b.rank - 2], b.shape[b.rank - 1]];
  if (ka !== kb) {
    throw new ShapeError('matmul', `inner dimensions differ: a ${fmtShape(a.shape)}${transA ? 'ᵀ' : ''} has K = ${ka}, b ${fmtShape(b.shape)}${transB ? 'ᵀ' : ''} has K = ${kb}`);
  }
  const batch = sizeOf(batchShape);
  const out = empty([...batchShape, m, n], a.dtype);
  const be = getBackend();
  if (sharedB && !transA) {
    // Fold the batch into M: one large GEMM instead of `batch` small ones.
    be.matmul(out.floatData(), ad, bd, 1, batch * m, n, ka, false, transB, 0, 0, 0, false);
  } else {
    be.matmul(out.floatData(), ad, bd, batch, m, n, ka, transA, transB, m * ka, sharedB ? 0 : ka * n, m * n, false);
  }
  return record(out, 'matmul', [a, b], { transA, transB });
}

/**
 * Linear layer: x (…, Cin) → (…, Cout). w is (Cout, Cin) like torch.nn.Linear, or (Cin, Cout) when wIsInOut
 * (GPT-2's Conv1D, y = x·W + b). bias (Cout) is optional.
 */
export function linear(x: Tensor, w: Tensor, bias: Tensor | null = null, wIsInOut = false): Tensor {
  const xd = assertFloat('linear', 'x', x);
  const wd = assertFloat('linear', 'w', w);
  assertSameDType('linear', bias ? { x, w, bias } : { x, w });
  if (w.rank !== 2) throw new ShapeError('linear', `weight must be 2-D, got ${fmtShape(w.shape)}`);
  const [cout, cin] = wIsInOut ? [w.shape[1], w.shape[0]] : [w.shape[0], w.shape[1]];
  if (x.rank < 1 || x.shape[x.rank - 1] !== cin) {
    throw new ShapeError('linear', `input ${fmtShape(x.shape)} must end in Cin = ${cin} to match weight ${fmtShape(w.shape)}${wIsInOut ? ' (Cin, Cout)' : ' (Cout, Cin)'}`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== cout)) throw new ShapeError('linear', `bias must be (${cout}), got ${fmtShape(bias.shape)}`);
  if (bias?.dtype === 'int32') throw new DTypeError('linear', 'bias must be float');
  const rows = x.size / cin;
  const out = empty([...x.shape.slice(0, -1), cout], x.dtype);
  getBackend().linear(out.floatData(), xd, wd, bias ? bias.floatData() : null, rows, cin, cout, wIsInOut);
  return record(out, 'linear', [x, w, bias], { wIsInOut });
}

export const matmulRules: Pick<GradRules, 'matmul' | 'linear'> = {
  matmul(g, { inputs: [a, b], saved: { transA, transB } }) {
    // C = op(A)·op(B): d op(A) = dC·op(B)ᵀ and d op(B) = op(A)ᵀ·dC, then transposed back to A's / B's storage.
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a!.requiresGrad) {
      if (!transA) ga = matmul(g, b!, { transB: !transB });
      else if (b!.rank === 2 && a!.rank > 2) ga = transpose(matmul(g, b!, { transB: !transB })); // shared B: (dC·op(B)ᵀ)ᵀ
      else ga = matmul(b!, g, { transA: transB, transB: true }); // op(B)·dCᵀ
    }
    if (b!.requiresGrad) {
      if (b!.rank === 2 && a!.rank > 2) {
        // B shared across the batch: its gradient sums over the batch; fold the batch into the GEMM's K.
        const k2 = a!.shape[a!.rank - 1];
        const a2 = transA ? null : reshape(a!, [-1, k2]);
        const g2 = reshape(g, [-1, g.shape[g.rank - 1]]);
        if (a2) {
          gb = transB ? matmul(g2, a2, { transA: true }) : matmul(a2, g2, { transA: true });
        } else {
          const per = transB ? matmul(g, a!, { transA: true, transB: true }) : matmul(a!, g, { transA: !transA });
          gb = sum(per, per.shape.slice(0, -2).map((_, i) => i));
        }
      } else {
        gb = transB ? matmul(g, a!, { transA: true, transB: transA }) : matmul(a!, g, { transA: !transA });
      }
    }
    return [ga, gb];
  },
  linear(g, { inputs: [x, w, bias], saved: { wIsInOut } }) {
    const cout = g.shape[g.rank - 1];
    const cin = x!.shape[x!.rank - 1];
    const g2 = reshape(g, [-1, cout]);
    const x2 = reshape(x!, [-1, cin]);
    // y = x·Wᵀ (W: Cout×Cin): dx = dy·W, dW = dyᵀ·x.  y = x·W (W: Cin×Cout): dx = dy·Wᵀ, dW = xᵀ·dy.
    const gx = x!.requiresGrad ? reshape(matmul(g2, w!, { transB: wIsInOut }), x!.shape) : null;
    const gw = w!.requiresGrad ? (wIsInOut ? matmul(x2, g2, { transA: true }) : matmul(g2, x2, { transA: true })) : null;
    const gb = bias?.requiresGrad ? sum(g2, 0) : null;
    return [gx, gw, gb];
  },
};
