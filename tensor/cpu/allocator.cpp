// Size-keyed caching of large CPU blocks (see allocator.h).
#include "tensor/cpu/allocator.h"

#include <cstdlib>  // std::aligned_alloc, std::free
#include <map>
#include <mutex>
#include <vector>

namespace cxr::cpu {

namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kCacheMinBytes = size_t(1) << 20;  // smaller blocks come from malloc's own bins
constexpr size_t kCacheMaxBytes = size_t(4) << 30;  // never hold more than this for reuse

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCaching = false;
#else
constexpr bool kCaching = true;
#endif

// Process-wide by nature, like the CUDA pool (DESIGN.md allows the device context).
struct Cache {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;
  AllocatorStats stats;
};
// Never destroyed: tensors held by other static objects (a test's cached model, a global
// registry) are freed during static destruction, after a function-local static Cache would be
// gone. The blocks it still holds at exit go back to the OS with the process.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

size_t round_up(size_t n) {
  size_t r = (n + kAlignment - 1) / kAlignment * kAlignment;
  return r == 0 ? kAlignment : r;
}

}  // namespace

void* allocate(size_t nbytes) {
  const size_t size = round_up(nbytes);
  Cache& c = cache();
  if (kCaching && size >= kCacheMinBytes) {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.stats.cached -= size;
      c.stats.allocated += size;
      c.stats.peak = std::max(c.stats.peak, c.stats.allocated);
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlignment, size);
  if (p == nullptr && kCaching) {  // memory held by the cache may be what is missing
    empty_cache();
    p = std::aligned_alloc(kAlignment, size);
  }
  if (p != nullptr) {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.stats.allocated += size;
    c.stats.peak = std::max(c.stats.peak, c.stats.allocated);
  }
  return p;
}

void deallocate(void* ptr, size_t nbytes) {
  if (ptr == nullptr) return;
  const size_t size = round_up(nbytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.allocated -= size;
  if (kCaching && size >= kCacheMinBytes && c.stats.cached + size <= kCacheMaxBytes) {
    c.free_blocks.emplace(size, ptr);
    c.stats.cached += size;
    return;
  }
  std::free(ptr);
}

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [size, p] : c.free_blocks) std::free(p);
  c.free_blocks.clear();
  c.stats.cached = 0;
}

}  // namespace cxr::cpu
