// Elementwise kernels: unary ops and their backward (dx = dy·op'(x)), broadcasting binary ops, and affine.
// exp, tanh, sigmoid, SiLU and GELU use the AVX2 vector math of kernels_common.h; the simple ops are plain loops
// that the compiler vectorises. GELU is the tanh form, written as x·σ(2u) with u = √(2/π)(x + 0.044715x³).
// Legend: n elements; shape/strides per the strided nest (binary's output is contiguous).
#include <cmath>

#include "kernels.h"
#include "kernels_common.h"
#include "kernels_strided.h"

namespace dpo {
namespace {

// out[i] = f(x[i]) with the vector form f8 on blocks of 8 and the scalar form f on the tail.
template <class F8, class F>
void map1(float* out, const float* x, int64_t n, F8 f8, F f) {
  parallel_rows(n, 8, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
#ifdef DPO_AVX2
    for (; i + 8 <= end; i += 8) _mm256_storeu_ps(out + i, f8(_mm256_loadu_ps(x + i)));
#else
    (void)f8;
#endif
    for (; i < end; ++i) out[i] = f(x[i]);
  });
}

// out[i] = f(x[i]) for ops the compiler vectorises on its own.
template <class F>
void map1_plain(float* out, const float* x, int64_t n, F f) {
  parallel_rows(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = f(x[i]);
  });
}

// dx[i] = f(dy[i], x[i], y[i]).
template <class F>
void map3_plain(float* dx, const float* dy, const float* x, const float* y, int64_t n, F f) {
  parallel_rows(n, 2, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dx[i] = f(dy[i], x[i], y[i]);
  });
}

template <class F8, class F>
void map3(float* dx, const float* dy, const float* x, int64_t n, F8 f8, F f) {
  parallel_rows(n, 8, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
#ifdef DPO_AVX2
    for (; i + 8 <= end; i += 8) _mm256_storeu_ps(dx + i, f8(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(x + i)));
#else
    (void)f8;
#endif
    for (; i < end; ++i) dx[i] = f(dy[i], x[i]);
  });
}

inline float gelu_inner2(float x) { return 2.0f * kSqrt2OverPi * (x + kGeluCubic * x * x * x); }  // 2u

#ifdef DPO_AVX2
inline __m256 gelu_inner2_8(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  return _mm256_mul_ps(_mm256_set1_ps(2.0f * kSqrt2OverPi), _mm256_fmadd_ps(_mm256_set1_ps(kGeluCubic), x3, x));
}
#endif

}  // namespace

void unary_forward(UnaryOp op, float* out, const float* x, int64_t n) {
  switch (op) {
    case UnaryOp::Neg: return map1_plain(out, x, n, [](float a) { return -a; });
    case UnaryOp::Log: return map1_plain(out, x, n, [](float a) { return std::log(a); });
    case UnaryOp::Sqrt: return map1_plain(out, x, n, [](float a) { return std::sqrt(a); });
    case UnaryOp::Rsqrt: return map1_plain(out, x, n, [](float a) { return 1.0f / std::sqrt(a); });
    case UnaryOp::Relu: return map1_plain(out, x, n, [](float a) { return a > 0.0f ? a : 0.0f; });
    case UnaryOp::Abs: return map1_plain(out, x, n, [](float a) { return std::fabs(a); });
    case UnaryOp::Square: return map1_plain(out, x, n, [](float a) { return a * a; });
#ifdef DPO_AVX2
    case UnaryOp::Exp: return map1(out, x, n, [](__m256 a) { return exp8(a); }, [](float a) { return std::exp(a); });
    case UnaryOp::Tanh: return map1(out, x, n, [](__m256 a) { return tanh8(a); }, [](float a) { return std::tanh(a); });
    case UnaryOp::Sigmoid: return map1(out, x, n, [](__m256 a) { return sigmoid8(a); }, sigmoid_scalar);
    case UnaryOp::Silu:
      return map1(out, x, n, [](__m256 a) { return _mm256_mul_ps(a, sigmoid8(a)); },
                  [](float a) { return a * sigmoid_scalar(a); });
    case UnaryOp::Gelu:
      return map1(out, x, n, [](__m256 a) { return _mm256_mul_ps(a, sigmoid8(gelu_inner2_8(a))); },
                  [](float a) { return a * sigmoid_scalar(gelu_inner2(a)); });
#else
    case UnaryOp::Exp: return map1_plain(out, x, n, [](float a) { return std::exp(a); });
    case UnaryOp::Tanh: return map1_plain(out, x, n, [](float a) { return std::tanh(a); });
    case UnaryOp::Sigmoid: return map1_plain(out, x, n, sigmoid_scalar);
    case UnaryOp::Silu: return map1_plain(out, x, n, [](float a) { return a * sigmoid_scalar(a); });
    case UnaryOp::Gelu: return map1_plain(out, x, n, [](float a) { return a * sigmoid_scalar(gelu_inner2(a)); });
#endif
  }
}

// GELU'(x) with s = σ(2u): 0.5(1 + tanh u) = s and 1 − tanh²u = 4s(1 − s), so
// d/dx = s + 2x·s(1 − s)·√(2/π)(1 + 3·0.044715x²).
static inline float gelu_grad(float x) {
  const float s = sigmoid_scalar(gelu_inner2(x));
  return s + 2.0f * x * s * (1.0f - s) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
}

static inline float silu_grad(float x) {
  const float s = sigmoid_scalar(x);
  return s * (1.0f + x * (1.0f - s));
}

void unary_backward(UnaryOp op, float* dx, const float* dy, const float* x, const float* y, int64_t n) {
  switch (op) {
    case UnaryOp::Neg: return map3_plain(dx, dy, x, y, n, [](float g, float, float) { return -g; });
    case UnaryOp::Exp: return map3_plain(dx, dy, x, y, n, [](float g, float, float b) { return g * b; });
    case UnaryOp::Log: return map3_plain(dx, dy, x, y, n, [](float g, float a, float) { return g / a; });
    case UnaryOp::Tanh: return map3_plain(dx, dy, x, y, n, [](float g, float, float b) { return g * (1.0f - b * b); });
    case UnaryOp::Sqrt: return map3_plain(dx, dy, x, y, n, [](float g, float, float b) { return g * (0.5f / b); });
    case UnaryOp::Rsqrt:
      return map3_plain(dx, dy, x, y, n, [](float g, float, float b) { return g * (-0.5f * b * b * b); });
    case UnaryOp::Sigmoid:
      return map3_plain(dx, dy, x, y, n, [](float g, float, float b) { return g * (b * (1.0f - b)); });
    case UnaryOp::Relu:
      return map3_plain(dx, dy, x, y, n, [](float g, float a, float) { return a > 0.0f ? g : 0.0f * g; });
    case UnaryOp::Abs:
      return map3_plain(dx, dy, x, y, n, [](float g, float a, float) {
        return a > 0.0f ? g : (a < 0.0f ? -g : 0.0f * g);
      });
    case UnaryOp::Square: return map3_plain(dx, dy, x, y, n, [](float g, float a, float) { return g * (2.0f * a); });
#ifdef DPO_AVX2
    case UnaryOp::Silu:
      return map3(dx, dy, x, n, [](__m256 g, __m256 a) {
        const __m256 one = _mm256_set1_ps(1.0f);
        const __m256 s = sigmoid8(a);
        return _mm256_mul_ps(g, _mm256_mul_ps(s, _mm256_fmadd_ps(a, _mm256_sub_ps(one, s), one)));
      }, [](float g, float a) { return g * silu_grad(a); });
    case UnaryOp::Gelu:
      return map3(dx, dy, x, n, [](__m256 g, __m256 a) {
        const __m256 one = _mm256_set1_ps(1.0f);
        const __m256 s = sigmoid8(gelu_inner2_8(a));
        const __m256 poly = _mm256_fmadd_ps(_mm256_set1_ps(3.0f * kGeluCubic), _mm256_mul_ps(a, a), one);
        const __m256 slope = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f * kSqrt2OverPi), a), poly);
        return _mm256_mul_ps(g, _mm256_fmadd_ps(_mm256_mul_ps(s, _mm256_sub_ps(one, s)), slope, s));
      }, [](float g, float a) { return g * gelu_grad(a); });
#else
    case UnaryOp::Silu: return map3_plain(dx, dy, x, y, n, [](float g, float a, float) { return g * silu_grad(a); });
    case UnaryOp::Gelu: return map3_plain(dx, dy, x, y, n, [](float g, float a, float) { return g * gelu_grad(a); });
#endif
  }
}

// ---------------------------------------------------------------- binary

namespace {

template <BinaryOp OP>
inline float apply(float a, float b) {
  if constexpr (OP == BinaryOp::Add) return a + b;
  if constexpr (OP == BinaryOp::Sub) return a - b;
  if constexpr (OP == BinaryOp::Mul) return a * b;
  if constexpr (OP == BinaryOp::Div) return a / b;
  if constexpr (OP == BinaryOp::Maximum) return (a >= b || a != a) ? a : b;  // NaN propagates, as the reference
  if constexpr (OP == BinaryOp::Minimum) return (a <= b || a != a) ? a : b;
  if constexpr (OP == BinaryOp::Eq) return a == b ? 1.0f : 0.0f;
  if constexpr (OP == BinaryOp::Gt) return a > b ? 1.0f : 0.0f;
}

// One row of the nest; the contiguous and broadcast-scalar cases are separate loops so that each vectorises.
template <BinaryOp OP>
void binary_rows(float* out, const float* a, const float* b, const StridedNest<2>& nest) {
  const int64_t inner = nest.inner();
  const int64_t sa = nest.inner_strides()[0], sb = nest.inner_strides()[1];
  for_each_row<2>(nest, {0, 0}, false, [&](int64_t o, const std::array<int64_t, 2>& off) {
    const float* ar = a + off[0];
    const float* br = b + off[1];
    float* dst = out + o;
    if (sa == 1 && sb == 1) {
      for (int64_t j = 0; j < inner; ++j) dst[j] = apply<OP>(ar[j], br[j]);
    } else if (sa == 1 && sb == 0) {
      const float bv = br[0];
      for (int64_t j = 0; j < inner; ++j) dst[j] = apply<OP>(ar[j], bv);
    } else if (sa == 0 && sb == 1) {
      const float av = ar[0];
      for (int64_t j = 0; j < inner; ++j) dst[j] = apply<OP>(av, br[j]);
    } else {
      for (int64_t j = 0; j < inner; ++j) dst[j] = apply<OP>(ar[j * sa], br[j * sb]);
    }
  });
}

}  // namespace

void binary_forward(BinaryOp op, float* out, const float* a, const float* b, const Dims& shape, const Dims& a_strides,
                    const Dims& b_strides) {
  const StridedNest<2> nest = collapse<2>(shape, {&a_strides, &b_strides});
  switch (op) {
    case BinaryOp::Add: return binary_rows<BinaryOp::Add>(out, a, b, nest);
    case BinaryOp::Sub: return binary_rows<BinaryOp::Sub>(out, a, b, nest);
    case BinaryOp::Mul: return binary_rows<BinaryOp::Mul>(out, a, b, nest);
    case BinaryOp::Div: return binary_rows<BinaryOp::Div>(out, a, b, nest);
    case BinaryOp::Maximum: return binary_rows<BinaryOp::Maximum>(out, a, b, nest);
    case BinaryOp::Minimum: return binary_rows<BinaryOp::Minimum>(out, a, b, nest);
    case BinaryOp::Eq: return binary_rows<BinaryOp::Eq>(out, a, b, nest);
    case BinaryOp::Gt: return binary_rows<BinaryOp::Gt>(out, a, b, nest);
  }
}

void affine(float* out, const float* x, int64_t n, double scale, double shift) {
  parallel_rows(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = static_cast<float>(static_cast<double>(x[i]) * scale + shift);
  });
}

}  // namespace dpo
