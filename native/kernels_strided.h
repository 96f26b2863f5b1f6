// Strided loop nests for stridedCopy, stridedAccumulate and binary (internal). The logical tensor is a contiguous
// `shape`; each of K operands reads it through its own strides. Dims are collapsed first (size-1 dims dropped,
// neighbours fused where every operand allows), so a plain slice, a bias broadcast or a same-shape op becomes one
// long inner run; the nest then walks rows of the innermost dim, in parallel chunks when large.
// Legend: rank the collapsed number of dims; inner the innermost size; rows = size / inner.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "kernels.h"
#include "kernels_common.h"

namespace dpo {

template <int K>
struct StridedNest {
  Dims shape;                                   // collapsed, innermost last; empty for a single element
  std::vector<std::array<int64_t, K>> strides;  // strides[d][k]: operand k's stride along dim d
  int64_t size = 1;

  int64_t inner() const { return shape.empty() ? 1 : shape.back(); }
  std::array<int64_t, K> inner_strides() const {
    return shape.empty() ? std::array<int64_t, K>{} : strides.back();
  }
};

template <int K>
StridedNest<K> collapse(const Dims& shape, const std::array<const Dims*, K>& operand_strides) {
  StridedNest<K> nest;
  for (size_t d = 0; d < shape.size(); ++d) {
    nest.size *= shape[d];
    if (shape[d] == 1) continue;
    std::array<int64_t, K> s;
    for (int k = 0; k < K; ++k) s[k] = (*operand_strides[k])[d];
    if (!nest.shape.empty()) {
      // Fuse into the previous dim when, for every operand, stepping the previous dim = stepping this one shape[d] times.
      bool fusable = true;
      for (int k = 0; k < K; ++k) fusable = fusable && nest.strides.back()[k] == s[k] * shape[d];
      if (fusable) {
        nest.shape.back() *= shape[d];
        nest.strides.back() = s;
        continue;
      }
    }
    nest.shape.push_back(shape[d]);
    nest.strides.push_back(s);
  }
  return nest;
}

// Calls row(out_start, offsets) for every row of the nest, where out_start = row · inner indexes the contiguous
// output and offsets[k] = base[k] + Σ idx_d·strides[d][k] over the outer dims. Rows are split across the pool
// unless `serial` (e.g. when the rows' writes may overlap).
template <int K, class RowFn>
void for_each_row(const StridedNest<K>& nest, const std::array<int64_t, K>& base, bool serial, RowFn row) {
  if (nest.size == 0) return;
  const int64_t inner = nest.inner();
  const int64_t rows = nest.size / inner;
  const int outer_rank = nest.shape.empty() ? 0 : static_cast<int>(nest.shape.size()) - 1;
  auto run = [&](int64_t begin, int64_t end) {
    // Odometer over the outer dims, started at row `begin`.
    Dims idx(outer_rank, 0);
    std::array<int64_t, K> off = base;
    int64_t r = begin;
    for (int d = outer_rank - 1; d >= 0; --d) {
      idx[d] = r % nest.shape[d];
      r /= nest.shape[d];
      for (int k = 0; k < K; ++k) off[k] += idx[d] * nest.strides[d][k];
    }
    for (int64_t rr = begin; rr < end; ++rr) {
      row(rr * inner, off);
      for (int d = outer_rank - 1; d >= 0; --d) {
        for (int k = 0; k < K; ++k) off[k] += nest.strides[d][k];
        if (++idx[d] < nest.shape[d]) break;
        for (int k = 0; k < K; ++k) off[k] -= nest.strides[d][k] * nest.shape[d];
        idx[d] = 0;
      }
    }
  };
  if (serial) {
    run(0, rows);
  } else {
    parallel_rows(rows, inner, run);
  }
}

}  // namespace dpo
