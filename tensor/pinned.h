// Pinned (page-locked) host memory: tensors whose pages the OS keeps resident, so that a copy to a
// GPU can run asynchronously (DMA) instead of through a staging buffer. The data loader puts its
// batches there when asked (data/loader.h: LoaderOptions::pin_memory).
//
// The pages are locked with mlock(2), which works without a GPU (and is what the tests check);
// when the build has CUDA and a device is usable, the buffer is also registered with the CUDA
// runtime (cudaHostRegister), which is what makes cudaMemcpyAsync treat it as pinned. Locked
// memory counts against RLIMIT_MEMLOCK (`ulimit -l`): exceeding it is a cxr::Error saying so.
#pragma once

#include "tensor/tensor.h"

namespace cxr {

// An uninitialised contiguous CPU tensor in pinned memory.
Tensor empty_pinned(const Shape& shape, DType dtype);
// A pinned copy of `t` (any layout, any device the copy supports).
Tensor pin(const Tensor& t);
// True when `t`'s storage was allocated by empty_pinned.
bool is_pinned(const Tensor& t);
// Whether pinned buffers are also registered with CUDA in this process (a usable device).
bool pinned_registered_with_cuda();

}  // namespace cxr
