// Memory-movement kernels: fill, strided copy / accumulate (slices, permutes, broadcasts), and the embedding pair
// gatherRows / scatterAddRows. Pure data movement, no arithmetic beyond the accumulating adds.
// Legend: N rows (ids), C channels (row length), V table rows; shape/strides per the strided nest.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "kernels_common.h"
#include "kernels_strided.h"

namespace dpo {

void fill(float* out, int64_t n, float value) {
  parallel_rows(n, 1, [&](int64_t begin, int64_t end) { std::fill(out + begin, out + end, value); });
}

template <class T>
static void strided_copy_impl(T* out, const T* x, const Dims& shape, const Dims& x_strides, int64_t x_offset) {
  const StridedNest<1> nest = collapse<1>(shape, {&x_strides});
  const int64_t inner = nest.inner();
  const int64_t stride = nest.inner_strides()[0];
  for_each_row<1>(nest, {x_offset}, false, [&](int64_t o, const std::array<int64_t, 1>& off) {
    const T* src = x + off[0];
    T* dst = out + o;
    if (stride == 1) {
      std::memcpy(dst, src, static_cast<size_t>(inner) * sizeof(T));
    } else if (stride == 0) {
      std::fill(dst, dst + inner, *src);
    } else {
      for (int64_t j = 0; j < inner; ++j) dst[j] = src[j * stride];
    }
  });
}

void strided_copy(float* out, const float* x, const Dims& shape, const Dims& x_strides, int64_t x_offset) {
  strided_copy_impl(out, x, shape, x_strides, x_offset);
}

void strided_copy(int32_t* out, const int32_t* x, const Dims& shape, const Dims& x_strides, int64_t x_offset) {
  strided_copy_impl(out, x, shape, x_strides, x_offset);
}

// True when distinct indices of the nest land on distinct offsets, so rows may be written in parallel.
// Sufficient test: sorted by |stride|, each stride exceeds the span of all smaller dims.
static bool is_injective(const StridedNest<1>& nest) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (|stride|, size)
  for (size_t d = 0; d < nest.shape.size(); ++d) dims.emplace_back(std::llabs(nest.strides[d][0]), nest.shape[d]);
  std::sort(dims.begin(), dims.end());
  int64_t span = 0;  // largest offset reachable with the dims seen so far
  for (const auto& [stride, size] : dims) {
    if (stride <= span) return false;
    span += stride * (size - 1);
  }
  return true;
}

void strided_accumulate(float* out, const float* x, const Dims& shape, const Dims& out_strides, int64_t out_offset) {
  const StridedNest<1> nest = collapse<1>(shape, {&out_strides});
  const int64_t inner = nest.inner();
  const int64_t stride = nest.inner_strides()[0];
  for_each_row<1>(nest, {out_offset}, !is_injective(nest), [&](int64_t o, const std::array<int64_t, 1>& off) {
    float* dst = out + off[0];
    const float* src = x + o;
    if (stride == 1) {
      for (int64_t j = 0; j < inner; ++j) dst[j] += src[j];
    } else {
      for (int64_t j = 0; j < inner; ++j) dst[j * stride] += src[j];
    }
  });
}

void gather_rows(float* out, const float* table, const int32_t* ids, int64_t n, int64_t c) {
  parallel_rows(n, c, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      std::memcpy(out + i * c, table + static_cast<int64_t>(ids[i]) * c, static_cast<size_t>(c) * sizeof(float));
    }
  });
}

// Rows of `table` may repeat in ids, so threads split the C columns instead of the N rows: no two threads touch
// the same float, and each row's adds keep the order of ids.
void scatter_add_rows(float* table, const float* src, const int32_t* ids, int64_t n, int64_t c) {
  constexpr int64_t kColumnBlock = 64;  // floats per task unit: a few cache lines, so threads do not share lines
  const int64_t blocks = (c + kColumnBlock - 1) / kColumnBlock;
  parallel_rows(blocks, n * kColumnBlock, [&](int64_t begin, int64_t end) {
    const int64_t j0 = begin * kColumnBlock, j1 = std::min(c, end * kColumnBlock);
    for (int64_t i = 0; i < n; ++i) {
      float* dst = table + static_cast<int64_t>(ids[i]) * c;
      const float* s = src + i * c;
      for (int64_t j = j0; j < j1; ++j) dst[j] += s[j];
    }
  });
}

}  // namespace dpo
