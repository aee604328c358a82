// The CUDA device context (context.cuh) and the runtime calls of the C++ side (runtime.h): device
// queries, the per-device stream and library handles, status checks, synchronisation and copies.
#include <array>
#include <mutex>
#include <string>

#include "tensor/cuda/context.cuh"
#include "tensor/cuda/runtime.h"

namespace cxr::cuda {

namespace {

constexpr int kMaxDevices = 64;

// Per-device objects, created on first use and never destroyed: tensors held by static objects may
// be freed during process exit, after any destructor of ours would have run.
struct DeviceContext {
  std::once_flag once;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
#ifdef CXR_WITH_CUDNN
  cudnnHandle_t cudnn = nullptr;
#endif
};

DeviceContext& context(int device) {
  static auto* contexts = new std::array<DeviceContext, kMaxDevices>;
  static const int visible = device_count_or_zero();
  CXR_CHECK(device >= 0 && device < kMaxDevices && device < visible, "CUDA: device cuda:", device,
            " does not exist (", visible, " visible)");
  DeviceContext& c = (*contexts)[size_t(device)];
  std::call_once(c.once, [&] {
    DeviceGuard guard(device);
    CXR_CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
    CXR_CUBLAS_CHECK(cublasCreate(&c.cublas));
    CXR_CUBLAS_CHECK(cublasSetStream(c.cublas, c.stream));
    // float32 GEMMs use TF32 tensor cores (DESIGN.md §4); half types accumulate in float32, and
    // split-K partial sums too (no reduced-precision reduction).
    CXR_CUBLAS_CHECK(cublasSetMathMode(
        c.cublas, cublasMath_t(CUBLAS_TF32_TENSOR_OP_MATH |
                               CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
#ifdef CXR_WITH_CUDNN
    CXR_CUDNN_CHECK(cudnnCreate(&c.cudnn));
    CXR_CUDNN_CHECK(cudnnSetStream(c.cudnn, c.stream));
#endif
  });
  return c;
}

}  // namespace

cudaStream_t stream(int device) {
  return context(device).stream;
}
cublasHandle_t cublas_handle(int device) {
  return context(device).cublas;
}
#ifdef CXR_WITH_CUDNN
cudnnHandle_t cudnn_handle(int device) {
  return context(device).cudnn;
}
#endif

DeviceGuard::DeviceGuard(int device) {
  CXR_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) CXR_CUDA_CHECK(cudaSetDevice(device));
}
DeviceGuard::~DeviceGuard() {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
}

void fail_cuda(cudaError_t status, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  CXR_FAIL("CUDA error: ", cudaGetErrorString(status), " (", cudaGetErrorName(status), ") in ",
           call, " at ", file, ":", line);
}
void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  CXR_FAIL("cuBLAS error: ", cublasGetStatusString(status), " in ", call, " at ", file, ":", line);
}
#ifdef CXR_WITH_CUDNN
void fail_cudnn(cudnnStatus_t status, const char* call, const char* file, int line) {
  CXR_FAIL("cuDNN error: ", cudnnGetErrorString(status), " in ", call, " at ", file, ":", line);
}
#endif

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

std::string device_description(int device) {
  cudaDeviceProp p{};
  CXR_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.1f GiB", double(p.totalGlobalMem) / (1 << 30));
  return std::string(p.name) + ", compute capability " + std::to_string(p.major) + "." +
         std::to_string(p.minor) + ", " + memory;
}

void synchronize(int device) {
  DeviceGuard guard(device);
  CXR_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
}

void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  DeviceGuard guard(device);
  CXR_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, stream(device)));
  CXR_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
}

void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  DeviceGuard guard(device);
  CXR_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream(device)));
  CXR_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
}

void copy_device_to_device(void* dst, int dst_device, const void* src, int src_device,
                           size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device == src_device) {
    DeviceGuard guard(dst_device);
    CXR_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, stream(dst_device)));
    return;
  }
  // Between devices: the source's queued writes finish first, then the copy runs on the
  // destination's stream, which orders it before later work there.
  synchronize(src_device);
  DeviceGuard guard(dst_device);
  CXR_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device, src, src_device, nbytes, stream(dst_device)));
  CXR_CUDA_CHECK(cudaStreamSynchronize(stream(dst_device)));
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
