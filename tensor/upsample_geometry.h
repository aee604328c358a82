// Source-coordinate formulas of nearest and linear upsampling, shared by the CPU kernels
// (tensor/cpu/pool.cpp) and the CUDA kernels (tensor/cuda/pool.cu) so that both backends read the
// same input cells with the same weights. After PyTorch aten/src/ATen/native/UpSample.h
// (nearest_idx, area_pixel_compute_source_index, guard_index_and_lambda).
#pragma once

#include <cmath>
#include <cstdint>

#include "tensor/macros.h"  // CXR_HD

namespace cxr::detail {

// torch 'nearest': src = min(floor(dst * (in / out)), in - 1), with the scale and the product in
// float as PyTorch computes them (and the exact shortcuts for equal and doubled sizes).
CXR_HD int64_t nearest_source(int64_t dst, int64_t in, int64_t out) {
  if (out == in) return dst;
  if (out == 2 * in) return dst >> 1;
  const float scale = float(in) / float(out);
  const int64_t src = int64_t(std::floor(float(dst) * scale));
  return src < in - 1 ? src : in - 1;
}

// The two source taps i[0], i[1] and their weights l[0], l[1] of one output coordinate of a linear
// interpolation, in the compute type C.
template <typename C>
struct LinearTap {
  int64_t i[2];
  C l[2];
};
template <typename C>
CXR_HD LinearTap<C> linear_tap(int64_t dst, int64_t in, int64_t out, bool align_corners) {
  C src;
  if (align_corners) {
    const C scale = out > 1 ? C(in - 1) / C(out - 1) : C(0);
    src = scale * C(dst);
  } else {
    const C scale = C(in) / C(out);
    src = scale * (C(dst) + C(0.5)) - C(0.5);
    if (src < C(0)) src = C(0);
  }
  int64_t i0 = int64_t(std::floor(src));
  if (i0 > in - 1) i0 = in - 1;
  C l1 = src - C(i0);
  l1 = l1 < C(0) ? C(0) : l1 > C(1) ? C(1) : l1;
  return {{i0, i0 + (i0 < in - 1 ? 1 : 0)}, {C(1) - l1, l1}};
}

}  // namespace cxr::detail
