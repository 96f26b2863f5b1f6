// Single-precision GEMM: a blocked, packed, multithreaded implementation with an AVX2/FMA (or AVX-512) micro-kernel
// and a portable fallback. Row-major throughout.
#pragma once
#include <cstdint>

namespace dpo {

// C (M, N) = op(A) · op(B)  (+ bias on every row when bias is not null)  (+ C when accumulate).
// op(A) is (M, K): A is stored (M, K) with row stride lda, or (K, M) with row stride lda when trans_a.
// op(B) is (K, N): B is stored (K, N) with row stride ldb, or (N, K) with row stride ldb when trans_b.
// C is (M, N) with row stride ldc; bias, when given, is (N). Any of M, N, K may be 0 (K = 0 gives C = bias or 0,
// plus C when accumulating).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
           const float* a, int64_t lda, const float* b, int64_t ldb,
           float* c, int64_t ldc, bool accumulate, const float* bias = nullptr);

}  // namespace dpo
