// Pooling test cases shared by the CPU and CUDA pooling tests: parameter construction, a
// channels-last copy, and the parameter sets that have PyTorch golden values.
#pragma once

#include <utility>
#include <vector>

#include "tensor/ops.h"

namespace cxr::test {

// Pool2dParams from its fields (dilation 1, floor mode, padding counted unless told).
raw::Pool2dParams pool_params(raw::Int2 kernel, raw::Int2 stride, raw::Int2 padding,
                              raw::Int2 dilation = {1, 1}, bool ceil_mode = false,
                              bool count_include_pad = true);
// The same values in a non-contiguous (channels-last) layout, on the tensor's device (3-D or 4-D).
Tensor channels_last_copy(const Tensor& t);

// The max_pool2d / avg_pool2d parameter sets with PyTorch golden values (tests/golden/gen_conv.py,
// keys "maxpool_<name>." / "avgpool_<name>."): tests/tensor/test_pool.cpp checks them against the
// fixture and test_cuda_pool.cpp runs them (and more) on CUDA against the CPU.
using PoolCase = std::pair<const char*, raw::Pool2dParams>;
const std::vector<PoolCase>& golden_max_pool_cases();
const std::vector<PoolCase>& golden_avg_pool_cases();

}  // namespace cxr::test
