// Host entry points of the CUDA pooling and upsampling kernels (tensor/cuda/pool.cu), called by the
// raw ops of tensor/cpu/pool.cpp after their validation: tensors are contiguous, on one CUDA
// device, of one floating dtype (indices int64), and outputs are allocated with the shapes the
// geometry gives. Backward kernels use the gather formulation (each input element sums, in output
// order, the output elements that read it): deterministic, no atomics, and no zero-fill of grad_in
// needed. Plain C++ header, present only in CUDA builds.
#pragma once

#include <cstdint>

#include "tensor/conv.h"

namespace cxr::cuda {

// planes (n, c) of in_h x in_w input become planes of out_h x out_w output.
struct PlaneGeometry {
  int64_t planes, in_h, in_w, out_h, out_w;
};

void max_pool2d(const Tensor& x, const Tensor& out, const Tensor& indices, const PlaneGeometry& s,
                const Pool2dParams& p);
// `indices` are in range (checked by the caller). The window geometry is not passed (the raw op
// does not take it): the candidate outputs of each input element come from the indices themselves.
void max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_in,
                         const PlaneGeometry& s);
void avg_pool2d(const Tensor& x, const Tensor& out, const PlaneGeometry& s, const Pool2dParams& p);
void avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_in, const PlaneGeometry& s,
                         const Pool2dParams& p);
void adaptive_avg_pool2d(const Tensor& x, const Tensor& out, const PlaneGeometry& s);
void adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_in,
                                  const PlaneGeometry& s);
void upsample_nearest2d(const Tensor& x, const Tensor& out, const PlaneGeometry& s);
void upsample_nearest2d_backward(const Tensor& grad_out, const Tensor& grad_in,
                                 const PlaneGeometry& s);
void upsample_bilinear2d(const Tensor& x, const Tensor& out, const PlaneGeometry& s,
                         bool align_corners);
void upsample_bilinear2d_backward(const Tensor& grad_out, const Tensor& grad_in,
                                  const PlaneGeometry& s, bool align_corners);

}  // namespace cxr::cuda
