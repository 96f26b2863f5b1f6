// Fused scaled dot-product attention with grouped-query heads (query head h reads key/value head h / group), forward
// and backward, as per-head GEMMs on dpo::sgemm plus row passes. With at least as many (batch, KV head) groups as
// threads, the groups run in parallel and each GEMM runs serially inside its task (the pool does not nest; a group
// owns its dK/dV rows, so no two tasks write the same memory); otherwise heads run one after another with threaded
// GEMMs. Causal queries go in blocks whose GEMMs see only the keys the block can see.
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

}  // namespace

namespace {

// One head of the forward: S = Q·Kᵀ, masked stable softmax in place, out = P·V.
void attention_forward_head(int64_t bi, int64_t hi, float* out, float* probs, const float* q, const float* k,
                            const float* v, const uint8_t* mask, int64_t tq, int64_t tk, int64_t h, int64_t kvh,
                            int64_t d, float scale) {
  const Head hd = head_at(bi, hi, tq, tk, h, kvh, d);
  auto key_end = [&](int64_t i1) { return mask != nullptr ? tk : causal_key_end(i1, tq, tk); };
  for (int64_t i0 = 0; i0 < tq; i0 += kQueryBlock) {  // raw scores; keys past a block's end stay unwritten
    const int64_t i1 = std::min(tq, i0 + kQueryBlock);
    sgemm(false, true, i1 - i0, key_end(i1), d, q + hd.q_off + i0 * hd.q_ld, hd.q_ld, k + hd.kv_off, hd.kv_ld,
          probs + hd.p_off + i0 * tk, tk, false);
  }
  parallel_rows(tq, tk * 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float* prow = probs + hd.p_off + i * tk;
      const uint8_t* mrow = mask != nullptr ? mask + (bi * tq + i) * tk : nullptr;
      const int64_t jend = key_end(i + 1);
      float max = -INFINITY;
      for (int64_t j = 0; j < jend; ++j) {
        prow[j] = (mrow != nullptr && mrow[j] == 0) ? -INFINITY : prow[j] * scale;
        max = std::max(max, prow[j]);
      }
      std::fill(prow + jend, prow + tk, 0.0f);
      if (max == -INFINITY) {  // sees no key: zero probabilities, hence zero output
        std::fill(prow, prow + jend, 0.0f);
        continue;
      }
      row_scale(prow, 1.0f / row_sum_exp(prow, prow, jend, max), jend);  // exp(−inf − max) = 0 for hidden keys
    }
  });
  for (int64_t i0 = 0; i0 < tq; i0 += kQueryBlock) {
    const int64_t i1 = std::min(tq, i0 + kQueryBlock);
    sgemm(false, false, i1 - i0, d, key_end(i1), probs + hd.p_off + i0 * tk, tk, v + hd.kv_off, hd.kv_ld,
          out + hd.q_off + i0 * hd.q_ld, hd.q_ld, false);
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
  for_each_head(b, h, kvh, [&](int64_t bi, int64_t hi) {
    attention_forward_head(bi, hi, out, probs, q, k, v, mask, tq, tk, h, kvh, d, scale);
  });
}

// Per head: dP = dO·Vᵀ; dS = P ⊙ (dP − Σ_j P⊙dP)·scale; dQ = dS·K; dK += dSᵀ·Q; dV += Pᵀ·dO.
// The backward is not told whether the forward was causal, so each query block's key range is found from probs
// (the last non-zero column of its rows): hidden keys have P = 0 and contribute nothing.
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
    std::vector<int64_t> key_end(static_cast<size_t>(blocks));
    const Head hd = head_at(bi, hi, tq, tk, h, kvh, d);
    const float* p = probs + hd.p_off;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      int64_t jend = 0;
      for (int64_t i = blk * kQueryBlock; i < std::min(tq, (blk + 1) * kQueryBlock); ++i) {
        for (int64_t j = tk; j > jend; --j) {
          if (p[i * tk + j - 1] != 0.0f) {
            jend = j;
            break;
          }
        }
      }
      key_end[blk] = jend;
      const int64_t i0 = blk * kQueryBlock, rows = std::min(tq, i0 + kQueryBlock) - i0;
      sgemm(false, true, rows, jend, d, dout + hd.q_off + i0 * hd.q_ld, hd.q_ld, v + hd.kv_off, hd.kv_ld,
            ds.data() + i0 * tk, tk, false);
    }
    parallel_rows(tq, tk * 3, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t jend = key_end[i / kQueryBlock];
        float* row = ds.data() + i * tk;
        const float* prow = p + i * tk;
        const float dot = row_dot(prow, row, jend);
        for (int64_t j = 0; j < jend; ++j) row[j] = prow[j] * (row[j] - dot) * scale;
      }
    });
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t i0 = blk * kQueryBlock, rows = std::min(tq, i0 + kQueryBlock) - i0, jend = key_end[blk];
      const float* ds_blk = ds.data() + i0 * tk;
      sgemm(false, false, rows, d, jend, ds_blk, tk, k + hd.kv_off, hd.kv_ld, dq + hd.q_off + i0 * hd.q_ld, hd.q_ld,
            false);
      sgemm(true, false, jend, d, rows, ds_blk, tk, q + hd.q_off + i0 * hd.q_ld, hd.q_ld, dk + hd.kv_off, hd.kv_ld,
            true);
      sgemm(true, false, jend, d, rows, p + i0 * tk, tk, dout + hd.q_off + i0 * hd.q_ld, hd.q_ld, dv + hd.kv_off,
            hd.kv_ld, true);
    }
  });
}

}  // namespace dpo
