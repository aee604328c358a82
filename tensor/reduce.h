// Reductions over any set of dims (empty list = all dims), with keepdim. Float inputs accumulate
// in double-free pairwise/blocked float sums whose order does not depend on the thread count;
// float64 accumulates in double; integer sums give int64.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace cxr::raw {

Tensor sum(const Tensor& t, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& t, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance with Bessel-style `correction` (1 = unbiased, 0 = population).
Tensor var(const Tensor& t, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
Tensor std(const Tensor& t, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
Tensor amax(const Tensor& t, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& t, const std::vector<int64_t>& dims = {}, bool keepdim = false);
struct ValuesIndices {
  Tensor values;
  Tensor indices;  // int64; the first occurrence on ties
};
ValuesIndices max(const Tensor& t, int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& t, int64_t dim, bool keepdim = false);
// log(sum(exp(t))) computed stably (max subtracted).
Tensor logsumexp(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim = false);
// (sum |t|^p)^(1/p); p = inf gives max |t|.
Tensor norm(const Tensor& t, double p = 2.0, const std::vector<int64_t>& dims = {},
            bool keepdim = false);
Tensor cumsum(const Tensor& t, int64_t dim);
// Sums `t` down to `shape` (the reverse of broadcasting), used for gradients of broadcast ops.
Tensor sum_to(const Tensor& t, const Shape& shape);

}  // namespace cxr::raw
