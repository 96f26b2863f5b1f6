// The native backend agrees with the reference backend, kernel by kernel, on seeded random float32 inputs at many
// shapes: 1x1, sizes off the SIMD widths (3, 7, 17, 33, 65, 127), size-1 and zero-size dims, broadcasts, transposes,
// GQA, masks, ignored targets, accumulation and shared (stride-0) batches, plus sizes big enough to go parallel.
// Both backends see identical inputs (same seed); every output and every in-place array is compared.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Backend, FloatArray } from '../src/engine/backend.js';
import { binaryOps, unaryOps } from '../src/engine/backend.js';
import { Rng } from '../src/engine/random.js';
import { loadNativeBackend, nativeLoadError, nativeThreads, setNativeThreads } from '../src/backends/native.js';
import { referenceBackend } from '../src/backends/reference.js';
import { assertClose, type Tolerance } from './helpers.js';

const native = loadNativeBackend();
if (native === null) console.log(`# skipping test/native.test.ts: the native addon did not load (${nativeLoadError()})`);

const TOL: Tolerance = { atol: 1e-5, rtol: 1e-4 };

/** Seeded float32 / int32 / mask inputs; two instances with the same seed give the same stream. */
class Inputs {
  private rng: Rng;
  constructor(seed: number) { this.rng = new Rng(seed); }
  f32(n: number, lo = -1, hi = 1): Float32Array {
    return Float32Array.from({ length: n }, () => lo + (hi - lo) * this.rng.uniform());
  }
  /** Values from a small grid, so ties (eq, maximum, argmax) actually happen. */
  grid(n: number): Float32Array { return Float32Array.from({ length: n }, () => this.rng.int(9) / 2 - 2); }
  i32(n: number, lo: number, hi: number): Int32Array { return Int32Array.from({ length: n }, () => lo + this.rng.int(hi - lo)); }
  mask(n: number, pVisible: number): Uint8Array { return Uint8Array.from({ length: n }, () => (this.rng.uniform() < pVisible ? 1 : 0)); }
}

type Outputs = Record<string, ArrayLike<number>>;

/** Runs `run` on both backends with identically seeded inputs and compares every returned array. */
function agree(what: string, run: (be: Backend, r: Inputs) => Outputs, tol: Tolerance = TOL): void {
  const expected = run(referenceBackend, new Inputs(1234));
  const actual = run(native!, new Inputs(1234));
  for (const key of Object.keys(expected)) assertClose(actual[key], expected[key], tol, `${what}: ${key}`);
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
/** Elements a strided view reaches: 1 + max offset (non-negative strides), or 0 when empty. */
const extent = (shape: readonly number[], strides: readonly number[], offset = 0) =>
  numel(shape) === 0 ? 0 : offset + 1 + shape.reduce((acc, s, d) => acc + (s - 1) * strides[d], 0);

// [shape, strides, offset]: slice, transpose, broadcasts, 3-D permute, size-1 dims, empty, scalar, big transpose.
const VIEWS: [number[], number[], number][] = [
  [[3, 5], [7, 1], 8], [[7, 3], [1, 7], 0], [[4, 17], [0, 1], 2], [[17, 4], [1, 0], 0], [[2, 3, 5], [1, 2, 6], 0],
  [[1, 5, 1], [0, 1, 0], 1], [[0, 4], [4, 1], 0], [[], [], 3], [[1, 1], [1, 1], 0], [[130, 257], [1, 130], 5],
];

describe('native backend matches the reference backend', { skip: native === null ? nativeLoadError() : false }, () => {
  it('fill', () => agree('fill', (be) => {
    const outs: Outputs = {};
    for (const n of [0, 1, 7, 33, 100_001]) { const o = new Float32Array(n); be.fill(o, 3.25); outs[`n=${n}`] = o; }
    return outs;
  }));

  it('stridedCopy (float32 and int32) and stridedAccumulate over slices, transposes and broadcasts', () => agree('strided', (be, r) => {
    const outs: Outputs = {};
    for (const [shape, strides, offset] of VIEWS) {
      const x = r.f32(extent(shape, strides, offset));
      const out = new Float32Array(numel(shape));
      be.stridedCopy(out, x, shape, strides, offset);
      const ids = new Int32Array(numel(shape));
      be.stridedCopy(ids, r.i32(x.length, -50, 50), shape, strides, offset);
      const acc = r.f32(x.length); // accumulate `out` back into a strided view (broadcast views repeat offsets)
      be.stridedAccumulate(acc, r.f32(numel(shape)), shape, strides, offset);
      Object.assign(outs, { [`copy ${shape}`]: out, [`ids ${shape}`]: ids, [`acc ${shape}`]: acc });
    }
    return outs;
  }));

  it('gatherRows and scatterAddRows, with repeated ids', () => agree('rows', (be, r) => {
    const outs: Outputs = {};
    for (const [n, c] of [[0, 4], [1, 1], [17, 7], [33, 65], [300, 768], [5, 0]]) {
      const table = r.f32(50 * c);
      const ids = r.i32(n, 0, 50);
      const out = new Float32Array(n * c);
      be.gatherRows(out, table, ids, n, c);
      be.scatterAddRows(table, r.f32(n * c), ids, n, c);
      Object.assign(outs, { [`gather ${n}x${c}`]: out, [`scatter ${n}x${c}`]: table });
    }
    return outs;
  }));

  it('unary and unaryBackward, every op, ordinary and extreme inputs', () => agree('unary', (be, r) => {
    const outs: Outputs = {};
    for (const op of unaryOps) {
      const positive = op === 'log' || op === 'sqrt' || op === 'rsqrt';
      for (const [n, span] of [[0, 1], [1, 1], [7, 3], [17, 6], [1000, 6], [70_001, 6], [513, 100]]) {
        const x = positive ? r.f32(n, 0.01, span) : r.f32(n, -span, span);
        const y = new Float32Array(n);
        const dx = new Float32Array(n);
        be.unary(op, y, x);
        be.unaryBackward(op, dx, r.f32(n), x, y);
        Object.assign(outs, { [`${op} n=${n} span=${span}`]: y, [`d${op} n=${n} span=${span}`]: dx });
      }
    }
    return outs;
  }));

  it('binary, every op: same shape, row/column/scalar broadcasts, transposes, 3-D, size-1 and empty', () => agree('binary', (be, r) => {
    const outs: Outputs = {};
    const cases: [number[], number[], number[]][] = [
      [[33, 17], [17, 1], [17, 1]], [[7, 65], [65, 1], [0, 1]], [[65, 7], [7, 1], [1, 0]], [[5, 3], [3, 1], [0, 0]],
      [[3, 127], [0, 1], [127, 1]], [[17, 3], [1, 17], [3, 1]], [[2, 3, 4], [12, 4, 1], [0, 1, 0]], [[1, 1], [1, 1], [0, 0]],
      [[0, 5], [5, 1], [0, 1]], [[300, 257], [257, 1], [0, 1]], [[257, 300], [1, 257], [300, 1]],
    ];
    for (const op of binaryOps) {
      for (const [shape, as, bs] of cases) {
        const a = op === 'div' ? r.f32(extent(shape, as), -2, 2) : r.grid(extent(shape, as));
        const b = op === 'div' ? r.f32(extent(shape, bs), 0.5, 2) : r.grid(extent(shape, bs));
        const out = new Float32Array(numel(shape));
        be.binary(op, out, a, b, shape, as, bs);
        outs[`${op} ${shape} a${as} b${bs}`] = out;
      }
    }
    return outs;
  }));

  it('affine: float32 natively; int32 and float32→float64 casts through the reference', () => agree('affine', (be, r) => {
    const outs: Outputs = {};
    for (const n of [0, 7, 100_003]) {
      const out = new Float32Array(n);
      be.affine(out, r.f32(n, -100, 100), 0.37, -1.5);
      const ints = new Int32Array(n);
      be.affine(ints, r.i32(n, -1000, 1000), 3, 1);
      const wide = new Float64Array(n);
      be.affine(wide, r.f32(n), 2, 0);
      Object.assign(outs, { [`f32 ${n}`]: out, [`i32 ${n}`]: ints, [`f64 ${n}`]: wide });
    }
    return outs;
  }));

  it('reduceSum and reduceMax (first argmax among ties) over (outer, n, inner)', () => agree('reduce', (be, r) => {
    const outs: Outputs = {};
    for (const [outer, n, inner] of [[1, 1, 1], [3, 7, 1], [1, 127, 1], [2, 33, 17], [1, 1000, 65], [5, 0, 3], [0, 4, 4], [4, 17, 300], [1, 4096, 1], [200, 300, 1]]) {
      const x = r.grid(outer * n * inner);
      const sum = new Float32Array(outer * inner);
      const max = new Float32Array(outer * inner);
      const argmax = new Int32Array(outer * inner);
      be.reduceSum(sum, r.f32(outer * n * inner), outer, n, inner);
      be.reduceMax(max, argmax, x, outer, n, inner);
      Object.assign(outs, { [`sum ${outer},${n},${inner}`]: sum, [`max ${outer},${n},${inner}`]: max, [`argmax ${outer},${n},${inner}`]: argmax });
    }
    return outs;
  }));

  it('matmul: transposes, accumulate, shared (stride-0) batches, empty dims', () => {
    const shapes = [[1, 1, 1, 1], [2, 3, 7, 17], [3, 17, 33, 65], [1, 65, 127, 33], [2, 0, 5, 3], [2, 4, 5, 0], [0, 3, 3, 3]];
    for (const [batch, m, n, k] of shapes) {
      for (const [transA, transB, accumulate] of [[false, false, false], [true, false, true], [false, true, false], [true, true, true]]) {
        for (const [aShared, bShared] of [[false, false], [true, false], [false, true]]) {
          agree(`matmul b${batch} ${m}x${n}x${k} tA=${transA} tB=${transB} acc=${accumulate} shared=${aShared},${bShared}`, (be, r) => {
            const c = r.f32(batch * m * n);
            be.matmul(c, r.f32((aShared ? 1 : batch) * m * k), r.f32((bShared ? 1 : batch) * k * n), batch, m, n, k, transA, transB,
              aShared ? 0 : m * k, bShared ? 0 : k * n, m * n, accumulate);
            return { c };
          });
        }
      }
    }
    agree('matmul large K', (be, r) => {
      const c = new Float32Array(48 * 40);
      be.matmul(c, r.f32(48 * 2048), r.f32(2048 * 40), 1, 48, 40, 2048, false, false, 0, 0, 0, false);
      return { c };
    }, { atol: 1e-4, rtol: 1e-3 });
  });

  it('linear: with and without bias, W as (Cout, Cin) and (Cin, Cout)', () => agree('linear', (be, r) => {
    const outs: Outputs = {};
    // [40, 300, 200] and [1000, 64, 40] are threaded GEMMs: few rows (A packed once, shared by column blocks) and many.
    for (const [n, cin, cout] of [[1, 1, 1], [3, 7, 17], [33, 65, 3], [0, 4, 4], [5, 0, 3], [64, 128, 96], [40, 300, 200], [1000, 64, 40]]) {
      for (const wIsInOut of [false, true]) {
        for (const withBias of [false, true]) {
          const out = new Float32Array(n * cout);
          be.linear(out, r.f32(n * cin), r.f32(cin * cout), withBias ? r.f32(cout) : null, n, cin, cout, wIsInOut);
          outs[`${n}x${cin}x${cout} inOut=${wIsInOut} bias=${withBias}`] = out;
        }
      }
    }
    return outs;
  }));

  it('softmax and logSoftmax with their backwards, ordinary and ±60 logits', () => agree('softmax', (be, r) => {
    const outs: Outputs = {};
    for (const [rows, cols, span] of [[1, 1, 1], [3, 7, 3], [5, 17, 3], [2, 1000, 60], [0, 5, 1], [4, 0, 1], [300, 257, 5]]) {
      const x = r.f32(rows * cols, -span, span);
      const dy = r.f32(rows * cols);
      const y = new Float32Array(rows * cols), ly = new Float32Array(rows * cols);
      const dx = new Float32Array(rows * cols), ldx = new Float32Array(rows * cols);
      be.softmax(y, x, rows, cols);
      be.softmaxBackward(dx, dy, y, rows, cols);
      be.logSoftmax(ly, x, rows, cols);
      be.logSoftmaxBackward(ldx, dy, ly, rows, cols);
      Object.assign(outs, { [`y ${rows}x${cols}`]: y, [`dx ${rows}x${cols}`]: dx, [`logy ${rows}x${cols}`]: ly, [`logdx ${rows}x${cols}`]: ldx });
    }
    return outs;
  }));

  it('layerNorm and rmsNorm with backwards; weight/bias present or null; dweight/dbias accumulate', () => agree('norms', (be, r) => {
    const outs: Outputs = {};
    for (const [rows, cols] of [[1, 1], [3, 7], [17, 33], [0, 5], [64, 768], [200, 65]]) {
      for (const affine of [false, true]) {
        const key = `${rows}x${cols} affine=${affine}`;
        const x = r.f32(rows * cols, -3, 3), dy = r.f32(rows * cols);
        const w = affine ? r.f32(cols) : null, b = affine ? r.f32(cols) : null;
        const dw = affine ? r.f32(cols) : null, db = affine ? r.f32(cols) : null;
        const out = new Float32Array(rows * cols), mean = new Float32Array(rows), rstd = new Float32Array(rows);
        const dx = new Float32Array(rows * cols);
        be.layerNorm(out, mean, rstd, x, w, b, rows, cols, 1e-5);
        be.layerNormBackward(dx, dw, db, dy, x, w, mean, rstd, rows, cols);
        Object.assign(outs, { [`ln ${key}`]: out, [`ln mean ${key}`]: mean, [`ln rstd ${key}`]: rstd, [`ln dx ${key}`]: dx });
        if (dw && db) Object.assign(outs, { [`ln dw ${key}`]: dw, [`ln db ${key}`]: db });
        const rout = new Float32Array(rows * cols), rrstd = new Float32Array(rows), rdx = new Float32Array(rows * cols);
        const rdw = affine ? r.f32(cols) : null;
        be.rmsNorm(rout, rrstd, x, w, rows, cols, 1e-6);
        be.rmsNormBackward(rdx, rdw, dy, x, w, rrstd, rows, cols);
        Object.assign(outs, { [`rms ${key}`]: rout, [`rms rstd ${key}`]: rrstd, [`rms dx ${key}`]: rdx });
        if (rdw) outs[`rms dw ${key}`] = rdw;
      }
    }
    return outs;
  }));

  it('logSoftmaxGather and backward, with ignored (-100) targets and rows longer than one block', () => agree('logprob', (be, r) => {
    const outs: Outputs = {};
    for (const [n, v] of [[1, 1], [3, 7], [5, 17], [4, 3000], [64, 5000], [0, 9], [6, 65]]) {
      const logits = r.f32(n * v, -10, 10);
      const targets = Int32Array.from(r.i32(n, 0, v), (t, i) => (i % 3 === 1 ? -100 : t));
      const out = new Float32Array(n), lse = new Float32Array(n), dlogits = r.f32(n * v);
      be.logSoftmaxGather(out, lse, logits, targets, n, v);
      be.logSoftmaxGatherBackward(dlogits, r.f32(n), logits, lse, targets, n, v);
      Object.assign(outs, { [`out ${n}x${v}`]: out, [`lse ${n}x${v}`]: lse, [`dlogits ${n}x${v}`]: dlogits });
    }
    return outs;
  }));

  it('attention and backward: GQA (H=4,KVH=2), MHA, MQA (KVH=1), causal with Tq ≠ Tk, masks, empty', () => {
    // [b, tq, tk, h, kvh, d, masked]
    const cases = [
      [1, 1, 1, 1, 1, 1, 0], [2, 5, 5, 4, 2, 8, 0], [1, 3, 7, 4, 1, 3, 0], [2, 7, 7, 4, 4, 17, 0], [1, 5, 3, 2, 1, 4, 0],
      [2, 6, 9, 4, 2, 16, 1], [1, 4, 4, 3, 3, 5, 1], [2, 33, 33, 4, 2, 64, 0], [1, 65, 65, 4, 1, 32, 1],
      [0, 3, 3, 2, 1, 4, 0], [1, 0, 3, 2, 1, 4, 0], [1, 3, 0, 2, 2, 4, 1],
    ];
    for (const [b, tq, tk, h, kvh, d, masked] of cases) {
      agree(`attention b${b} tq${tq} tk${tk} h${h} kvh${kvh} d${d} mask=${masked}`, (be, r) => {
        const q = r.f32(b * tq * h * d, -2, 2), k = r.f32(b * tk * kvh * d, -2, 2), v = r.f32(b * tk * kvh * d);
        const mask = masked ? r.mask(b * tq * tk, 0.6) : null;
        if (mask && tk > 0) mask.fill(0, 0, tk); // the first query sees no key: zero output
        const out = new Float32Array(q.length), probs = new Float32Array(b * h * tq * tk);
        be.attention(out, probs, q, k, v, mask, b, tq, tk, h, kvh, d, 1 / Math.sqrt(Math.max(d, 1)));
        const dq = r.f32(q.length), dk = r.f32(k.length), dv = r.f32(v.length); // overwritten, so start from garbage
        be.attentionBackward(dq, dk, dv, r.f32(q.length), q, k, v, probs, b, tq, tk, h, kvh, d, 1 / Math.sqrt(Math.max(d, 1)));
        return { out, probs, dq, dk, dv };
      });
    }
  });

  it('attention and backward with segment masks: packed rows and shared prompts, across query blocks, with skipped key runs', () => {
    // Each row: pieces [length, parent piece or −1]; query i sees key j ≤ i of its own piece or of its parent.
    const rows: [number, number][][] = [
      [[40, -1], [88, 0], [100, 0]], // prompt | chosen | rejected: the rejected block (from 128) skips the chosen keys
      [[128, -1], [7, -1], [60, -1], [3, -1]], // packed sequences: the second block skips the first sequence
      [[5, -1], [20, 0], [1, 0], [150, -1], [0, -1], [44, -1]], // both, with empty and one-token pieces
    ];
    const t = 250;
    const [h, kvh, d] = [4, 2, 16];
    const b = rows.length;
    const mask = new Uint8Array(b * t * t);
    rows.forEach((pieces, bi) => {
      const piece = new Int32Array(t).fill(-1);
      let at = 0;
      pieces.forEach(([n], k) => { piece.fill(k, at, at + n); at += n; });
      for (let i = 0; i < t; i++) {
        for (let j = 0; j <= i; j++) {
          const [pi, pj] = [piece[i], piece[j]];
          if (pi >= 0 && pj >= 0 && (pi === pj || pieces[pi][1] === pj)) mask[(bi * t + i) * t + j] = 1;
        }
      }
    });
    agree('attention with segment masks', (be, r) => {
      const q = r.f32(b * t * h * d, -2, 2), k = r.f32(b * t * kvh * d, -2, 2), v = r.f32(b * t * kvh * d);
      const out = r.f32(q.length), probs = r.f32(b * h * t * t); // overwritten, so start from garbage
      be.attention(out, probs, q, k, v, mask, b, t, t, h, kvh, d, 0.25);
      const dq = r.f32(q.length), dk = r.f32(k.length), dv = r.f32(v.length);
      be.attentionBackward(dq, dk, dv, r.f32(q.length), q, k, v, probs, b, t, t, h, kvh, d, 0.25);
      return { out, probs, dq, dk, dv };
    });
  });

  it('rope forward and inverse, also in place', () => agree('rope', (be, r) => {
    const outs: Outputs = {};
    for (const [b, t, h, d] of [[1, 1, 1, 2], [2, 3, 4, 6], [1, 17, 3, 64], [2, 65, 12, 64], [0, 3, 2, 4]]) {
      const x = r.f32(b * t * h * d), cos = r.f32(b * t * d / 2), sin = r.f32(b * t * d / 2);
      const out = new Float32Array(x.length), back = new Float32Array(x.length);
      be.rope(out, x, cos, sin, b, t, h, d, false);
      be.rope(back, out, cos, sin, b, t, h, d, true);
      be.rope(x, x, cos, sin, b, t, h, d, false);
      Object.assign(outs, { [`${b},${t},${h},${d}`]: out, [`inverse ${b},${t},${h},${d}`]: back, [`in place ${b},${t},${h},${d}`]: x });
    }
    return outs;
  }));

  it('adamw over several steps, with and without weight decay', () => agree('adamw', (be, r) => {
    const outs: Outputs = {};
    for (const n of [0, 7, 100_003]) {
      for (const wd of [0, 0.1]) {
        const p = r.f32(n), m = new Float32Array(n), v = new Float32Array(n);
        for (let step = 1; step <= 3; step++) be.adamw(p, r.f32(n), m, v, 1e-3, 0.9, 0.999, 1e-8, wd, step);
        Object.assign(outs, { [`p ${n} wd=${wd}`]: p, [`m ${n} wd=${wd}`]: m, [`v ${n} wd=${wd}`]: v });
      }
    }
    return outs;
  }));

  it('float64 inputs run on the reference backend and give its exact results', () => {
    const x = Float64Array.from({ length: 21 }, (_, i) => Math.sin(i));
    const run = (be: Backend) => { const y = new Float64Array(21); be.softmax(y, x, 3, 7); return y; };
    assert.deepEqual(run(native!), run(referenceBackend));
  });

  it('results do not depend on the thread count', () => {
    const before = nativeThreads();
    const run = (threads: number): FloatArray => {
      setNativeThreads(threads);
      const r = new Inputs(7);
      const x = r.f32(256 * 512), y = new Float32Array(x.length);
      native!.softmax(y, x, 256, 512);
      return y;
    };
    try {
      assert.deepEqual(run(1), run(Math.max(2, before)));
      assert.equal(nativeThreads(), Math.max(2, before));
    } finally {
      setNativeThreads(before);
    }
  });

  it('the binding rejects a too-short array, a bad view and out-of-range indices, naming the kernel', () => {
    const be = native!;
    assert.throws(() => be.softmax(new Float32Array(4), new Float32Array(3), 2, 2), (e: Error) => e instanceof RangeError && /softmax.*'x'/.test(e.message));
    assert.throws(() => be.matmul(new Float32Array(6), new Float32Array(5), new Float32Array(6), 1, 2, 3, 3, false, false, 0, 0, 0, false),
      (e: Error) => e instanceof RangeError && /matmul.*'a'/.test(e.message));
    assert.throws(() => be.gatherRows(new Float32Array(2), new Float32Array(4), Int32Array.of(2), 1, 2), (e: Error) => e instanceof RangeError && /gatherRows.*ids/.test(e.message));
    assert.throws(() => be.logSoftmaxGather(new Float32Array(1), new Float32Array(1), new Float32Array(3), Int32Array.of(3), 1, 3),
      (e: Error) => e instanceof RangeError && /logSoftmaxGather.*targets/.test(e.message));
    assert.throws(() => be.stridedCopy(new Float32Array(4), new Float32Array(4), [2, 2], [3, 1], 0), (e: Error) => e instanceof RangeError && /stridedCopy/.test(e.message));
  });
});
