// CPU allocation for Storage through the caching allocator (64-byte aligned for AVX-512 loads).
#include "tensor/storage.h"

#include "tensor/cpu/allocator.h"
#include "tensor/error.h"

namespace cxr {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  check_device_available(device);
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
