// The device context of the CUDA kernels (only .cu files include this): one stream per device on
// which every op of that device runs in order, the cuBLAS/cuDNN handles bound to it, a guard that
// makes a device current, the status checks that turn CUDA/cuBLAS/cuDNN failures into cxr::Error
// (naming the call, the status string and the op), and launch-size helpers.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "tensor/device.h"
#include "tensor/error.h"

#ifdef CXR_WITH_CUDNN
#include <cudnn.h>
#endif

namespace cxr::cuda {

// The stream every op on `device` is queued on (created non-blocking on first use).
cudaStream_t stream(int device);
// cuBLAS handle of `device`, bound to stream(device), with TF32 tensor-op math for float32.
cublasHandle_t cublas_handle(int device);
#ifdef CXR_WITH_CUDNN
cudnnHandle_t cudnn_handle(int device);
#endif

// Makes `device` current for the calling thread; restores the previous device on destruction.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  explicit DeviceGuard(Device device) : DeviceGuard(device.index) {}
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

[[noreturn]] void fail_cuda(cudaError_t status, const char* call, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line);
#ifdef CXR_WITH_CUDNN
[[noreturn]] void fail_cudnn(cudnnStatus_t status, const char* call, const char* file, int line);
#endif

// Threads per block for one-dimensional elementwise launches, and the block count for n items
// (capped; kernels loop with a grid stride).
inline constexpr int kThreads = 256;
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return unsigned(b > 65535 * 8 ? 65535 * 8 : b);
}

}  // namespace cxr::cuda

// CXR_CUDA_CHECK(cudaMemcpyAsync(...)) throws cxr::Error "CUDA error: <status> in <call> at
// file:line" when the call fails. The cuBLAS/cuDNN variants do the same with their status strings.
#define CXR_CUDA_CHECK(call)                                          \
  do {                                                                \
    cudaError_t cxr_status_ = (call);                                 \
    if (cxr_status_ != cudaSuccess)                                   \
      ::cxr::cuda::fail_cuda(cxr_status_, #call, __FILE__, __LINE__); \
  } while (0)
#define CXR_CUBLAS_CHECK(call)                                          \
  do {                                                                  \
    cublasStatus_t cxr_status_ = (call);                                \
    if (cxr_status_ != CUBLAS_STATUS_SUCCESS)                           \
      ::cxr::cuda::fail_cublas(cxr_status_, #call, __FILE__, __LINE__); \
  } while (0)
#define CXR_CUDNN_CHECK(call)                                          \
  do {                                                                 \
    cudnnStatus_t cxr_status_ = (call);                                \
    if (cxr_status_ != CUDNN_STATUS_SUCCESS)                           \
      ::cxr::cuda::fail_cudnn(cxr_status_, #call, __FILE__, __LINE__); \
  } while (0)
// After a kernel launch: reports a bad launch configuration with the kernel's name.
#define CXR_CUDA_LAUNCH_CHECK(kernel_name)                                               \
  do {                                                                                   \
    cudaError_t cxr_status_ = cudaGetLastError();                                        \
    if (cxr_status_ != cudaSuccess)                                                      \
      ::cxr::cuda::fail_cuda(cxr_status_, "launch of " kernel_name, __FILE__, __LINE__); \
  } while (0)
