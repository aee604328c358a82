// Pinned host memory (pinned.h): page-aligned, mlock'ed, and registered with CUDA when a device
// is usable. Live buffers are kept in a registry so that is_pinned() can tell them apart.
#include "tensor/pinned.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_set>

#include "tensor/creation.h"
#include "tensor/cuda/runtime.h"
#include "tensor/error.h"
#include "tensor/storage.h"

namespace cxr {

namespace {

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::unordered_set<const void*>& registry() {
  static auto* live = new std::unordered_set<const void*>;  // immortal: freed buffers may outlive
  return *live;                                             // static destruction order
}

bool cuda_usable() {
#ifdef CXR_WITH_CUDA
  static const bool usable = cuda::device_count_or_zero() > 0;
  return usable;
#else
  return false;
#endif
}

void release_pinned(void* data, size_t nbytes, bool registered) {
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    registry().erase(data);
  }
#ifdef CXR_WITH_CUDA
  if (registered) cuda::host_unregister(data);
#else
  (void)registered;
#endif
  munlock(data, nbytes);
  std::free(data);
}

}  // namespace

bool pinned_registered_with_cuda() {
  return cuda_usable();
}

Tensor empty_pinned(const Shape& shape, DType dtype) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t nbytes = size_t(shape_numel(shape)) * dtype_size(dtype);
  const size_t rounded = std::max(page, (nbytes + page - 1) / page * page);
  void* data = std::aligned_alloc(page, rounded);
  CXR_CHECK(data, "empty_pinned: cannot allocate ", rounded, " bytes");
  if (mlock(data, rounded) != 0) {
    const int err = errno;
    std::free(data);
    rlimit limit{};
    getrlimit(RLIMIT_MEMLOCK, &limit);
    CXR_FAIL("empty_pinned: cannot lock ", rounded, " bytes in memory (", std::strerror(err),
             "); locked memory is limited to ",
             limit.rlim_cur == RLIM_INFINITY ? std::string("unlimited")
                                             : std::to_string(limit.rlim_cur) + " bytes",
             " by RLIMIT_MEMLOCK (raise it with `ulimit -l`, or do not ask for pinned memory)");
  }
  bool registered = false;
#ifdef CXR_WITH_CUDA
  if (cuda_usable()) {
    std::string error;
    registered = cuda::host_register(data, rounded, &error);
    if (!registered) {
      munlock(data, rounded);
      std::free(data);
      CXR_FAIL("empty_pinned: cudaHostRegister of ", rounded, " bytes failed: ", error);
    }
  }
#endif
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    registry().insert(data);
  }
  auto storage = std::make_shared<Storage>(
      data, nbytes, Device::cpu(),
      [rounded, registered](void* p) { release_pinned(p, rounded, registered); });
  return Tensor(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

Tensor pin(const Tensor& t) {
  CXR_CHECK(t.device().is_cpu(), "pin: the tensor is on ", t.device().str(),
            "; only host memory can be pinned");
  Tensor out = empty_pinned(t.sizes(), t.dtype());
  raw::copy_(out, t);
  return out;
}

bool is_pinned(const Tensor& t) {
  if (!t.defined() || !t.storage()) return false;
  std::lock_guard<std::mutex> lock(registry_mutex());
  return registry().count(t.storage()->data()) > 0;
}

}  // namespace cxr
