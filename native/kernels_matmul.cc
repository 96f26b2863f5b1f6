// Batched matmul and the fused linear layer, both thin wrappers over dpo::sgemm (gemm.h), which owns the blocking
// and the threads. The batch loop is serial on purpose: sgemm parallelises inside, and the pool does not nest.
// Legend: M, N, K GEMM sizes; batch with per-operand batch strides (0 shares one operand); linear: N rows, Cin, Cout.
#include "gemm.h"
#include "kernels.h"

namespace dpo {

void matmul(float* c, const float* a, const float* b, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
            bool trans_b, int64_t a_batch_stride, int64_t b_batch_stride, int64_t c_batch_stride, bool accumulate) {
  const int64_t lda = trans_a ? m : k;  // A_b stored (K, M) or (M, K)
  const int64_t ldb = trans_b ? k : n;  // B_b stored (N, K) or (K, N)
  for (int64_t i = 0; i < batch; ++i) {
    sgemm(trans_a, trans_b, m, n, k, a + i * a_batch_stride, lda, b + i * b_batch_stride, ldb, c + i * c_batch_stride,
          n, accumulate);
  }
}

// out (N, Cout) = x (N, Cin) · op(W) + bias, the bias added in sgemm's epilogue (out is written once).
// W (Cout, Cin) is used transposed (torch.nn.Linear); W (Cin, Cout) as is when w_is_in_out (GPT-2 Conv1D).
void linear_forward(float* out, const float* x, const float* w, const float* bias, int64_t n, int64_t cin,
                    int64_t cout, bool w_is_in_out) {
  sgemm(false, !w_is_in_out, n, cout, cin, x, cin, w, w_is_in_out ? cout : cin, out, cout, false, bias);
}

}  // namespace dpo
