// LayerNorm and RMSNorm over the last dim, forward and backward (llm.c's formulation). Forward saves per-row
// statistics (mean, rstd); backward overwrites dx and accumulates dweight/dbias. Rows split across threads; for the
// parameter gradients each task sums its rows into private scratch, added to dweight/dbias at the end.
// Legend: rows × cols (C); weight, bias (C) or null; mean, rstd (rows); xhat = (x − mean)·rstd.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "kernels_common.h"

namespace dpo {
namespace {

// Σ (x[j] − mean)²: the two-pass variance, as the reference computes it.
float sum_sq_dev(const float* x, int64_t n, float mean) {
  int64_t j = 0;
  float s = 0.0f;
#ifdef DPO_AVX2
  const __m256 mv = _mm256_set1_ps(mean);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (; j + 16 <= n; j += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + j), mv);
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + j + 8), mv);
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    acc1 = _mm256_fmadd_ps(d1, d1, acc1);
  }
  s = hsum8(_mm256_add_ps(acc0, acc1));
#endif
  for (; j < n; ++j) s += (x[j] - mean) * (x[j] - mean);
  return s;
}

// Runs row_fn(r, dweight_partial, dbias_partial) for every row, each task with its own zeroed scratch of 2·cols
// floats, then adds the partials into dweight and dbias (either may be null).
template <class RowFn>
void rows_with_param_grads(int64_t rows, int64_t cols, float* dweight, float* dbias, RowFn row_fn) {
  const bool parallel = rows > 1 && rows * cols >= kParallelMinWork;
  const int tasks = parallel ? static_cast<int>(std::min<int64_t>(num_threads(), rows)) : 1;
  std::vector<float> scratch(static_cast<size_t>(tasks) * 2 * static_cast<size_t>(cols), 0.0f);
  parallel_tasks(tasks, [&](int t, int nt) {
    float* pw = scratch.data() + static_cast<size_t>(t) * 2 * cols;
    for (int64_t r = rows * t / nt; r < rows * (t + 1) / nt; ++r) row_fn(r, pw, pw + cols);
  });
  for (int t = 0; t < tasks; ++t) {
    const float* pw = scratch.data() + static_cast<size_t>(t) * 2 * cols;
    if (dweight != nullptr) for (int64_t j = 0; j < cols; ++j) dweight[j] += pw[j];
    if (dbias != nullptr) for (int64_t j = 0; j < cols; ++j) dbias[j] += pw[cols + j];
  }
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* weight, const float* bias,
                       int64_t rows, int64_t cols, float eps) {
  parallel_rows(rows, cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * cols;
      float* yr = out + r * cols;
      const float mu = row_sum(xr, cols) / static_cast<float>(cols);
      const float rs = 1.0f / std::sqrt(sum_sq_dev(xr, cols, mu) / static_cast<float>(cols) + eps);
      for (int64_t j = 0; j < cols; ++j) {
        float y = (xr[j] - mu) * rs;
        if (weight != nullptr) y *= weight[j];
        if (bias != nullptr) y += bias[j];
        yr[j] = y;
      }
      mean[r] = mu;
      rstd[r] = rs;
    }
  });
}

// dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat)) with dxhat = dy·weight;
// dweight += dy·xhat, dbias += dy.
void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x, const float* weight,
                        const float* mean, const float* rstd, int64_t rows, int64_t cols) {
  rows_with_param_grads(rows, cols, dweight, dbias, [&](int64_t r, float* pw, float* pb) {
    const int64_t o = r * cols;
    const float mu = mean[r], rs = rstd[r];
    float sum_dxhat = 0.0f, sum_dxhat_xhat = 0.0f;
    for (int64_t j = 0; j < cols; ++j) {
      const float xhat = (x[o + j] - mu) * rs;
      const float dxhat = weight != nullptr ? dy[o + j] * weight[j] : dy[o + j];
      sum_dxhat += dxhat;
      sum_dxhat_xhat += dxhat * xhat;
      pw[j] += dy[o + j] * xhat;
      pb[j] += dy[o + j];
    }
    const float mean_dxhat = sum_dxhat / static_cast<float>(cols);
    const float mean_dxhat_xhat = sum_dxhat_xhat / static_cast<float>(cols);
    for (int64_t j = 0; j < cols; ++j) {
      const float xhat = (x[o + j] - mu) * rs;
      const float dxhat = weight != nullptr ? dy[o + j] * weight[j] : dy[o + j];
      dx[o + j] = rs * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
    }
  });
}

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int64_t rows, int64_t cols,
                     float eps) {
  parallel_rows(rows, cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * cols;
      float* yr = out + r * cols;
      const float rs = 1.0f / std::sqrt(row_dot(xr, xr, cols) / static_cast<float>(cols) + eps);
      if (weight != nullptr) {
        for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] * rs * weight[j];
      } else {
        for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] * rs;
      }
      rstd[r] = rs;
    }
  });
}

// y = x·rs·w with rs = (mean(x²) + eps)^(−1/2): dx = rs·dxhat − x·rs³·mean(dxhat·x), dxhat = dy·w;
// dweight += dy·x·rs.
void rmsnorm_backward(float* dx, float* dweight, const float* dy, const float* x, const float* weight,
                      const float* rstd, int64_t rows, int64_t cols) {
  rows_with_param_grads(rows, cols, dweight, nullptr, [&](int64_t r, float* pw, float*) {
    const int64_t o = r * cols;
    const float rs = rstd[r];
    float sum_dxhat_x = 0.0f;
    for (int64_t j = 0; j < cols; ++j) {
      const float dxhat = weight != nullptr ? dy[o + j] * weight[j] : dy[o + j];
      sum_dxhat_x += dxhat * x[o + j];
      pw[j] += dy[o + j] * x[o + j] * rs;
    }
    const float k = rs * rs * rs * sum_dxhat_x / static_cast<float>(cols);
    for (int64_t j = 0; j < cols; ++j) {
      const float dxhat = weight != nullptr ? dy[o + j] * weight[j] : dy[o + j];
      dx[o + j] = rs * dxhat - x[o + j] * k;
    }
  });
}

}  // namespace dpo
