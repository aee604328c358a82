// Differentiable reductions (namespace cxr) over the raw kernels of tensor/reduce.h. Dims lists
// may be empty (= all dims) and negative. Gradients are broadcast back over the reduced dims with
// expand (no copy); every backward is written with differentiable ops, so create_graph works.
#pragma once

#include <vector>

#include "tensor/reduce.h"  // raw::ValuesIndices
#include "tensor/tensor.h"

namespace cxr {

using ValuesIndices = raw::ValuesIndices;

Tensor sum(const Tensor& t, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& t, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Bessel-style `correction` (1 = unbiased, 0 = population).
Tensor var(const Tensor& t, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
Tensor std(const Tensor& t, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
// The gradient is shared evenly between tied extremes (as torch.amax).
Tensor amax(const Tensor& t, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& t, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Values (differentiable: the gradient goes to the selected index) and int64 indices.
ValuesIndices max(const Tensor& t, int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& t, int64_t dim, bool keepdim = false);  // not differentiable
Tensor argmin(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor logsumexp(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim = false);
// (sum |t|^p)^(1/p); p = +-inf gives max / min |t|, p = 0 the count of nonzeros. The gradient at a
// zero norm is 0.
Tensor norm(const Tensor& t, double p = 2.0, const std::vector<int64_t>& dims = {},
            bool keepdim = false);
Tensor cumsum(const Tensor& t, int64_t dim);
// Sums `t` down to `shape` (the reverse of broadcasting); the gradient is expanded back.
Tensor sum_to(const Tensor& t, const Shape& shape);

}  // namespace cxr
