// Host entry points of the CUDA normalisation and embedding kernels (tensor/cuda/norm.cu,
// tensor/cuda/embedding.cu). The raw ops of tensor/cpu/norm.cpp and tensor/cpu/embedding.cpp
// validate their arguments, convert inputs to the work dtype T (float32, or float64 for float64
// inputs), make them contiguous and allocate the outputs on the device; these functions only run
// the kernels. Statistics and reductions are accumulated in float64 and combined by fixed trees
// (no float atomics), so results are the same run to run; the elementwise steps are the CPU's
// expressions in the same order. Optional tensors (weight, bias) may be undefined. Sizes follow
// the CPU: x [N, C, HW] for group/batch norm, [rows, n] for layer norm. Plain C++ header; the
// functions exist only in CUDA builds.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cxr::cuda {

// mean/rstd [rows] (T); y = (x - mean) * rstd * w + b per row.
void layer_norm(const Tensor& x, const Tensor& y, const Tensor& mean, const Tensor& rstd,
                int64_t rows, int64_t n, const Tensor& w, const Tensor& b, double eps);
// dx (T, x's shape); dw/db float64 [n] (column sums over the rows).
void layer_norm_backward(const Tensor& g, const Tensor& x, const Tensor& dx, const Tensor& mean,
                         const Tensor& rstd, const Tensor& w, int64_t rows, int64_t n,
                         const Tensor& dw, const Tensor& db);

// mean/rstd [N, groups] (T); y = act((x - mean) * rstd * w[c] + b[c]), act = SiLU when `silu`.
void group_norm(const Tensor& x, const Tensor& y, const Tensor& mean, const Tensor& rstd, int64_t n,
                int64_t c, int64_t hw, int64_t groups, const Tensor& w, const Tensor& b, double eps,
                bool silu);
// dx (T); dw/db float64 [C].
void group_norm_backward(const Tensor& g, const Tensor& x, const Tensor& dx, const Tensor& mean,
                         const Tensor& rstd, const Tensor& w, const Tensor& b, int64_t n, int64_t c,
                         int64_t hw, int64_t groups, bool silu, const Tensor& dw, const Tensor& db);

// Batch statistics per channel: mean/rstd [C] (T) and the population variance var [C] (float64).
void batch_norm_stats(const Tensor& x, int64_t n, int64_t c, int64_t hw, double eps,
                      const Tensor& mean, const Tensor& rstd, const Tensor& var);
// rstd [C] (T) <- 1 / sqrt(var + eps) from float64 var [C] (evaluation mode).
void batch_norm_rstd(const Tensor& var, double eps, const Tensor& rstd);
// run[c] <- (1 - momentum) run[c] + momentum * (batch[c] * scale) in float64, run any floating
// dtype and stride (1-D [C]), batch float64 contiguous.
void batch_norm_update_running(const Tensor& run, const Tensor& batch, double momentum,
                               double scale);
// y = x * (rstd[c] w[c]) + (b[c] - mean[c] rstd[c] w[c]).
void batch_norm_apply(const Tensor& x, const Tensor& y, const Tensor& mean, const Tensor& rstd,
                      int64_t n, int64_t c, int64_t hw, const Tensor& w, const Tensor& b);
// dx (T); dw/db float64 [C]. Eval mode (training false): dx = g w rstd.
void batch_norm_backward(const Tensor& g, const Tensor& x, const Tensor& dx, const Tensor& mean,
                         const Tensor& rstd, const Tensor& w, int64_t n, int64_t c, int64_t hw,
                         bool training, const Tensor& dw, const Tensor& db);

// out [count, dim] <- rows indices[i] of weight [num, dim] (indices int32/int64, contiguous,
// checked by the caller; weight contiguous of any dtype).
void embedding(const Tensor& weight, const Tensor& indices, const Tensor& out);
// out [num, dim] (grad's dtype, zero-initialised by the caller) <- sum of grad rows per index.
// rows/offsets/positions describe the indices grouped by row on the device (int64, built on the
// host): row rows[q] collects grad rows positions[offsets[q] .. offsets[q+1]), in increasing
// position order, so every sum is in index order, as on the CPU.
void embedding_backward(const Tensor& grad, const Tensor& rows, const Tensor& offsets,
                        const Tensor& positions, const Tensor& out);

}  // namespace cxr::cuda
