// Helpers shared by the kernels_*.cc files (internal, not part of the kernel API): when to go parallel, AVX2
// vector math (exp, tanh, sigmoid) with scalar twins, and row primitives (max, sum, dot, axpy, Σexp).
// Every AVX2 path has a scalar fallback, so the addon also builds on machines without AVX2.
// Legend: n a row length; x, y rows of n floats.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>

#include "threadpool.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define DPO_AVX2 1
#endif

namespace dpo {

// Below this many element-operations a kernel runs on the calling thread: waking the pool costs a few
// microseconds, about the time 32K simple float operations take on one core.
constexpr int64_t kParallelMinWork = int64_t{1} << 15;

// Runs fn(begin, end) over [0, rows), in parallel when rows · work_per_row is big enough to pay for the pool.
inline void parallel_rows(int64_t rows, int64_t work_per_row, const std::function<void(int64_t, int64_t)>& fn) {
  if (rows <= 0) return;
  if (rows == 1 || rows * (work_per_row < 1 ? 1 : work_per_row) < kParallelMinWork) {
    fn(0, rows);
    return;
  }
  parallel_for(rows, fn);
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

inline float sigmoid_scalar(float x) { return 1.0f / (1.0f + std::exp(-x)); }  // exp(-x) = inf gives 0: stable

#ifdef DPO_AVX2
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp(x) = 2^n · e^r with n = round(x·log2 e) and r = x − n·ln 2 (ln 2 in two parts), |r| ≤ ln2/2. e^r is its
// degree-7 Taylor polynomial (truncation < 6e-9 relative). 2^n is applied in two halves so that every n the clamp
// allows (−150..129) stays a normal float: results underflow to 0 and overflow to inf as std::exp does. NaN passes.
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));  // (bound, x): NaN kept
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// 1 / (1 + e^−x): e^−x = inf gives 0, so it is stable for large |x| and accurate (relative) on both sides.
inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

// tanh: odd Taylor polynomial to x^11 for |x| < 0.4 (where 1 − 2/(e^2x + 1) would cancel), else that formula.
// Relative error stays below ~3e-7 everywhere.
inline __m256 tanh8(__m256 x) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 a = _mm256_andnot_ps(sign_mask, x);
  const __m256 a2 = _mm256_mul_ps(a, a);
  __m256 p = _mm256_set1_ps(-1382.0f / 155925);
  p = _mm256_fmadd_ps(p, a2, _mm256_set1_ps(62.0f / 2835));
  p = _mm256_fmadd_ps(p, a2, _mm256_set1_ps(-17.0f / 315));
  p = _mm256_fmadd_ps(p, a2, _mm256_set1_ps(2.0f / 15));
  p = _mm256_fmadd_ps(p, a2, _mm256_set1_ps(-1.0f / 3));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, a2), a, a);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp8(_mm256_add_ps(a, a));
  const __m256 large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  const __m256 t = _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.4f), _CMP_LT_OQ));
  return _mm256_or_ps(t, _mm256_and_ps(x, sign_mask));
}
#endif

// ---------------------------------------------------------------- row primitives

// max over x[0..n); -inf for n = 0. NaN is not propagated (callers that care check the result).
inline float row_max(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
#ifdef DPO_AVX2
  if (n >= 8) {
    __m256 acc = _mm256_loadu_ps(x);
    for (j = 8; j + 8 <= n; j += 8) acc = _mm256_max_ps(acc, _mm256_loadu_ps(x + j));
    m = hmax8(acc);
  }
#endif
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

// Σ a[j]·b[j] with 4×8 partial sums (more accurate than one running sum).
inline float row_dot(const float* a, const float* b, int64_t n) {
  int64_t j = 0;
  float s = 0.0f;
#ifdef DPO_AVX2
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  for (; j + 32 <= n; j += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 16), _mm256_loadu_ps(b + j + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 24), _mm256_loadu_ps(b + j + 24), s3);
  }
  for (; j + 8 <= n; j += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), s0);
  s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
#endif
  for (; j < n; ++j) s += a[j] * b[j];
  return s;
}

// Σ x[j]
inline float row_sum(const float* x, int64_t n) {
  int64_t j = 0;
  float s = 0.0f;
#ifdef DPO_AVX2
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  for (; j + 16 <= n; j += 16) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + j));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + j + 8));
  }
  for (; j + 8 <= n; j += 8) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + j));
  s = hsum8(_mm256_add_ps(s0, s1));
#endif
  for (; j < n; ++j) s += x[j];
  return s;
}

// y[j] += alpha · x[j]
inline void row_axpy(float* y, float alpha, const float* x, int64_t n) {
  int64_t j = 0;
#ifdef DPO_AVX2
  const __m256 av = _mm256_set1_ps(alpha);
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(y + j, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + j), _mm256_loadu_ps(y + j)));
#endif
  for (; j < n; ++j) y[j] += alpha * x[j];
}

// Σ exp(x[j] − shift); when out is not null also stores each exp(x[j] − shift) there (out may equal x).
inline float row_sum_exp(float* out, const float* x, int64_t n, float shift) {
  int64_t j = 0;
  float s = 0.0f;
#ifdef DPO_AVX2
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), sh));
    if (out != nullptr) _mm256_storeu_ps(out + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  s = hsum8(acc);
#endif
  for (; j < n; ++j) {
    const float e = std::exp(x[j] - shift);
    if (out != nullptr) out[j] = e;
    s += e;
  }
  return s;
}

// y[j] *= alpha
inline void row_scale(float* y, float alpha, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] *= alpha;
}

}  // namespace dpo
