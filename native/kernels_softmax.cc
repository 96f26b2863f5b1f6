// Row-wise softmax and log-softmax, forward and backward. Stable forms: softmax subtracts the row max before exp;
// log-softmax uses lse = max + log Σ exp(x − max) (a non-finite max is the lse itself, as in the reference).
// Rows are independent and split across threads.
// Legend: rows × cols, row-major; y the forward output.
#include <cmath>

#include "kernels.h"
#include "kernels_common.h"

namespace dpo {

void softmax_forward(float* out, const float* x, int64_t rows, int64_t cols) {
  parallel_rows(rows, cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * cols;
      float* yr = out + r * cols;
      const float sum = row_sum_exp(yr, xr, cols, row_max(xr, cols));
      row_scale(yr, 1.0f / sum, cols);
    }
  });
}

// dx = y ⊙ (dy − Σ dy⊙y)
void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols) {
  parallel_rows(rows, cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r * cols;
      const float dot = row_dot(dy + o, y + o, cols);
      for (int64_t j = 0; j < cols; ++j) dx[o + j] = y[o + j] * (dy[o + j] - dot);
    }
  });
}

void logsoftmax_forward(float* out, const float* x, int64_t rows, int64_t cols) {
  parallel_rows(rows, cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * cols;
      const float max = row_max(xr, cols);
      const float lse = std::isfinite(max) ? max + std::log(row_sum_exp(nullptr, xr, cols, max)) : max;
      for (int64_t j = 0; j < cols; ++j) out[r * cols + j] = xr[j] - lse;
    }
  });
}

// dx = dy − exp(y)·Σ dy
void logsoftmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols) {
  parallel_rows(rows, cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r * cols;
      const float sum = row_sum(dy + o, cols);
      int64_t j = 0;
#ifdef DPO_AVX2
      const __m256 s = _mm256_set1_ps(sum);
      for (; j + 8 <= cols; j += 8) {
        const __m256 e = exp8(_mm256_loadu_ps(y + o + j));
        _mm256_storeu_ps(dx + o + j, _mm256_fnmadd_ps(e, s, _mm256_loadu_ps(dy + o + j)));
      }
#endif
      for (; j < cols; ++j) dx[o + j] = dy[o + j] - std::exp(y[o + j]) * sum;
    }
  });
}

}  // namespace dpo
