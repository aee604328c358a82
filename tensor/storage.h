// Storage: a reference-counted byte buffer on one device, shared by a tensor and all its views.
// It also carries the version counter that in-place ops bump, so autograd can detect a saved
// tensor that was modified after it was saved, through any view.
#pragma once

#include <cstddef>     // size_t
#include <functional>  // deleter of wrapped memory
#include <memory>      // std::shared_ptr

#include "tensor/device.h"

namespace cxr {

class Storage {
 public:
  // Allocates nbytes on `device` (CPU: 64-byte aligned, uninitialised).
  Storage(size_t nbytes, Device device);
  // Wraps memory owned elsewhere (a memory-mapped file, a caller's buffer); `release` runs when the
  // last reference goes away.
  Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::function<void(void*)> release_;
  uint64_t version_ = 0;
};

}  // namespace cxr
