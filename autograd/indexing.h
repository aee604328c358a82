// Differentiable indexing and joining (namespace cxr), over the raw ops of tensor/indexing.h.
// Index, mask and condition tensors are not differentiated. Backward functions are written with
// these same differentiable ops, so they can be differentiated again (create_graph).
#pragma once

#include <vector>

#include "tensor/indexing.h"
#include "tensor/tensor.h"

namespace cxr {

Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& t, int64_t dim, const Tensor& index);
// A copy of `t` with src added at `index` along dim (torch.scatter_add).
Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
// A copy of `t` with src[i] added into slice index[i] along dim (torch.index_add).
Tensor index_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
Tensor masked_fill(const Tensor& t, const Tensor& mask, double value);
// cond ? a : b, broadcast, in the promoted dtype of a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// Mixed dtypes promote (promote_types); each input's gradient comes back in its own dtype.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
// Views of consecutive pieces (each differentiable).
std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim);
std::vector<Tensor> split_with_sizes(const Tensor& t, const std::vector<int64_t>& sizes,
                                     int64_t dim);
std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim);
// `pad` lists (before, after) pairs from the LAST dim, as torch.nn.functional.pad.
Tensor pad(const Tensor& t, const std::vector<int64_t>& pad, PadMode mode = PadMode::Constant,
           double value = 0.0);
Tensor flip(const Tensor& t, const std::vector<int64_t>& dims);
Tensor roll(const Tensor& t, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims);
Tensor repeat(const Tensor& t, const std::vector<int64_t>& repeats);

}  // namespace cxr
