// The fused log-prob head: per-token log p(target) = logits[t] − logΣexp(logits) without materialising the
// (N, V) log-softmax, and its backward, which writes dlogits directly. The forward reads each row from memory once:
// it walks the row in L1-sized blocks keeping a running (max, Σexp) pair, rescaling the sum when the max grows.
// Legend: N rows (tokens), V vocabulary; logits (N, V); targets (N), negative = ignored; lse (N) saved.
#include <cmath>

#include "kernels.h"
#include "kernels_common.h"

namespace dpo {

constexpr int64_t kLseBlock = 2048;  // floats per block: 8 KiB, read from memory once and re-read from L1

// logΣexp over a row, stable; a non-finite max is returned as is (as the reference does).
static float row_logsumexp(const float* x, int64_t v) {
  float max = -INFINITY, sum = 0.0f;
  for (int64_t j0 = 0; j0 < v; j0 += kLseBlock) {
    const int64_t len = v - j0 < kLseBlock ? v - j0 : kLseBlock;
    const float block_max = row_max(x + j0, len);
    if (block_max > max) {
      sum *= std::exp(max - block_max);  // max = −inf the first time: exp(−inf) = 0 and sum is 0 anyway
      max = block_max;
    }
    if (std::isfinite(max)) sum += row_sum_exp(nullptr, x + j0, len, max);
  }
  return std::isfinite(max) ? max + std::log(sum) : max;
}

void logsoftmax_gather_forward(float* out, float* lse, const float* logits, const int32_t* targets, int64_t n,
                               int64_t v) {
  parallel_rows(n, v, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (targets[i] < 0) {
        out[i] = 0.0f;
        lse[i] = 0.0f;
        continue;
      }
      const float* row = logits + i * v;
      const float l = row_logsumexp(row, v);
      lse[i] = l;
      out[i] = row[targets[i]] - l;
    }
  });
}

// dlogits[i, j] = dout[i]·(1[j = t_i] − exp(logits[i, j] − lse[i])); ignored rows are zero.
void logsoftmax_gather_backward(float* dlogits, const float* dout, const float* logits, const float* lse,
                                const int32_t* targets, int64_t n, int64_t v) {
  parallel_rows(n, v, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float* drow = dlogits + i * v;
      const float* row = logits + i * v;
      if (targets[i] < 0) {
        for (int64_t j = 0; j < v; ++j) drow[j] = 0.0f;
        continue;
      }
      const float g = dout[i], l = lse[i];
      int64_t j = 0;
#ifdef DPO_AVX2
      const __m256 neg_g = _mm256_set1_ps(-g), lv = _mm256_set1_ps(l);
      for (; j + 8 <= v; j += 8) {
        _mm256_storeu_ps(drow + j, _mm256_mul_ps(neg_g, exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), lv))));
      }
#endif
      for (; j < v; ++j) drow[j] = -g * std::exp(row[j] - l);
      drow[targets[i]] += g;
    }
  });
}

}  // namespace dpo
