// Device memory for Storage: a stream-ordered pool per device (cudaMallocAsync on the device's
// stream, with the pool's release threshold at its maximum so freed memory stays reserved and is
// reused — no cudaMalloc/cudaFree in a training loop's steady state). Plain C++ header; defined in
// tensor/cuda/allocator.cu.
#pragma once

#include <cstddef>
#include <string>

namespace cxr::cuda {

// nbytes (>0) on `device`. Throws cxr::Error on out-of-memory naming the request and the pool's
// state (allocated, reserved, free/total on the device).
void* allocate(size_t nbytes, int device);
// Returns a block in stream order (safe while kernels that use it are still queued).
void deallocate(void* ptr, size_t nbytes, int device);

struct MemoryStats {
  size_t allocated = 0;    // bytes in live tensors' blocks
  size_t peak = 0;         // highest `allocated` since the start or the last reset_peak_memory
  size_t reserved = 0;     // bytes the pool holds from the driver (live + cached)
  size_t allocations = 0;  // number of allocate() calls since the start
};
MemoryStats memory_stats(int device);
void reset_peak_memory(int device);
// Returns the pool's unused memory to the driver (after synchronising the device).
void empty_cache(int device);
// "allocated 1.2 GiB (peak 3.4 GiB), reserved 4.0 GiB; device: 70.1 GiB free of 79.1 GiB".
std::string memory_summary(int device);

}  // namespace cxr::cuda
