// Allocation for Storage: the CPU caching allocator (64-byte aligned for AVX-512 loads) or the
// device's stream-ordered pool (tensor/cuda/allocator.h).
#include "tensor/storage.h"

#include "tensor/backend.h"
#include "tensor/cpu/allocator.h"
#include "tensor/cuda/allocator.h"
#include "tensor/error.h"

namespace cxr {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  check_device_available(device);
  if constexpr (kCudaBuilt) {
    if (device.is_cuda()) {
      const int index = device.index;
      data_ = nbytes > 0 ? cuda::allocate(nbytes, index) : nullptr;
      release_ = [nbytes, index](void* p) { cuda::deallocate(p, nbytes, index); };
      return;
    }
  }
  data_ = cpu::allocate(nbytes);
  CXR_CHECK(data_ != nullptr, "Storage: out of memory allocating ", nbytes, " bytes on ",
            device.str());
  release_ = [nbytes](void* p) { cpu::deallocate(p, nbytes); };
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (release_) release_(data_);
}

}  // namespace cxr
