// Fused scaled dot-product attention with grouped-query heads (query head h reads key/value head h / group), forward
// and backward, as per-head GEMMs on AVX2 register tiles (head_gemm, B packed once per head) plus row passes. With at
// least as many (batch, KV head) groups as threads, the groups run in parallel (a group owns its dK/dV rows, so no two
// tasks write the same memory); otherwise heads run one after another, the forward splitting each head's query blocks
// over the threads and the backward on one thread. Queries go in blocks whose GEMMs see only the key runs the block
// can see: the causal range, or, with a mask (padding, packed sequences, a prompt shared by two completions), the
// columns some query of the block sees.
// Legend: B batch, Tq queries, Tk keys, H query heads, KVH key/value heads, D head size, group = H / KVH;
// q, out (B, Tq, H, D); k, v (B, Tk, KVH, D); probs (B, H, Tq, Tk); a head's rows are strided by H·D or KVH·D.
#include <algorithm>
#include <vector>

#include "kernels.h"
#include "kernels_common.h"

namespace dpo {
namespace {

// ---------------------------------------------------------------- head-sized GEMMs

// The attention GEMMs have k or n = D (64) and m, n, k up to a query block or a key run: too small for sgemm, whose
// packing of both operands per call cost a third of the head's time. Here only B is packed, once per head, into
// 16-column slivers (zero padded), and A is read where it lies. Without packing, B's rows sit H·D floats apart and a
// column slab of them misses L1 (the sets alias).
constexpr int64_t kSliver = 16;

// out: B (k, n) in slivers of 16 columns, element (p, j) at out[(j / 16)·k·16 + p·16 + j % 16], columns ≥ n zero.
// B's element (p, j) is read at b[p·b_rs + j·b_cs] (so swapping the strides packs Bᵀ).
void pack_slivers(float* out, const float* b, int64_t k, int64_t n, int64_t b_rs, int64_t b_cs) {
  const int64_t slivers = (n + kSliver - 1) / kSliver;
  if (b_cs == 1) {  // B's rows are contiguous: read each once, front to back
    for (int64_t p = 0; p < k; ++p) {
      const float* row = b + p * b_rs;
      for (int64_t s = 0; s < slivers; ++s) {
        float* dst = out + s * k * kSliver + p * kSliver;
        const int64_t cols = std::min(kSliver, n - s * kSliver);
        std::copy(row + s * kSliver, row + s * kSliver + cols, dst);
        std::fill(dst + cols, dst + kSliver, 0.0f);
      }
    }
    return;
  }
  for (int64_t s = 0; s < slivers; ++s) {  // Bᵀ is stored: read along its rows (B's columns)
    float* sliver = out + s * k * kSliver;
    const int64_t cols = std::min(kSliver, n - s * kSliver);
    for (int64_t jj = 0; jj < kSliver; ++jj) {
      const float* col = b + (s * kSliver + jj) * b_cs;
      for (int64_t p = 0; p < k; ++p) sliver[p * kSliver + jj] = jj < cols ? col[p * b_rs] : 0.0f;
    }
  }
}

// Floats pack_slivers writes for n columns of k rows.
int64_t sliver_floats(int64_t k, int64_t n) { return (n + kSliver - 1) / kSliver * kSliver * k; }

// Rows of C per register tile: 6 × 16 holds 12 accumulators, enough to hide the FMA latency (2 units × 4 cycles).
constexpr int64_t kTileRows = 6;

// C (m, n) [= or +=] A (m, k) · B (k, n): A's element (i, p) at a[i·a_rs + p·a_cs] (so Aᵀ is A with the strides
// swapped); B packed by pack_slivers, starting at its row 0 of column 0 (an offset p0·16 starts at row p0), slivers
// b_sliver floats apart; C with row stride ldc. Each C element is one FMA chain over p in order, as in sgemm.
#ifdef DPO_AVX2
template <int R>
void tile_gemm(int64_t cols, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b, float* c,
               int64_t ldc, bool accumulate) {
  const bool full = cols == kSliver;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(cols)), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(cols) - 8), lane);
  __m256 c0[R], c1[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (!accumulate) {
      c0[r] = _mm256_setzero_ps();
      c1[r] = _mm256_setzero_ps();
    } else if (full) {
      c0[r] = _mm256_loadu_ps(c + r * ldc);
      c1[r] = _mm256_loadu_ps(c + r * ldc + 8);
    } else {
      c0[r] = _mm256_maskload_ps(c + r * ldc, m0);
      c1[r] = _mm256_maskload_ps(c + r * ldc + 8, m1);
    }
  }
  for (int64_t p = 0; p < k; ++p) {
    __m256 b0 = _mm256_loadu_ps(b + p * kSliver);
    __m256 b1 = _mm256_loadu_ps(b + p * kSliver + 8);
    // Keep B's row in registers: folded into each FMA it is loaded R times, and the loads, not the FMAs, bind.
    asm("" : "+x"(b0), "+x"(b1));
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r * a_rs + p * a_cs);
      c0[r] = _mm256_fmadd_ps(ar, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (full) {
      _mm256_storeu_ps(c + r * ldc, c0[r]);
      _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
    } else {
      _mm256_maskstore_ps(c + r * ldc, m0, c0[r]);
      _mm256_maskstore_ps(c + r * ldc + 8, m1, c1[r]);
    }
  }
}

template <int R>
void tile_row(int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t b_sliver,
              float* c, int64_t ldc, bool accumulate) {
  for (int64_t j = 0; j < n; j += kSliver) {
    tile_gemm<R>(std::min(kSliver, n - j), k, a, a_rs, a_cs, b + j / kSliver * b_sliver, c + j, ldc, accumulate);
  }
}
#endif

void head_gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
               int64_t b_sliver, float* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  int64_t i = 0;
#ifdef DPO_AVX2
  for (; i + kTileRows <= m; i += kTileRows) {
    tile_row<kTileRows>(n, k, a + i * a_rs, a_rs, a_cs, b, b_sliver, c + i * ldc, ldc, accumulate);
  }
  const float* a_tail = a + i * a_rs;
  float* c_tail = c + i * ldc;
  switch (m - i) {
    case 5: tile_row<5>(n, k, a_tail, a_rs, a_cs, b, b_sliver, c_tail, ldc, accumulate); break;
    case 4: tile_row<4>(n, k, a_tail, a_rs, a_cs, b, b_sliver, c_tail, ldc, accumulate); break;
    case 3: tile_row<3>(n, k, a_tail, a_rs, a_cs, b, b_sliver, c_tail, ldc, accumulate); break;
    case 2: tile_row<2>(n, k, a_tail, a_rs, a_cs, b, b_sliver, c_tail, ldc, accumulate); break;
    case 1: tile_row<1>(n, k, a_tail, a_rs, a_cs, b, b_sliver, c_tail, ldc, accumulate); break;
    default: break;
  }
  i = m;
#endif
  for (; i < m; ++i) {
    float* crow = c + i * ldc;
    if (!accumulate) std::fill(crow, crow + n, 0.0f);
    for (int64_t j = 0; j < n; j += kSliver) {
      const float* sliver = b + j / kSliver * b_sliver;
      const int64_t cols = std::min(kSliver, n - j);
      for (int64_t p = 0; p < k; ++p) row_axpy(crow + j, a[i * a_rs + p * a_cs], sliver + p * kSliver, cols);
    }
  }
}

// Query rows per block: with Tq = 128 the causal GEMMs do 9/16 of the full square (the lower triangle is 1/2). The
// tiles pack nothing per block, so small blocks cost little; 12, 24 and 32 measured no faster (dev/attention/ab.cc).
constexpr int64_t kQueryBlock = 16;
// Hidden columns between two runs of visible keys below this many are computed and masked rather than skipped:
// one more small GEMM costs more than a few masked columns.
constexpr int64_t kMinGap = 16;
// Score GEMMs start at the sliver holding a run's first key, writing up to 15 columns before it: those must lie in the
// gap after the previous run, which softmax_row and the backward then zero.
static_assert(kMinGap >= kSliver - 1, "a run's leading sliver columns must fall in the gap before it");

// One head's operands: base pointers into q/k/v-shaped arrays and their row strides.
struct Head {
  int64_t q_off, kv_off, p_off, q_ld, kv_ld;
};

Head head_at(int64_t bi, int64_t hi, int64_t tq, int64_t tk, int64_t h, int64_t kvh, int64_t d) {
  const int64_t kh = hi / (h / kvh);
  return {(bi * tq * h + hi) * d, (bi * tk * kvh + kh) * d, (bi * h + hi) * tq * tk, h * d, kvh * d};
}

// Keys a causal query block [i0, i1) can see: its last query sits at position Tk − Tq + i1 − 1.
int64_t causal_key_end(int64_t i1, int64_t tq, int64_t tk) { return std::clamp<int64_t>(tk - tq + i1, 0, tk); }

// A run [begin, end) of key columns that a query block computes.
struct Run {
  int64_t begin, end;
};
using Runs = std::vector<Run>;

// The runs of columns j with seen(j), gaps under kMinGap merged.
template <typename Seen>
Runs runs_where(int64_t tk, Seen seen) {
  Runs runs;
  for (int64_t j = 0; j < tk; ++j) {
    if (!seen(j)) continue;
    if (!runs.empty() && j - runs.back().end < kMinGap) {
      runs.back().end = j + 1;
    } else {
      runs.push_back({j, j + 1});
    }
  }
  return runs;
}

// Per (batch row, query block): the key runs its queries may see, from the mask, else the causal range.
std::vector<Runs> forward_runs(const uint8_t* mask, int64_t b, int64_t tq, int64_t tk) {
  const int64_t blocks = (tq + kQueryBlock - 1) / kQueryBlock;
  std::vector<Runs> runs(static_cast<size_t>(b * blocks));
  std::vector<uint8_t> any(static_cast<size_t>(tk));
  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t i0 = blk * kQueryBlock, i1 = std::min(tq, i0 + kQueryBlock);
      Runs& r = runs[static_cast<size_t>(bi * blocks + blk)];
      if (mask == nullptr) {
        const int64_t end = causal_key_end(i1, tq, tk);
        if (end > 0) r.push_back({0, end});
        continue;
      }
      std::fill(any.begin(), any.end(), 0);
      for (int64_t i = i0; i < i1; ++i) {
        const uint8_t* mrow = mask + (bi * tq + i) * tk;
        for (int64_t j = 0; j < tk; ++j) any[j] |= mrow[j];
      }
      r = runs_where(tk, [&](int64_t j) { return any[j] != 0; });
    }
  }
  return runs;
}

// One query row's masked stable softmax in place over its block's runs: raw scores in, probabilities out, 0 outside
// the runs (and everywhere when the row sees no key).
void softmax_row(float* prow, const uint8_t* mrow, int64_t causal_end, const Runs& row_runs, int64_t tk, float scale) {
  float max = -INFINITY;
  int64_t done = 0;  // columns before this are final
  for (const Run run : row_runs) {
    std::fill(prow + done, prow + run.begin, 0.0f);
    for (int64_t j = run.begin; j < run.end; ++j) {
      const bool seen = mrow != nullptr ? mrow[j] != 0 : j < causal_end;
      prow[j] = seen ? prow[j] * scale : -INFINITY;
      max = std::max(max, prow[j]);
    }
    done = run.end;
  }
  std::fill(prow + done, prow + tk, 0.0f);
  float sum = 0.0f;
  for (const Run run : row_runs) {  // exp(−inf − max) = 0 for hidden keys
    if (max == -INFINITY) {
      std::fill(prow + run.begin, prow + run.end, 0.0f);
    } else {
      sum += row_sum_exp(prow + run.begin, prow + run.begin, run.end - run.begin, max);
    }
  }
  if (sum > 0.0f) {
    for (const Run run : row_runs) row_scale(prow + run.begin, 1.0f / sum, run.end - run.begin);
  }
}

// Query blocks [blk0, blk1) of one head: S = Q·Kᵀ on each block's runs, masked stable softmax in place, out = P·V.
void attention_forward_blocks(int64_t bi, int64_t hi, int64_t blk0, int64_t blk1, float* out, float* probs,
                              const float* q, const float* k, const float* v, const uint8_t* mask,
                              const std::vector<Runs>& runs, int64_t tq, int64_t tk, int64_t h, int64_t kvh, int64_t d,
                              float scale) {
  const Head hd = head_at(bi, hi, tq, tk, h, kvh, d);
  const Runs* head_runs = runs.data() + bi * ((tq + kQueryBlock - 1) / kQueryBlock);
  int64_t kend = 0;  // keys [0, kend) hold every run of these blocks
  for (int64_t blk = blk0; blk < blk1; ++blk) {
    if (!head_runs[blk].empty()) kend = std::max(kend, head_runs[blk].back().end);
  }
  thread_local std::vector<float> kt, vp;  // this head's Kᵀ (D, kend) and V (kend, D), packed in slivers
  kt.resize(static_cast<size_t>(sliver_floats(d, kend)));
  vp.resize(static_cast<size_t>(sliver_floats(kend, d)));
  pack_slivers(kt.data(), k + hd.kv_off, d, kend, 1, hd.kv_ld);
  pack_slivers(vp.data(), v + hd.kv_off, kend, d, hd.kv_ld, 1);
  for (int64_t blk = blk0; blk < blk1; ++blk) {
    const int64_t i0 = blk * kQueryBlock, i1 = std::min(tq, i0 + kQueryBlock), rows = i1 - i0;
    const Runs& blk_runs = head_runs[blk];
    float* pblk = probs + hd.p_off + i0 * tk;  // (rows, Tk); columns outside the runs are written by softmax_row
    const float* qblk = q + hd.q_off + i0 * hd.q_ld;
    for (const Run run : blk_runs) {  // from the sliver holding run.begin: the columns before it are in a gap
      const int64_t j0 = run.begin / kSliver * kSliver;
      head_gemm(rows, run.end - j0, d, qblk, hd.q_ld, 1, kt.data() + j0 * d, d * kSliver, pblk + j0, tk, false);
    }
    for (int64_t i = i0; i < i1; ++i) {
      softmax_row(probs + hd.p_off + i * tk, mask != nullptr ? mask + (bi * tq + i) * tk : nullptr,
                  causal_key_end(i + 1, tq, tk), blk_runs, tk, scale);
    }
    float* oblk = out + hd.q_off + i0 * hd.q_ld;
    if (blk_runs.empty()) {
      for (int64_t i = 0; i < rows; ++i) std::fill(oblk + i * hd.q_ld, oblk + i * hd.q_ld + d, 0.0f);
    }
    for (size_t r = 0; r < blk_runs.size(); ++r) {
      const Run run = blk_runs[r];
      head_gemm(rows, d, run.end - run.begin, pblk + run.begin, tk, 1, vp.data() + run.begin * kSliver, kend * kSliver,
                oblk, hd.q_ld, r > 0);
    }
  }
}

// Runs fn(bi, hi) for every head: groups (bi, KV head) in parallel when there are enough of them, else serially.
template <typename Fn>
void for_each_head(int64_t b, int64_t h, int64_t kvh, Fn fn) {
  const int64_t group = h / kvh, groups = b * kvh;
  if (groups >= num_threads() && num_threads() > 1) {
    parallel_for(groups, [&](int64_t begin, int64_t end) {
      for (int64_t g = begin; g < end; ++g) {
        for (int64_t j = 0; j < group; ++j) fn(g / kvh, (g % kvh) * group + j);
      }
    });
  } else {
    for (int64_t bh = 0; bh < b * h; ++bh) fn(bh / h, bh % h);
  }
}

}  // namespace

void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v, const uint8_t* mask,
                       int64_t b, int64_t tq, int64_t tk, int64_t h, int64_t kvh, int64_t d, float scale) {
  if (b * h * tq == 0) return;
  const std::vector<Runs> runs = forward_runs(mask, b, tq, tk);
  const int64_t blocks = (tq + kQueryBlock - 1) / kQueryBlock;
  for_each_head(b, h, kvh, [&](int64_t bi, int64_t hi) {  // inside a group's task, parallel_rows runs inline
    parallel_rows(blocks, kQueryBlock * tk * d, [&](int64_t blk0, int64_t blk1) {
      attention_forward_blocks(bi, hi, blk0, blk1, out, probs, q, k, v, mask, runs, tq, tk, h, kvh, d, scale);
    });
  });
}

// Per head: dP = dO·Vᵀ; dS = P ⊙ (dP − Σ_j P⊙dP)·scale; dQ = dS·K; dK += dSᵀ·Q; dV += Pᵀ·dO.
// The backward is not told the forward's mask, so each query block's key runs are found from probs (the columns
// where some row of the block is non-zero): elsewhere P = 0, so dS = 0 and Pᵀ·dO = 0, and skipping them is exact.
// With fewer groups than threads the heads run serially on one thread (dK, dV are shared by a group's heads).
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* probs, int64_t b, int64_t tq, int64_t tk, int64_t h, int64_t kvh,
                        int64_t d, float scale) {
  std::fill(dq, dq + b * tq * h * d, 0.0f);
  std::fill(dk, dk + b * tk * kvh * d, 0.0f);
  std::fill(dv, dv + b * tk * kvh * d, 0.0f);
  if (b * h * tq * tk == 0 || d == 0) return;
  const int64_t blocks = (tq + kQueryBlock - 1) / kQueryBlock;
  for_each_head(b, h, kvh, [&](int64_t bi, int64_t hi) {
    thread_local std::vector<float> ds;  // one head's dP, then dS, (Tq, Tk)
    thread_local std::vector<float> vt, kp, qp, dop;  // this head's Vᵀ (D, kend), K (kend, D), Q, dO (Tq, D), packed
    ds.resize(static_cast<size_t>(tq * tk));
    std::vector<Runs> runs(static_cast<size_t>(blocks));
    std::vector<float> mass(static_cast<size_t>(tk));  // Σ over a block's rows of P ≥ 0: non-zero iff some P is
    const Head hd = head_at(bi, hi, tq, tk, h, kvh, d);
    const float* p = probs + hd.p_off;
    int64_t kend = 0;  // keys [0, kend) hold every run
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t i0 = blk * kQueryBlock, rows = std::min(tq, i0 + kQueryBlock) - i0;
      std::fill(mass.begin(), mass.end(), 0.0f);
      for (int64_t i = i0; i < i0 + rows; ++i) {
        for (int64_t j = 0; j < tk; ++j) mass[j] += p[i * tk + j];
      }
      runs[blk] = runs_where(tk, [&](int64_t j) { return mass[j] != 0.0f; });
      if (!runs[blk].empty()) kend = std::max(kend, runs[blk].back().end);
    }
    // Per key: the first and last query block whose runs hold it (dK, dV rows sum over the rows in between).
    std::vector<int64_t> first_blk(static_cast<size_t>(kend), blocks), last_blk(static_cast<size_t>(kend), -1);
    for (int64_t blk = 0; blk < blocks; ++blk) {
      for (const Run run : runs[blk]) {
        for (int64_t j = run.begin; j < run.end; ++j) {
          first_blk[j] = std::min(first_blk[j], blk);
          last_blk[j] = blk;
        }
      }
    }
    vt.resize(static_cast<size_t>(sliver_floats(d, kend)));
    kp.resize(static_cast<size_t>(sliver_floats(kend, d)));
    qp.resize(static_cast<size_t>(sliver_floats(tq, d)));
    dop.resize(static_cast<size_t>(sliver_floats(tq, d)));
    pack_slivers(vt.data(), v + hd.kv_off, d, kend, 1, hd.kv_ld);
    pack_slivers(kp.data(), k + hd.kv_off, kend, d, hd.kv_ld, 1);
    pack_slivers(qp.data(), q + hd.q_off, tq, d, hd.q_ld, 1);
    pack_slivers(dop.data(), dout + hd.q_off, tq, d, hd.q_ld, 1);
    for (int64_t blk = 0; blk < blocks; ++blk) {  // dS (rows, kend) and dQ; dS = 0 outside the block's runs
      const int64_t i0 = blk * kQueryBlock, rows = std::min(tq, i0 + kQueryBlock) - i0;
      float* ds_blk = ds.data() + i0 * tk;  // (rows, Tk)
      const float* p_blk = p + i0 * tk;
      const float* dout_blk = dout + hd.q_off + i0 * hd.q_ld;
      for (const Run run : runs[blk]) {  // from the sliver holding run.begin: the columns before it are in a gap
        const int64_t j0 = run.begin / kSliver * kSliver;
        head_gemm(rows, run.end - j0, d, dout_blk, hd.q_ld, 1, vt.data() + j0 * d, d * kSliver, ds_blk + j0, tk, false);
      }
      for (int64_t i = 0; i < rows; ++i) {
        float* row = ds_blk + i * tk;
        const float* prow = p_blk + i * tk;
        float dot = 0.0f;
        for (const Run run : runs[blk]) dot += row_dot(prow + run.begin, row + run.begin, run.end - run.begin);
        int64_t done = 0;
        for (const Run run : runs[blk]) {
          std::fill(row + done, row + run.begin, 0.0f);
          for (int64_t j = run.begin; j < run.end; ++j) row[j] = prow[j] * (row[j] - dot) * scale;
          done = run.end;
        }
        std::fill(row + done, row + kend, 0.0f);
      }
      for (const Run run : runs[blk]) {
        head_gemm(rows, d, run.end - run.begin, ds_blk + run.begin, tk, 1, kp.data() + run.begin * kSliver,
                  kend * kSliver, dq + hd.q_off + i0 * hd.q_ld, hd.q_ld, true);
      }
    }
    // dK += dSᵀ·Q and dV += Pᵀ·dO by tiles of keys, each over the query rows from the first to the last block
    // that sees it (P and dS are 0 in blocks between that do not).
    constexpr int64_t kKeyTile = kTileRows;
    for (int64_t j0 = 0; j0 < kend; j0 += kKeyTile) {
      const int64_t j1 = std::min(kend, j0 + kKeyTile);
      int64_t b0 = blocks, b1 = -1;
      for (int64_t j = j0; j < j1; ++j) {
        b0 = std::min(b0, first_blk[j]);
        b1 = std::max(b1, last_blk[j]);
      }
      if (b1 < 0) continue;
      const int64_t i0 = b0 * kQueryBlock, i1 = std::min(tq, (b1 + 1) * kQueryBlock);
      head_gemm(j1 - j0, d, i1 - i0, ds.data() + i0 * tk + j0, 1, tk, qp.data() + i0 * kSliver, tq * kSliver,
                dk + hd.kv_off + j0 * hd.kv_ld, hd.kv_ld, true);
      head_gemm(j1 - j0, d, i1 - i0, p + i0 * tk + j0, 1, tk, dop.data() + i0 * kSliver, tq * kSliver,
                dv + hd.kv_off + j0 * hd.kv_ld, hd.kv_ld, true);
    }
  });
}

}  // namespace dpo
