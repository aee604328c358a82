// Views: new geometry over the same storage, never a copy (reshape copies only when the strides
// make a view impossible, like torch.reshape; view() refuses instead).
#pragma once

#include "tensor/tensor.h"

namespace cxr::raw {

// -1 in `shape` is inferred. Throws when numel differs or (view) when no view is possible.
Tensor view(const Tensor& t, const Shape& shape);
Tensor reshape(const Tensor& t, const Shape& shape);
Tensor permute(const Tensor& t, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1);
Tensor squeeze(const Tensor& t);               // all size-1 dims
Tensor squeeze(const Tensor& t, int64_t dim);  // that dim if it has size 1
Tensor unsqueeze(const Tensor& t, int64_t dim);
// Elements start, start+step, ... < end along dim (end clamped to the size, as Python slicing).
Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length);
// One index along dim, removing the dim.
Tensor select(const Tensor& t, int64_t dim, int64_t index);
// Broadcasts size-1 dims (stride 0) to `shape`; -1 keeps a size; new leading dims allowed.
Tensor expand(const Tensor& t, const Shape& shape);
Tensor flatten(const Tensor& t, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor unflatten(const Tensor& t, int64_t dim, const Shape& sizes);
// A new handle on the same storage and geometry, without autograd data (what backward functions
// capture of their own outputs).
Tensor alias(const Tensor& t);
// A view with explicit geometry (bounds-checked against the storage).
Tensor as_strided(const Tensor& t, const Shape& sizes, const Shape& strides, int64_t offset);

}  // namespace cxr::raw
