// The device memory pool behind CUDA Storage (allocator.h): cudaMallocAsync from each device's
// default memory pool on the device's stream. The pool's release threshold is set to "never
// release", so memory freed by one step is reused by the next without returning to the driver;
// statistics are kept here (live bytes, peak) and read from the pool (reserved bytes).
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/context.cuh"
#include "tensor/cuda/runtime.h"

namespace cxr::cuda {

namespace {

constexpr int kMaxDevices = 64;

struct PoolState {
  std::once_flag once;
  std::atomic<size_t> allocated{0};
  std::atomic<size_t> peak{0};
  std::atomic<size_t> allocations{0};
};

PoolState& pool_state(int device) {
  static auto* states = new std::array<PoolState, kMaxDevices>;  // immortal, as the contexts
  CXR_CHECK(device >= 0 && device < kMaxDevices, "CUDA allocator: bad device index ", device);
  PoolState& s = (*states)[size_t(device)];
  std::call_once(s.once, [&] {
    DeviceGuard guard(device);
    cudaMemPool_t pool;
    CXR_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    uint64_t keep_all = UINT64_MAX;
    CXR_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all));
  });
  return s;
}

size_t pool_reserved(int device) {
  cudaMemPool_t pool;
  CXR_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  uint64_t reserved = 0;
  CXR_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
  return size_t(reserved);
}

std::string gib(size_t bytes) {
  char text[32];
  if (bytes >= (size_t(1) << 30))
    std::snprintf(text, sizeof text, "%.2f GiB", double(bytes) / double(size_t(1) << 30));
  else
    std::snprintf(text, sizeof text, "%.1f MiB", double(bytes) / double(1 << 20));
  return text;
}

}  // namespace

void* allocate(size_t nbytes, int device) {
  PoolState& s = pool_state(device);
  DeviceGuard guard(device);
  void* ptr = nullptr;
  cudaError_t status = cudaMallocAsync(&ptr, nbytes, stream(device));
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    // Memory freed by other streams' work may still be pending: wait for it once and retry.
    CXR_CUDA_CHECK(cudaDeviceSynchronize());
    status = cudaMallocAsync(&ptr, nbytes, stream(device));
  }
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    CXR_FAIL("CUDA out of memory on cuda:", device, " allocating ", gib(nbytes), " (", nbytes,
             " bytes): ", memory_summary(device));
  }
  if (status != cudaSuccess) fail_cuda(status, "cudaMallocAsync", __FILE__, __LINE__);
  size_t now = s.allocated.fetch_add(nbytes) + nbytes;
  size_t peak = s.peak.load();
  while (now > peak && !s.peak.compare_exchange_weak(peak, now)) {
  }
  s.allocations.fetch_add(1);
  return ptr;
}

void deallocate(void* ptr, size_t nbytes, int device) {
  if (ptr == nullptr) return;
  pool_state(device).allocated.fetch_sub(nbytes);
  // During process exit the runtime may already be unloaded; the memory goes with the process.
  int previous = -1;
  if (cudaGetDevice(&previous) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  if (previous != device) cudaSetDevice(device);
  if (cudaFreeAsync(ptr, stream(device)) != cudaSuccess) cudaGetLastError();
  if (previous != device) cudaSetDevice(previous);
}

MemoryStats memory_stats(int device) {
  PoolState& s = pool_state(device);
  DeviceGuard guard(device);
  return {s.allocated.load(), s.peak.load(), pool_reserved(device), s.allocations.load()};
}

void reset_peak_memory(int device) {
  PoolState& s = pool_state(device);
  s.peak.store(s.allocated.load());
}

void empty_cache(int device) {
  pool_state(device);
  DeviceGuard guard(device);
  CXR_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
  cudaMemPool_t pool;
  CXR_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  CXR_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
}

std::string memory_summary(int device) {
  PoolState& s = pool_state(device);
  DeviceGuard guard(device);
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) cudaGetLastError();
  return "allocated " + gib(s.allocated.load()) + " (peak " + gib(s.peak.load()) +
         "), reserved by the pool " + gib(pool_reserved(device)) + "; device: " + gib(free_bytes) +
         " free of " + gib(total_bytes);
}

}  // namespace cxr::cuda
