// Indexing and joining. Index tensors are int64 (int32 accepted); out-of-range indices throw.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace cxr {
// Declared in cxr (not cxr::raw) so that argument-dependent lookup of an unqualified pad(t, w,
// PadMode::X) inside namespace cxr finds only the differentiable cxr::pad.
enum class PadMode { Constant, Reflect, Replicate };
}  // namespace cxr

namespace cxr::raw {

using ::cxr::PadMode;

Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index);
// out[i][j] = t[index[i][j]][j] for dim 0, etc. (torch.gather).
Tensor gather(const Tensor& t, int64_t dim, const Tensor& index);
// A copy of `t` with src added at `index` along dim (torch.scatter_add).
Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
// Adds src[i] into t[index[i]] along dim, in place (index_add_, used by index_select backward).
void index_add_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
Tensor masked_fill(const Tensor& t, const Tensor& mask, double value);
// cond ? a : b with broadcasting; cond is bool (or any dtype, nonzero = true).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
// Views of consecutive pieces of `split_size` (the last may be shorter).
std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim);
std::vector<Tensor> split_with_sizes(const Tensor& t, const std::vector<int64_t>& sizes,
                                     int64_t dim);
std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim);

// `pad` lists (before, after) pairs starting from the LAST dim, as torch.nn.functional.pad.
Tensor pad(const Tensor& t, const std::vector<int64_t>& pad, PadMode mode = PadMode::Constant,
           double value = 0.0);
Tensor flip(const Tensor& t, const std::vector<int64_t>& dims);
Tensor roll(const Tensor& t, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims);
// Tiles the tensor `repeats[i]` times along dim i (torch.Tensor.repeat).
Tensor repeat(const Tensor& t, const std::vector<int64_t>& repeats);

}  // namespace cxr::raw
