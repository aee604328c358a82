// The strided N-operand loop behind every elementwise CPU kernel: operands are broadcast to one
// shape, dims that are contiguous for every operand are merged, and the outer rows are split across
// OpenMP threads (each row handled by exactly one thread, so results do not depend on the count).
#pragma once

#include <array>
#include <cstdint>

#include "tensor/tensor.h"

namespace cxr::cpu {

// Strides (in elements) of `t` viewed with shape `shape` under broadcasting (0 where broadcast).
Shape broadcast_strides(const Tensor& t, const Shape& shape);

template <int N>
struct LoopGeometry {
  Shape shape;                      // coalesced; the last dim is the inner row
  std::array<Shape, N> strides;     // per operand, in elements
};

// Builds the coalesced geometry for operands whose strides are already broadcast to `shape`.
template <int N>
LoopGeometry<N> make_geometry(const Shape& shape, const std::array<Shape, N>& strides) {
  LoopGeometry<N> g;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !g.shape.empty();
    for (int i = 0; merge && i < N; ++i)
      merge = g.strides[i].back() == strides[i][d] * shape[d];
    if (merge) {
      g.shape.back() *= shape[d];
      for (int i = 0; i < N; ++i) g.strides[i].back() = strides[i][d];
    } else {
      g.shape.push_back(shape[d]);
      for (int i = 0; i < N; ++i) g.strides[i].push_back(strides[i][d]);
    }
  }
  if (g.shape.empty()) {  // a single element
    g.shape.push_back(1);
    for (int i = 0; i < N; ++i) g.strides[i].push_back(0);
  }
  return g;
}

// Work below this many elements stays on one thread.
inline constexpr int64_t kParallelGrain = 32768;

// Calls row(ptrs, inner_strides, n) for every inner row of the geometry, where ptrs[i] points to
// the row's first element of operand i (typed as T_i* by the caller) and inner_strides[i] is the
// operand's element stride along the row.
template <int N, typename Row>
void for_each_row(const LoopGeometry<N>& g, const std::array<char*, N>& base,
                  const std::array<size_t, N>& elem_size, Row&& row) {
  const int64_t ndim = int64_t(g.shape.size());
  const int64_t inner = g.shape.back();
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < ndim; ++d) rows *= g.shape[d];
  std::array<int64_t, N> inner_stride;
  for (int i = 0; i < N; ++i) inner_stride[i] = g.strides[i].back();

  // Long single rows are cut into chunks so both cores work on a large contiguous op.
  const int64_t chunk = rows == 1 && inner >= 2 * kParallelGrain ? kParallelGrain : inner;
  const int64_t chunks_per_row = (inner + chunk - 1) / chunk;
  const int64_t tasks = rows * chunks_per_row;
  const bool parallel = rows * inner >= kParallelGrain && tasks > 1;

#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t task = 0; task < tasks; ++task) {
    int64_t r = task / chunks_per_row, c = task % chunks_per_row;
    std::array<char*, N> ptrs;
    for (int i = 0; i < N; ++i) {
      int64_t off = 0, rem = r;
      for (int64_t d = ndim - 2; d >= 0; --d) {
        off += (rem % g.shape[d]) * g.strides[i][d];
        rem /= g.shape[d];
      }
      off += c * chunk * inner_stride[i];
      ptrs[i] = base[i] + off * int64_t(elem_size[i]);
    }
    int64_t n = std::min(chunk, inner - c * chunk);
    row(ptrs, inner_stride, n);
  }
}

// Convenience: loop over tensors already broadcast to `shape` (out first by convention).
template <int N, typename Row>
void for_each_row(const Shape& shape, const std::array<const Tensor*, N>& ts, Row&& row) {
  std::array<Shape, N> strides;
  std::array<char*, N> base;
  std::array<size_t, N> elem;
  for (int i = 0; i < N; ++i) {
    strides[i] = broadcast_strides(*ts[i], shape);
    base[i] = static_cast<char*>(ts[i]->data_ptr());
    elem[i] = ts[i]->element_size();
  }
  if (shape_numel(shape) == 0) return;
  for_each_row<N>(make_geometry<N>(shape, strides), base, elem, row);
}

}  // namespace cxr::cpu
