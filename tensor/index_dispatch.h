// Dtype dispatch shared by the CPU and CUDA indexing kernels (tensor/cpu/indexing.cpp,
// tensor/cuda/indexing.cu): pure data movement is instantiated per element SIZE, indices per
// index dtype, so both backends accept exactly the same dtypes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/tensor.h"

namespace cxr::detail {

// Calls fn.template operator()<U>() with U an unsigned integer of `size` bytes; `op` names the
// caller in the error for any other size.
template <typename Fn>
void dispatch_by_size(size_t size, const char* op, Fn&& fn) {
  switch (size) {
    case 1:
      return fn.template operator()<uint8_t>();
    case 2:
      return fn.template operator()<uint16_t>();
    case 4:
      return fn.template operator()<uint32_t>();
    case 8:
      return fn.template operator()<uint64_t>();
  }
  CXR_FAIL(op, ": unsupported element size ", size);
}

// Calls fn.template operator()<I>() with I the C++ type of an int64 or int32 index tensor.
template <typename Fn>
void dispatch_index(const Tensor& index, const char* op, Fn&& fn) {
  if (index.dtype() == kInt64) return fn.template operator()<int64_t>();
  if (index.dtype() == kInt32) return fn.template operator()<int32_t>();
  CXR_FAIL(op, ": index must be int64 or int32, got ", describe(index));
}

}  // namespace cxr::detail
