// Reductions over the middle axis of x viewed as (outer, n, inner): reduceSum and reduceMax (with first argmax).
// inner = 1 reduces contiguous rows; otherwise whole rows of `inner` floats are combined, split into column blocks so
// that a reduction with outer = 1 (a bias gradient) still spreads across threads.
// Legend: outer, n (reduced), inner; out (outer, inner).
#include <algorithm>
#include <limits>

#include "kernels.h"
#include "kernels_common.h"

namespace dpo {

constexpr int64_t kColumnBlock = 256;  // inner columns per task: 1 KiB of outputs, stays in L1 across the n rows

// Runs fn(o, i0, i1) over every (outer row, column block) pair, in parallel when big enough.
template <class Fn>
static void for_each_block(int64_t outer, int64_t n, int64_t inner, Fn fn) {
  const int64_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
  parallel_rows(outer * blocks, n * std::min(inner, kColumnBlock), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t o = t / blocks, blk = t % blocks;
      fn(o, blk * kColumnBlock, std::min(inner, (blk + 1) * kColumnBlock));
    }
  });
}

void reduce_sum(float* out, const float* x, int64_t outer, int64_t n, int64_t inner) {
  if (inner == 1) {
    parallel_rows(outer, n, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) out[o] = row_sum(x + o * n, n);
    });
    return;
  }
  for_each_block(outer, n, inner, [&](int64_t o, int64_t i0, int64_t i1) {
    float* dst = out + o * inner;
    std::fill(dst + i0, dst + i1, 0.0f);
    for (int64_t j = 0; j < n; ++j) {
      const float* src = x + (o * n + j) * inner;
      for (int64_t i = i0; i < i1; ++i) dst[i] += src[i];
    }
  });
}

// The reference's rule: a larger value, or the first NaN, replaces the current best.
static inline bool beats(float v, float best) { return v > best || (v != v && best == best); }

void reduce_max(float* out, int32_t* argmax, const float* x, int64_t outer, int64_t n, int64_t inner) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  if (inner == 1) {
    parallel_rows(outer, n, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) {
        const float* row = x + o * n;
        float best = kNegInf;
        int32_t at = 0;
        for (int64_t j = 0; j < n; ++j) {
          if (beats(row[j], best)) {
            best = row[j];
            at = static_cast<int32_t>(j);
          }
        }
        out[o] = best;
        argmax[o] = at;
      }
    });
    return;
  }
  for_each_block(outer, n, inner, [&](int64_t o, int64_t i0, int64_t i1) {
    float* best = out + o * inner;
    int32_t* at = argmax + o * inner;
    std::fill(best + i0, best + i1, kNegInf);
    std::fill(at + i0, at + i1, 0);
    for (int64_t j = 0; j < n; ++j) {
      const float* src = x + (o * n + j) * inner;
      for (int64_t i = i0; i < i1; ++i) {
        if (beats(src[i], best[i])) {
          best[i] = src[i];
          at[i] = static_cast<int32_t>(j);
        }
      }
    }
  });
}

}  // namespace dpo
