// Differentiable views, copies and dtype conversion (namespace cxr). The geometry is that of the
// raw views in tensor/views.h. A view's output is marked as a view of its input's base
// (AutogradMeta::view_base) when the input requires grad, so an in-place op on it is refused
// instead of silently corrupting gradients. Backward functions are written with these same ops,
// so they can be differentiated again (create_graph).
#pragma once

#include "tensor/tensor.h"

namespace cxr {

// -1 in `shape` is inferred. view() throws when no view is possible; reshape() copies then.
Tensor view(const Tensor& t, const Shape& shape);
Tensor reshape(const Tensor& t, const Shape& shape);
Tensor permute(const Tensor& t, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1);
Tensor squeeze(const Tensor& t);
Tensor squeeze(const Tensor& t, int64_t dim);
Tensor unsqueeze(const Tensor& t, int64_t dim);
// Python slicing t[start:end:step] along dim (negative bounds count from the end, then clamp).
Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& t, int64_t dim, int64_t index);
// Broadcasts size-1 dims to `shape` (-1 keeps a size); the gradient is summed back.
Tensor expand(const Tensor& t, const Shape& shape);
Tensor expand_as(const Tensor& t, const Tensor& other);
Tensor flatten(const Tensor& t, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor unflatten(const Tensor& t, int64_t dim, const Shape& sizes);

// The same data without autograd history (an alias: writes are visible to both).
Tensor detach(const Tensor& t);
// `t` itself when contiguous, else a contiguous copy; the gradient passes through.
Tensor contiguous(const Tensor& t);
// A new contiguous copy; the gradient passes through.
Tensor clone(const Tensor& t);
// Converts to `dtype` (`t` itself when it already has it); the gradient is converted back to the
// input's dtype. Only floating results carry gradients.
Tensor to(const Tensor& t, DType dtype);

}  // namespace cxr
