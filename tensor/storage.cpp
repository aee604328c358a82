// CPU allocation for Storage (64-byte aligned for AVX-512 loads).
#include "tensor/storage.h"

#include <cstdlib>  // std::aligned_alloc, std::free
#include <new>      // std::bad_alloc

#include "tensor/error.h"

namespace cxr {

namespace {
constexpr size_t kAlignment = 64;
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  check_device_available(device);
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  data_ = std::aligned_alloc(kAlignment, rounded);
  CXR_CHECK(data_ != nullptr, "Storage: out of memory allocating ", nbytes, " bytes on ",
            device.str());
  release_ = [](void* p) { std::free(p); };
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (release_) release_(data_);
}

}  // namespace cxr
