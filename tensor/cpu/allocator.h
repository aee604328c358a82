// The CPU allocator behind Storage: 64-byte aligned blocks, with a cache of freed large blocks
// keyed by size. Reusing a block avoids the page faults a fresh mmap'd allocation pays on first
// write (measured: a 64 MiB out-of-place add took 21 ms with fresh memory, 3 ms in place), the CPU
// counterpart of the CUDA memory pool. Sanitizer builds bypass the cache so ASan sees every free.
#pragma once

#include <cstddef>

namespace cxr::cpu {

void* allocate(size_t nbytes);
void deallocate(void* ptr, size_t nbytes);

struct AllocatorStats {
  size_t allocated = 0;  // bytes in live blocks
  size_t cached = 0;     // bytes held for reuse
  size_t peak = 0;       // highest `allocated` so far
};
AllocatorStats allocator_stats();
// Returns every cached block to the system.
void empty_cache();

}  // namespace cxr::cpu
