// Checked argument access for binding.cc (Node-API C API): typed arrays of the right element type and length,
// integers, booleans, op names, and the extents of strided and batched operands. Every failed check throws an
// ArgError naming the kernel, the argument and what was expected; binding.cc turns it into a TypeError/RangeError.
// Legend: extent = the number of elements an operand must have for the dims given.
#pragma once
#include <node_api.h>

#include <cmath>
#include <exception>
#include <initializer_list>
#include <string>

#include "kernels.h"

namespace dpo_binding {

using dpo::Dims;

struct ArgError {
  bool range;  // RangeError (a size or value) rather than TypeError (a type)
  std::string message;
};

constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 − 1: the largest integer a JS number holds exactly

inline const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    default: return "another typed array";
  }
}

// The arguments of one kernel call, with checked accessors. Accessors throw ArgError.
class Args {
 public:
  Args(napi_env env, napi_callback_info info, const char* kernel) : env_(env), kernel_(kernel) {
    napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr);
  }

  [[noreturn]] void fail(bool range, size_t i, const char* name, const std::string& what) const {
    throw ArgError{range, std::string("native ") + kernel_ + ": argument " + std::to_string(i) + " '" + name + "' " + what};
  }

  // A typed array of `type` with at least min_len elements; *len (if given) receives its length.
  void* typed(size_t i, const char* name, napi_typedarray_type type, int64_t min_len, bool nullable, int64_t* len = nullptr) {
    napi_value v = arg(i);
    napi_valuetype vt;
    napi_typeof(env_, v, &vt);
    if (nullable && (vt == napi_null || vt == napi_undefined)) return nullptr;
    bool is_typed = false;
    napi_is_typedarray(env_, v, &is_typed);
    const std::string expected = typed_array_name(type);
    if (!is_typed) fail(false, i, name, "must be a " + expected + (nullable ? " or null" : ""));
    napi_typedarray_type t;
    size_t length = 0;
    void* data = nullptr;
    napi_get_typedarray_info(env_, v, &t, &length, &data, nullptr, nullptr);
    if (t != type) fail(false, i, name, "must be a " + expected + ", got a " + typed_array_name(t));
    if (static_cast<int64_t>(length) < min_len) {
      fail(true, i, name, "has " + std::to_string(length) + " elements; the dims need at least " + std::to_string(min_len));
    }
    if (len != nullptr) *len = static_cast<int64_t>(length);
    return data;
  }
  float* f32(size_t i, const char* name, int64_t min_len, int64_t* len = nullptr) {
    return static_cast<float*>(typed(i, name, napi_float32_array, min_len, false, len));
  }
  float* f32_or_null(size_t i, const char* name, int64_t min_len) {
    return static_cast<float*>(typed(i, name, napi_float32_array, min_len, true));
  }
  int32_t* i32(size_t i, const char* name, int64_t min_len, int64_t* len = nullptr) {
    return static_cast<int32_t*>(typed(i, name, napi_int32_array, min_len, false, len));
  }

  double number(size_t i, const char* name) {
    double d = 0;
    if (napi_get_value_double(env_, arg(i), &d) != napi_ok) fail(false, i, name, "must be a number");
    return d;
  }
  // An integer in [lo, 2^53); dims use lo = 0, strides may be negative.
  int64_t integer(size_t i, const char* name, double lo = 0) {
    const double d = number(i, name);
    if (!(d >= lo && d <= kMaxSafe) || std::floor(d) != d) {
      fail(true, i, name, "must be an integer >= " + std::to_string(static_cast<int64_t>(lo)) + ", got " + std::to_string(d));
    }
    return static_cast<int64_t>(d);
  }
  bool boolean(size_t i, const char* name) {
    bool b = false;
    if (napi_get_value_bool(env_, arg(i), &b) != napi_ok) fail(false, i, name, "must be a boolean");
    return b;
  }
  std::string str(size_t i, const char* name) {
    char buf[32];
    size_t n = 0;
    if (napi_get_value_string_utf8(env_, arg(i), buf, sizeof buf, &n) != napi_ok) fail(false, i, name, "must be a string");
    return std::string(buf, n);
  }
  // A JS array of integers (a shape when lo = 0, strides when lo < 0).
  Dims int_array(size_t i, const char* name, double lo) {
    napi_value v = arg(i);
    bool is_array = false;
    napi_is_array(env_, v, &is_array);
    if (!is_array) fail(false, i, name, "must be an array of integers");
    uint32_t n = 0;
    napi_get_array_length(env_, v, &n);
    Dims out(n);
    for (uint32_t j = 0; j < n; ++j) {
      napi_value e;
      napi_get_element(env_, v, j, &e);
      double d = 0;
      if (napi_get_value_double(env_, e, &d) != napi_ok || !(d >= lo && d <= kMaxSafe && -d <= kMaxSafe) ||
          std::floor(d) != d) {
        fail(true, i, name, "element " + std::to_string(j) + " must be an integer >= " + std::to_string(static_cast<int64_t>(lo)));
      }
      out[j] = static_cast<int64_t>(d);
    }
    return out;
  }

  // a·b, refusing anything past 2^53 (no real tensor is that big; it guards the size checks from overflow).
  int64_t mul(int64_t a, int64_t b) const {
    if (a != 0 && b > static_cast<int64_t>(kMaxSafe) / a) {
      throw ArgError{true, std::string("native ") + kernel_ + ": sizes overflow (" + std::to_string(a) + " x " + std::to_string(b) + ")"};
    }
    return a * b;
  }
  int64_t mul(std::initializer_list<int64_t> xs) const {
    int64_t p = 1;
    for (int64_t x : xs) p = mul(p, x);
    return p;
  }
  int64_t numel(const Dims& shape) const {
    int64_t p = 1;
    for (int64_t s : shape) p = mul(p, s);
    return p;
  }
  // True when argument i is an Int32Array (kernels that also move int32 data pick their variant by it).
  bool is_int32(size_t i) {
    napi_value v = arg(i);
    bool is_typed = false;
    napi_is_typedarray(env_, v, &is_typed);
    if (!is_typed) return false;
    napi_typedarray_type t;
    napi_get_typedarray_info(env_, v, &t, nullptr, nullptr, nullptr, nullptr);
    return t == napi_int32_array;
  }
  const char* kernel() const { return kernel_; }

 private:
  napi_value arg(size_t i) {
    if (i >= argc_) {
      throw ArgError{false, std::string("native ") + kernel_ + ": expected at least " + std::to_string(i + 1) + " arguments, got " + std::to_string(argc_)};
    }
    return argv_[i];
  }

  napi_env env_;
  const char* kernel_;
  size_t argc_ = 16;
  napi_value argv_[16];
};

// Elements a strided view needs: 1 + the largest offset it reaches, after checking the smallest is >= 0.
// Returns 0 for an empty shape product.
inline int64_t strided_extent(Args& a, size_t shape_i, const Dims& shape, const Dims& strides, int64_t offset) {
  if (shape.size() != strides.size()) {
    throw ArgError{true, std::string("native ") + a.kernel() + ": argument " + std::to_string(shape_i + 1) +
                             " has " + std::to_string(strides.size()) + " strides for a shape of rank " + std::to_string(shape.size())};
  }
  int64_t lo = offset, hi = offset;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return 0;
    const int64_t span = a.mul(shape[d] - 1, strides[d] < 0 ? -strides[d] : strides[d]);
    (strides[d] < 0 ? lo : hi) += strides[d] < 0 ? -span : span;
  }
  if (lo < 0) throw ArgError{true, std::string("native ") + a.kernel() + ": the strided view reaches offset " + std::to_string(lo) + " < 0"};
  return hi + 1;
}

// Elements a batched operand needs: (batch − 1)·stride + size, or 0 when empty.
inline int64_t batched_extent(Args& a, int64_t batch, int64_t stride, int64_t size) {
  return batch == 0 || size == 0 ? 0 : a.mul(batch - 1, stride) + size;
}

template <class Op>
Op op_by_name(Args& a, size_t i, const char* const* names, int count) {
  const std::string s = a.str(i, "op");
  for (int j = 0; j < count; ++j) {
    if (s == names[j]) return static_cast<Op>(j);
  }
  a.fail(true, i, "op", "is not a known op: '" + s + "'");
}

inline const char* const kUnaryNames[] = {"neg", "exp", "log", "tanh", "sqrt", "rsqrt", "sigmoid", "silu", "gelu", "relu", "abs", "square"};
inline const char* const kBinaryNames[] = {"add", "sub", "mul", "div", "maximum", "minimum", "eq", "gt"};

}  // namespace dpo_binding
