// Fused scaled dot-product attention with grouped-query heads (query head h reads key/value head h / group), forward
// and backward, as per-head GEMMs on dpo::sgemm plus row passes. With at least as many (batch, KV head) groups as
// threads, the groups run in parallel and each GEMM runs serially inside its task (the pool does not nest; a group
// owns its dK/dV rows, so no two tasks write the same memory); otherwise heads run one after another with threaded
// GEMMs. Queries go in blocks whose GEMMs see only the key runs the block can see: the causal range, or, with a mask
// (padding, packed sequences, a prompt shared by two completions), the columns some query of the block sees.
// Legend: B batch, Tq queries, Tk keys, H query heads, KVH key/value heads, D head size, group = H / KVH;
// q, out (B, Tq, H, D); k, v (B, Tk, KVH, D); probs (B, H, Tq, Tk); a head's rows are strided by H·D or KVH·D.
#include <algorithm>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "kernels_common.h"

namespace dpo {
namespace {

// Query rows per block: with Tq = 512 the causal GEMMs do 5/8 of the full square (the lower triangle is 1/2).
constexpr int64_t kQueryBlock = 128;
// Hidden columns between two runs of visible keys below this many are computed and masked rather than skipped:
// one more small GEMM costs more than a few masked columns.
constexpr int64_t kMinGap = 16;

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

// out (rows, D) of one head's query block [= or +=] P[:, run] · V[run] over the runs; zero when there are none.
void probs_times_values(const Runs& runs, int64_t rows, int64_t d, const float* p, int64_t tk, const float* v,
                        int64_t kv_ld, float* out, int64_t q_ld) {
  if (runs.empty()) {
    for (int64_t i = 0; i < rows; ++i) std::fill(out + i * q_ld, out + i * q_ld + d, 0.0f);
    return;
  }
  for (size_t r = 0; r < runs.size(); ++r) {
    const Run run = runs[r];
    sgemm(false, false, rows, d, run.end - run.begin, p + run.begin, tk, v + run.begin * kv_ld, kv_ld, out, q_ld, r > 0);
  }
}

// One head of the forward: S = Q·Kᵀ on each block's runs, masked stable softmax in place, out = P·V. Probabilities
// outside the runs are 0.
void attention_forward_head(int64_t bi, int64_t hi, float* out, float* probs, const float* q, const float* k,
                            const float* v, const uint8_t* mask, const std::vector<Runs>& runs, int64_t tq, int64_t tk,
                            int64_t h, int64_t kvh, int64_t d, float scale) {
  const Head hd = head_at(bi, hi, tq, tk, h, kvh, d);
  const int64_t blocks = (tq + kQueryBlock - 1) / kQueryBlock;
  const Runs* head_runs = runs.data() + bi * blocks;
  for (int64_t blk = 0; blk < blocks; ++blk) {  // raw scores; columns outside the runs stay unwritten
    const int64_t i0 = blk * kQueryBlock, i1 = std::min(tq, i0 + kQueryBlock);
    for (const Run run : head_runs[blk]) {
      sgemm(false, true, i1 - i0, run.end - run.begin, d, q + hd.q_off + i0 * hd.q_ld, hd.q_ld,
            k + hd.kv_off + run.begin * hd.kv_ld, hd.kv_ld, probs + hd.p_off + i0 * tk + run.begin, tk, false);
    }
  }
  parallel_rows(tq, tk * 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float* prow = probs + hd.p_off + i * tk;
      const uint8_t* mrow = mask != nullptr ? mask + (bi * tq + i) * tk : nullptr;
      const int64_t causal_end = causal_key_end(i + 1, tq, tk);
      const Runs& row_runs = head_runs[i / kQueryBlock];
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
      for (const Run run : row_runs) {  // exp(−inf − max) = 0 for hidden keys; all 0 when the row sees no key
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
  });
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t i0 = blk * kQueryBlock, i1 = std::min(tq, i0 + kQueryBlock);
    probs_times_values(head_runs[blk], i1 - i0, d, probs + hd.p_off + i0 * tk, tk, v + hd.kv_off, hd.kv_ld,
                       out + hd.q_off + i0 * hd.q_ld, hd.q_ld);
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
  for_each_head(b, h, kvh, [&](int64_t bi, int64_t hi) {
    attention_forward_head(bi, hi, out, probs, q, k, v, mask, runs, tq, tk, h, kvh, d, scale);
  });
}

// Per head: dP = dO·Vᵀ; dS = P ⊙ (dP − Σ_j P⊙dP)·scale; dQ = dS·K; dK += dSᵀ·Q; dV += Pᵀ·dO.
// The backward is not told the forward's mask, so each query block's key runs are found from probs (the columns
// where some row of the block is non-zero): elsewhere P = 0, so dS = 0 and Pᵀ·dO = 0, and skipping them is exact.
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
    ds.resize(static_cast<size_t>(tq * tk));
    std::vector<Runs> runs(static_cast<size_t>(blocks));
    std::vector<uint8_t> any(static_cast<size_t>(tk));
    const Head hd = head_at(bi, hi, tq, tk, h, kvh, d);
    const float* p = probs + hd.p_off;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t i0 = blk * kQueryBlock, rows = std::min(tq, i0 + kQueryBlock) - i0;
      std::fill(any.begin(), any.end(), 0);
      for (int64_t i = i0; i < i0 + rows; ++i) {
        for (int64_t j = 0; j < tk; ++j) any[j] |= p[i * tk + j] != 0.0f;
      }
      runs[blk] = runs_where(tk, [&](int64_t j) { return any[j] != 0; });
      for (const Run run : runs[blk]) {
        sgemm(false, true, rows, run.end - run.begin, d, dout + hd.q_off + i0 * hd.q_ld, hd.q_ld,
              v + hd.kv_off + run.begin * hd.kv_ld, hd.kv_ld, ds.data() + i0 * tk + run.begin, tk, false);
      }
    }
    parallel_rows(tq, tk * 3, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* row = ds.data() + i * tk;
        const float* prow = p + i * tk;
        float dot = 0.0f;
        for (const Run run : runs[i / kQueryBlock]) dot += row_dot(prow + run.begin, row + run.begin, run.end - run.begin);
        for (const Run run : runs[i / kQueryBlock]) {
          for (int64_t j = run.begin; j < run.end; ++j) row[j] = prow[j] * (row[j] - dot) * scale;
        }
      }
    });
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t i0 = blk * kQueryBlock, rows = std::min(tq, i0 + kQueryBlock) - i0;
      const float* ds_blk = ds.data() + i0 * tk;
      for (const Run run : runs[blk]) {
        const int64_t n = run.end - run.begin;
        sgemm(false, false, rows, d, n, ds_blk + run.begin, tk, k + hd.kv_off + run.begin * hd.kv_ld, hd.kv_ld,
              dq + hd.q_off + i0 * hd.q_ld, hd.q_ld, true);
        sgemm(true, false, n, d, rows, ds_blk + run.begin, tk, q + hd.q_off + i0 * hd.q_ld, hd.q_ld,
              dk + hd.kv_off + run.begin * hd.kv_ld, hd.kv_ld, true);
        sgemm(true, false, n, d, rows, p + i0 * tk + run.begin, tk, dout + hd.q_off + i0 * hd.q_ld, hd.q_ld,
              dv + hd.kv_off + run.begin * hd.kv_ld, hd.kv_ld, true);
      }
    }
  });
}

}  // namespace dpo
