// The native float32 kernels behind the 'native' backend: declarations only. Each kernel's meaning is documented
// once, on the Backend interface in src/engine/backend.ts; argument order follows it: outputs, inputs, saved, dims.
// Callers (binding.cc) have already checked every size and index, so kernels trust their arguments.
// Legend: B batch, Tq/Tk query/key time, H query heads, KVH key/value heads, D head size, C channels, V vocabulary,
// N rows, M/N/K GEMM sizes. Sizes are int64_t element counts; every array is contiguous row-major unless strided.
#pragma once
#include <cstdint>
#include <vector>

namespace dpo {

// Same order as unaryOps / binaryOps in src/engine/backend.ts; binding.cc maps the names.
enum class UnaryOp : int { Neg, Exp, Log, Tanh, Sqrt, Rsqrt, Sigmoid, Silu, Gelu, Relu, Abs, Square };
enum class BinaryOp : int { Add, Sub, Mul, Div, Maximum, Minimum, Eq, Gt };

using Dims = std::vector<int64_t>;

// ---------------------------------------------------------------- memory movement (kernels_memory.cc)
void fill(float* out, int64_t n, float value);
// out (contiguous, of shape) = x[x_offset + Σ idx·x_strides]; also used for int32 ids (same element size).
void strided_copy(float* out, const float* x, const Dims& shape, const Dims& x_strides, int64_t x_offset);
void strided_copy(int32_t* out, const int32_t* x, const Dims& shape, const Dims& x_strides, int64_t x_offset);
void strided_accumulate(float* out, const float* x, const Dims& shape, const Dims& out_strides, int64_t out_offset);
void gather_rows(float* out, const float* table, const int32_t* ids, int64_t n, int64_t c);
void scatter_add_rows(float* table, const float* src, const int32_t* ids, int64_t n, int64_t c);

// ---------------------------------------------------------------- elementwise (kernels_elementwise.cc)
void unary_forward(UnaryOp op, float* out, const float* x, int64_t n);
void unary_backward(UnaryOp op, float* dx, const float* dy, const float* x, const float* y, int64_t n);
void binary_forward(BinaryOp op, float* out, const float* a, const float* b, const Dims& shape, const Dims& a_strides,
                    const Dims& b_strides);
// out = x·scale + shift, computed in double and rounded once, as the reference does.
void affine(float* out, const float* x, int64_t n, double scale, double shift);

// ---------------------------------------------------------------- reductions over x (outer, n, inner) (kernels_reduce.cc)
void reduce_sum(float* out, const float* x, int64_t outer, int64_t n, int64_t inner);
void reduce_max(float* out, int32_t* argmax, const float* x, int64_t outer, int64_t n, int64_t inner);

// ---------------------------------------------------------------- GEMM on dpo::sgemm (kernels_matmul.cc)
void matmul(float* c, const float* a, const float* b, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
            bool trans_b, int64_t a_batch_stride, int64_t b_batch_stride, int64_t c_batch_stride, bool accumulate);
// bias may be null.
void linear_forward(float* out, const float* x, const float* w, const float* bias, int64_t n, int64_t cin,
                    int64_t cout, bool w_is_in_out);

// ---------------------------------------------------------------- softmax rows (kernels_softmax.cc)
void softmax_forward(float* out, const float* x, int64_t rows, int64_t cols);
void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols);
void logsoftmax_forward(float* out, const float* x, int64_t rows, int64_t cols);
void logsoftmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols);

// ---------------------------------------------------------------- norms (kernels_norm.cc); weight, bias, dweight, dbias may be null
void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* weight, const float* bias,
                       int64_t rows, int64_t cols, float eps);
void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x, const float* weight,
                        const float* mean, const float* rstd, int64_t rows, int64_t cols);
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int64_t rows, int64_t cols,
                     float eps);
void rmsnorm_backward(float* dx, float* dweight, const float* dy, const float* x, const float* weight,
                      const float* rstd, int64_t rows, int64_t cols);

// ---------------------------------------------------------------- log-prob head (kernels_logprob.cc)
void logsoftmax_gather_forward(float* out, float* lse, const float* logits, const int32_t* targets, int64_t n,
                               int64_t v);
void logsoftmax_gather_backward(float* dlogits, const float* dout, const float* logits, const float* lse,
                                const int32_t* targets, int64_t n, int64_t v);

// ---------------------------------------------------------------- attention and RoPE (kernels_attention.cc, kernels_rope.cc)
// mask (B, Tq, Tk) of 0/1, or null for causal.
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v, const uint8_t* mask,
                       int64_t b, int64_t tq, int64_t tk, int64_t h, int64_t kvh, int64_t d, float scale);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* probs, int64_t b, int64_t tq, int64_t tk, int64_t h, int64_t kvh,
                        int64_t d, float scale);
void rope_forward(float* out, const float* x, const float* cos, const float* sin, int64_t b, int64_t t, int64_t h,
                  int64_t d, bool inverse);

// ---------------------------------------------------------------- optimizer (kernels_optim.cc)
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
           double eps, double weight_decay, double step);

}  // namespace dpo
