// Which backends this build has, and the device check shared by every op. An op routes to its CUDA
// kernel with
//
//   if constexpr (kCudaBuilt)
//     if (x.device().is_cuda()) return cuda::unary(op, x);
//
// In a build without CUDA the branch is a discarded statement, so the cuda:: entry points it names
// need no definition there (they live in tensor/cuda/*.cu) and no preprocessor is needed at the
// call site.
#pragma once

#include <initializer_list>

#include "tensor/tensor.h"

namespace cxr {

#ifdef CXR_WITH_CUDA
inline constexpr bool kCudaBuilt = true;
#else
inline constexpr bool kCudaBuilt = false;
#endif

// The device of the defined tensors among `tensors` (undefined ones are skipped; cpu when none is
// defined). Throws naming `op`, the tensors and their devices when they are not all on one device.
Device common_device(const char* op, std::initializer_list<Tensor> tensors);

}  // namespace cxr
