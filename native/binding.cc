// Node-API glue for the native kernels (C API of node_api.h, no node-addon-api): one export per Backend method,
// taking that method's arguments in the same order (unary/binary ops by name). Each wrapper reads the dims, checks
// every array's type and length and every index against them (binding_args.h), then calls the kernel. No arithmetic.
// Legend: as in kernels.h; the third argument of a.f32(...) is the element count that array must have at least.
#include <node_api.h>

#include <string>

#include "binding_args.h"
#include "kernels.h"
#include "threadpool.h"

namespace dpo_binding {
namespace {

// Every id must select a whole row of a table with `table_len` elements and rows of c.
void check_ids(Args& a, size_t i, const int32_t* ids, int64_t n, int64_t c, int64_t table_len) {
  if (c == 0) return;
  const int64_t rows = table_len / c;
  for (int64_t j = 0; j < n; ++j) {
    if (ids[j] < 0 || ids[j] >= rows) {
      a.fail(true, i, "ids", "element " + std::to_string(j) + " = " + std::to_string(ids[j]) + " is outside [0, " + std::to_string(rows) + ")");
    }
  }
}

// ---------------------------------------------------------------- memory movement

void fill(Args& a) {
  int64_t n = 0;
  float* out = a.f32(0, "out", 0, &n);
  dpo::fill(out, n, static_cast<float>(a.number(1, "value")));
}

void strided_copy(Args& a) {
  const Dims shape = a.int_array(2, "shape", 0), strides = a.int_array(3, "xStrides", -kMaxSafe);
  const int64_t offset = a.integer(4, "xOffset");
  const int64_t size = a.numel(shape), extent = strided_extent(a, 2, shape, strides, offset);
  if (a.is_int32(0)) {
    dpo::strided_copy(a.i32(0, "out", size), a.i32(1, "x", extent), shape, strides, offset);
  } else {
    dpo::strided_copy(a.f32(0, "out", size), a.f32(1, "x", extent), shape, strides, offset);
  }
}

void strided_accumulate(Args& a) {
  const Dims shape = a.int_array(2, "shape", 0), strides = a.int_array(3, "outStrides", -kMaxSafe);
  const int64_t offset = a.integer(4, "outOffset");
  const int64_t size = a.numel(shape), extent = strided_extent(a, 2, shape, strides, offset);
  dpo::strided_accumulate(a.f32(0, "out", extent), a.f32(1, "x", size), shape, strides, offset);
}

void gather_rows(Args& a) {
  const int64_t n = a.integer(3, "n"), c = a.integer(4, "c");
  int64_t table_len = 0;
  float* out = a.f32(0, "out", a.mul(n, c));
  const float* table = a.f32(1, "table", 0, &table_len);
  const int32_t* ids = a.i32(2, "ids", n);
  check_ids(a, 2, ids, n, c, table_len);
  dpo::gather_rows(out, table, ids, n, c);
}

void scatter_add_rows(Args& a) {
  const int64_t n = a.integer(3, "n"), c = a.integer(4, "c");
  int64_t table_len = 0;
  float* table = a.f32(0, "table", 0, &table_len);
  const float* src = a.f32(1, "src", a.mul(n, c));
  const int32_t* ids = a.i32(2, "ids", n);
  check_ids(a, 2, ids, n, c, table_len);
  dpo::scatter_add_rows(table, src, ids, n, c);
}

// ---------------------------------------------------------------- elementwise

void unary(Args& a) {
  const auto op = op_by_name<dpo::UnaryOp>(a, 0, kUnaryNames, 12);
  int64_t n = 0;
  const float* x = a.f32(2, "x", 0, &n);
  dpo::unary_forward(op, a.f32(1, "out", n), x, n);
}

void unary_backward(Args& a) {
  const auto op = op_by_name<dpo::UnaryOp>(a, 0, kUnaryNames, 12);
  int64_t n = 0;
  const float* dy = a.f32(2, "dy", 0, &n);
  dpo::unary_backward(op, a.f32(1, "dx", n), dy, a.f32(3, "x", n), a.f32(4, "y", n), n);
}

void binary(Args& a) {
  const auto op = op_by_name<dpo::BinaryOp>(a, 0, kBinaryNames, 8);
  const Dims shape = a.int_array(4, "shape", 0);
  const Dims as = a.int_array(5, "aStrides", -kMaxSafe), bs = a.int_array(6, "bStrides", -kMaxSafe);
  const int64_t size = a.numel(shape);
  float* out = a.f32(1, "out", size);
  const float* x = a.f32(2, "a", strided_extent(a, 4, shape, as, 0));
  const float* y = a.f32(3, "b", strided_extent(a, 5, shape, bs, 0));
  dpo::binary_forward(op, out, x, y, shape, as, bs);
}

void affine(Args& a) {
  int64_t n = 0;
  const float* x = a.f32(1, "x", 0, &n);
  dpo::affine(a.f32(0, "out", n), x, n, a.number(2, "scale"), a.number(3, "shift"));
}

// ---------------------------------------------------------------- reductions

void reduce_sum(Args& a) {
  const int64_t outer = a.integer(2, "outer"), n = a.integer(3, "n"), inner = a.integer(4, "inner");
  dpo::reduce_sum(a.f32(0, "out", a.mul(outer, inner)), a.f32(1, "x", a.mul({outer, n, inner})), outer, n, inner);
}

void reduce_max(Args& a) {
  const int64_t outer = a.integer(3, "outer"), n = a.integer(4, "n"), inner = a.integer(5, "inner");
  dpo::reduce_max(a.f32(0, "out", a.mul(outer, inner)), a.i32(1, "argmax", a.mul(outer, inner)),
                  a.f32(2, "x", a.mul({outer, n, inner})), outer, n, inner);
}

// ---------------------------------------------------------------- GEMM

void matmul(Args& a) {
  const int64_t batch = a.integer(3, "batch"), m = a.integer(4, "m"), n = a.integer(5, "n"), k = a.integer(6, "k");
  const bool trans_a = a.boolean(7, "transA"), trans_b = a.boolean(8, "transB");
  const int64_t as = a.integer(9, "aBatchStride"), bs = a.integer(10, "bBatchStride"), cs = a.integer(11, "cBatchStride");
  const bool accumulate = a.boolean(12, "accumulate");
  float* c = a.f32(0, "c", batched_extent(a, batch, cs, a.mul(m, n)));
  const float* x = a.f32(1, "a", k == 0 ? 0 : batched_extent(a, batch, as, a.mul(m, k)));
  const float* y = a.f32(2, "b", k == 0 ? 0 : batched_extent(a, batch, bs, a.mul(k, n)));
  dpo::matmul(c, x, y, batch, m, n, k, trans_a, trans_b, as, bs, cs, accumulate);
}

void linear(Args& a) {
  const int64_t n = a.integer(4, "n"), cin = a.integer(5, "cin"), cout = a.integer(6, "cout");
  dpo::linear_forward(a.f32(0, "out", a.mul(n, cout)), a.f32(1, "x", a.mul(n, cin)), a.f32(2, "w", a.mul(cin, cout)),
                      a.f32_or_null(3, "bias", cout), n, cin, cout, a.boolean(7, "wIsInOut"));
}

// ---------------------------------------------------------------- softmax rows: (out|dx, x|dy, [y], rows, cols)

template <void (*Kernel)(float*, const float*, int64_t, int64_t)>
void rows_forward(Args& a) {
  const int64_t rows = a.integer(2, "rows"), cols = a.integer(3, "cols"), size = a.mul(rows, cols);
  Kernel(a.f32(0, "out", size), a.f32(1, "x", size), rows, cols);
}

template <void (*Kernel)(float*, const float*, const float*, int64_t, int64_t)>
void rows_backward(Args& a) {
  const int64_t rows = a.integer(3, "rows"), cols = a.integer(4, "cols"), size = a.mul(rows, cols);
  Kernel(a.f32(0, "dx", size), a.f32(1, "dy", size), a.f32(2, "y", size), rows, cols);
}

// ---------------------------------------------------------------- norms

void layer_norm(Args& a) {
  const int64_t rows = a.integer(6, "rows"), cols = a.integer(7, "cols"), size = a.mul(rows, cols);
  dpo::layernorm_forward(a.f32(0, "out", size), a.f32(1, "mean", rows), a.f32(2, "rstd", rows), a.f32(3, "x", size),
                         a.f32_or_null(4, "weight", cols), a.f32_or_null(5, "bias", cols), rows, cols,
                         static_cast<float>(a.number(8, "eps")));
}

void layer_norm_backward(Args& a) {
  const int64_t rows = a.integer(8, "rows"), cols = a.integer(9, "cols"), size = a.mul(rows, cols);
  dpo::layernorm_backward(a.f32(0, "dx", size), a.f32_or_null(1, "dweight", cols), a.f32_or_null(2, "dbias", cols),
                          a.f32(3, "dy", size), a.f32(4, "x", size), a.f32_or_null(5, "weight", cols),
                          a.f32(6, "mean", rows), a.f32(7, "rstd", rows), rows, cols);
}

void rms_norm(Args& a) {
  const int64_t rows = a.integer(4, "rows"), cols = a.integer(5, "cols"), size = a.mul(rows, cols);
  dpo::rmsnorm_forward(a.f32(0, "out", size), a.f32(1, "rstd", rows), a.f32(2, "x", size),
                       a.f32_or_null(3, "weight", cols), rows, cols, static_cast<float>(a.number(6, "eps")));
}

void rms_norm_backward(Args& a) {
  const int64_t rows = a.integer(6, "rows"), cols = a.integer(7, "cols"), size = a.mul(rows, cols);
  dpo::rmsnorm_backward(a.f32(0, "dx", size), a.f32_or_null(1, "dweight", cols), a.f32(2, "dy", size),
                        a.f32(3, "x", size), a.f32_or_null(4, "weight", cols), a.f32(5, "rstd", rows), rows, cols);
}

// ---------------------------------------------------------------- log-prob head

// Targets must be < V; negative ones mean "ignore".
void check_targets(Args& a, size_t i, const int32_t* targets, int64_t n, int64_t v) {
  for (int64_t j = 0; j < n; ++j) {
    if (targets[j] >= v) {
      a.fail(true, i, "targets", "element " + std::to_string(j) + " = " + std::to_string(targets[j]) + " is not < V = " + std::to_string(v));
    }
  }
}

void log_softmax_gather(Args& a) {
  const int64_t n = a.integer(4, "n"), v = a.integer(5, "v");
  const int32_t* targets = a.i32(3, "targets", n);
  check_targets(a, 3, targets, n, v);
  dpo::logsoftmax_gather_forward(a.f32(0, "out", n), a.f32(1, "lse", n), a.f32(2, "logits", a.mul(n, v)), targets, n, v);
}

void log_softmax_gather_backward(Args& a) {
  const int64_t n = a.integer(5, "n"), v = a.integer(6, "v");
  const int32_t* targets = a.i32(4, "targets", n);
  check_targets(a, 4, targets, n, v);
  dpo::logsoftmax_gather_backward(a.f32(0, "dlogits", a.mul(n, v)), a.f32(1, "dout", n), a.f32(2, "logits", a.mul(n, v)),
                                  a.f32(3, "lse", n), targets, n, v);
}

// ---------------------------------------------------------------- attention and RoPE

struct AttentionDims {
  int64_t b, tq, tk, h, kvh, d;
};

// Reads (b, tq, tk, h, kvh, d) starting at argument `first`; H must be a multiple of KVH.
AttentionDims attention_dims(Args& a, size_t first) {
  AttentionDims s{a.integer(first, "b"), a.integer(first + 1, "tq"), a.integer(first + 2, "tk"),
                  a.integer(first + 3, "h"), a.integer(first + 4, "kvh"), a.integer(first + 5, "d")};
  if (s.h > 0 && (s.kvh == 0 || s.h % s.kvh != 0)) {
    a.fail(true, first + 4, "kvh", "must divide h = " + std::to_string(s.h) + ", got " + std::to_string(s.kvh));
  }
  return s;
}

void attention(Args& a) {
  const AttentionDims s = attention_dims(a, 6);
  const int64_t qsize = a.mul({s.b, s.tq, s.h, s.d}), kvsize = a.mul({s.b, s.tk, s.kvh, s.d});
  const auto* mask = static_cast<const uint8_t*>(a.typed(5, "mask", napi_uint8_array, a.mul({s.b, s.tq, s.tk}), true));
  dpo::attention_forward(a.f32(0, "out", qsize), a.f32(1, "probs", a.mul({s.b, s.h, s.tq, s.tk})), a.f32(2, "q", qsize),
                         a.f32(3, "k", kvsize), a.f32(4, "v", kvsize), mask, s.b, s.tq, s.tk, s.h, s.kvh, s.d,
                         static_cast<float>(a.number(12, "scale")));
}

void attention_backward(Args& a) {
  const AttentionDims s = attention_dims(a, 8);
  const int64_t qsize = a.mul({s.b, s.tq, s.h, s.d}), kvsize = a.mul({s.b, s.tk, s.kvh, s.d});
  dpo::attention_backward(a.f32(0, "dq", qsize), a.f32(1, "dk", kvsize), a.f32(2, "dv", kvsize), a.f32(3, "dout", qsize),
                          a.f32(4, "q", qsize), a.f32(5, "k", kvsize), a.f32(6, "v", kvsize),
                          a.f32(7, "probs", a.mul({s.b, s.h, s.tq, s.tk})), s.b, s.tq, s.tk, s.h, s.kvh, s.d,
                          static_cast<float>(a.number(14, "scale")));
}

void rope(Args& a) {
  const int64_t b = a.integer(4, "b"), t = a.integer(5, "t"), h = a.integer(6, "h"), d = a.integer(7, "d");
  if (d % 2 != 0) a.fail(true, 7, "d", "must be even, got " + std::to_string(d));
  const int64_t size = a.mul({b, t, h, d}), table = a.mul({b, t, d / 2});
  dpo::rope_forward(a.f32(0, "out", size), a.f32(1, "x", size), a.f32(2, "cos", table), a.f32(3, "sin", table), b, t, h,
                    d, a.boolean(8, "inverse"));
}

// ---------------------------------------------------------------- optimizer and threads

void adamw(Args& a) {
  int64_t n = 0;
  float* param = a.f32(0, "param", 0, &n);
  dpo::adamw(param, a.f32(1, "grad", n), a.f32(2, "m", n), a.f32(3, "v", n), n, a.number(4, "lr"), a.number(5, "beta1"),
             a.number(6, "beta2"), a.number(7, "eps"), a.number(8, "weightDecay"), a.number(9, "step"));
}

void set_threads(Args& a) {
  const int64_t n = a.integer(0, "n");
  if (n < 1 || n > 1024) a.fail(true, 0, "n", "must be in [1, 1024], got " + std::to_string(n));
  dpo::set_num_threads(static_cast<int>(n));
}

// ---------------------------------------------------------------- registration

struct Export {
  const char* name;
  void (*fn)(Args&);
};

const Export kExports[] = {
    {"fill", fill}, {"stridedCopy", strided_copy}, {"stridedAccumulate", strided_accumulate},
    {"gatherRows", gather_rows}, {"scatterAddRows", scatter_add_rows},
    {"unary", unary}, {"unaryBackward", unary_backward}, {"binary", binary}, {"affine", affine},
    {"reduceSum", reduce_sum}, {"reduceMax", reduce_max}, {"matmul", matmul}, {"linear", linear},
    {"softmax", rows_forward<dpo::softmax_forward>}, {"softmaxBackward", rows_backward<dpo::softmax_backward>},
    {"logSoftmax", rows_forward<dpo::logsoftmax_forward>},
    {"logSoftmaxBackward", rows_backward<dpo::logsoftmax_backward>},
    {"layerNorm", layer_norm}, {"layerNormBackward", layer_norm_backward},
    {"rmsNorm", rms_norm}, {"rmsNormBackward", rms_norm_backward},
    {"logSoftmaxGather", log_softmax_gather}, {"logSoftmaxGatherBackward", log_softmax_gather_backward},
    {"attention", attention}, {"attentionBackward", attention_backward}, {"rope", rope}, {"adamw", adamw},
    {"setThreads", set_threads},
};

// The one callback behind every export; `data` is its Export entry.
napi_value dispatch(napi_env env, napi_callback_info info) {
  void* data = nullptr;
  napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data);
  const auto* e = static_cast<const Export*>(data);
  try {
    Args args(env, info, e->name);
    e->fn(args);
  } catch (const ArgError& err) {
    (err.range ? napi_throw_range_error : napi_throw_type_error)(env, nullptr, err.message.c_str());
  } catch (const std::exception& err) {
    napi_throw_error(env, nullptr, (std::string("native ") + e->name + ": " + err.what()).c_str());
  }
  return nullptr;
}

napi_value threads(napi_env env, napi_callback_info) {
  napi_value v;
  napi_create_int32(env, dpo::num_threads(), &v);
  return v;
}

napi_value init(napi_env env, napi_value exports) {
  dpo::num_threads();  // start the pool now, so its threads are up before the first kernel rather than inside it
  for (const Export& e : kExports) {
    napi_value fn;
    napi_create_function(env, e.name, NAPI_AUTO_LENGTH, dispatch, const_cast<Export*>(&e), &fn);
    napi_set_named_property(env, exports, e.name, fn);
  }
  napi_value fn;
  napi_create_function(env, "threads", NAPI_AUTO_LENGTH, threads, nullptr, &fn);
  napi_set_named_property(env, exports, "threads", fn);
  return exports;
}

}  // namespace
}  // namespace dpo_binding

NAPI_MODULE(NODE_GYP_MODULE_NAME, dpo_binding::init)
