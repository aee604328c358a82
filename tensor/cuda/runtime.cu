// CUDA runtime calls of the CPU side: how many devices there are and, when none can be used, why
// (no driver, no device, driver too old), in words taken from the CUDA runtime (tensor/device.cpp);
// registering pinned host buffers (tensor/pinned.cpp).
#include <cuda_runtime.h>

#include <string>

namespace cxr::cuda {

int device_count_or_zero() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later queries start clean
    return 0;
  }
  return n;
}

std::string availability_problem() {
  int n = 0;
  cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return std::string("cudaGetDeviceCount failed: ") + cudaGetErrorString(status);
  }
  if (n == 0) return "no CUDA device is visible";
  return {};
}

// Page-locked host buffers (tensor/pinned.cpp): registration makes CUDA's async copies use them
// directly.
bool host_register(void* data, size_t nbytes, std::string* error) {
  const cudaError_t status = cudaHostRegister(data, nbytes, cudaHostRegisterDefault);
  if (status == cudaSuccess) return true;
  cudaGetLastError();
  *error = cudaGetErrorString(status);
  return false;
}

void host_unregister(void* data) {
  if (cudaHostUnregister(data) != cudaSuccess) cudaGetLastError();
}

}  // namespace cxr::cuda
