// The CUDA runtime as the C++ side of the tensor layer sees it: device queries, synchronisation and
// copies between host and device memory. Plain C++ (no CUDA types), so CPU sources can include it;
// defined in tensor/cuda/runtime.cu, present only in builds with CUDA (see tensor/backend.h).
#pragma once

#include <cstddef>
#include <string>

namespace cxr::cuda {

// Number of visible devices; 0 when there is no driver or device (the error is cleared).
int device_count_or_zero();
// Why CUDA cannot be used here, in the runtime's words; empty when a device is usable.
std::string availability_problem();
// "NVIDIA H100 80GB HBM3, compute capability 9.0, 79.1 GiB".
std::string device_description(int device);

// Waits until every op queued on `device`'s stream has finished; a failure of an earlier kernel is
// reported here with the runtime's message.
void synchronize(int device);

// Copies between host memory and device memory on `device`'s stream. They return once the data has
// arrived (the host buffer may be reused at once), so callers need no synchronisation of their own.
void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device);
// Device-to-device, also between two devices (peer copy), ordered after the work queued on both.
void copy_device_to_device(void* dst, int dst_device, const void* src, int src_device,
                           size_t nbytes);

// Page-locks host memory for fast asynchronous copies (tensor/pinned.cpp).
bool host_register(void* data, size_t nbytes, std::string* error);
void host_unregister(void* data);

}  // namespace cxr::cuda
