// Host entry points of the CUDA reductions (tensor/cuda/reduce.cu) behind the ops of
// tensor/reduce.h. The raw op (tensor/cpu/reduce.cpp) has validated dims and dtypes, handled empty
// outputs and empty reductions where the op's result does not come from a kernel, and allocated
// the contiguous outputs on the input's device. `reduced[d]` marks the reduced dims of `t`.
// Plain C++ header, included in every build; the functions are defined only where CUDA is built.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace cxr::cuda {

// out <- sum over the reduced dims, divided by `divisor` for floating sums (mean). out has the
// dtype of the sum (the input's for floating inputs, int64 otherwise).
void sum(const Tensor& t, const std::vector<bool>& reduced, const Tensor& out, double divisor);
// out <- variance with `correction` (its square root when `take_sqrt`), two passes as on the CPU.
void var(const Tensor& t, const std::vector<bool>& reduced, const Tensor& out, int64_t correction,
         bool take_sqrt);
// values (dtype of t) and/or indices (int64) of the max or min; either may be undefined. NaN wins
// over numbers; the first index on ties. The reduction must not be empty.
void minmax(const Tensor& t, const std::vector<bool>& reduced, bool is_max, const Tensor& values,
            const Tensor& indices);
// out <- log(sum(exp(t))), max-subtracted (a non-empty reduction).
void logsumexp(const Tensor& t, const std::vector<bool>& reduced, const Tensor& out);
// out <- (sum |t|^p)^(1/p) for finite p (p = 0 counts the nonzeros); max/min |t| for p = +-inf
// (then the reduction must not be empty).
void norm(const Tensor& t, double p, const std::vector<bool>& reduced, const Tensor& out);
// out (t's shape, int64 for integer inputs) <- running sums of t along the normalized dim `dim`.
void cumsum(const Tensor& t, int64_t dim, const Tensor& out);

}  // namespace cxr::cuda
