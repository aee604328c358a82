// The CUDA runtime layer: device errors, host/device/peer copies of every dtype and geometry, the
// stream-ordered memory pool (statistics, reuse, out-of-memory report), element access of device
// tensors. Tests that need a GPU skip without one; the first test runs only without one.
#include <gtest/gtest.h>

#include <cstdint>

#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "tensor/backend.h"
#include "tensor/cuda/allocator.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

using test::kAllDtypes;

Tensor sample(const Shape& shape, DType dtype, uint64_t seed) {
  Generator gen(seed);
  Tensor x = raw::rand(shape, gen, kFloat64, -50, 50);
  if (dtype == kUInt8 || dtype == kBool) x = raw::abs(x);
  return raw::to(x, dtype);
}

// The pool's entry points exist in CUDA builds only; the tests that use them skip without a GPU
// before calling them, and a CPU-only build compiles these calls away.
cuda::MemoryStats pool_stats(int device) {
  if constexpr (kCudaBuilt) return cuda::memory_stats(device);
  return {};
}
void reset_peak(int device) {
  if constexpr (kCudaBuilt) cuda::reset_peak_memory(device);
}
void sync(int device) {
  if constexpr (kCudaBuilt) cuda::synchronize(device);
}
void empty_pool(int device) {
  if constexpr (kCudaBuilt) cuda::empty_cache(device);
}

}  // namespace

TEST(CudaRuntime, RequestWithoutUsableDeviceIsRefusedClearly) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is usable here";
  const std::string expected = kCudaBuilt ? "CUDA is not usable" : "built without CUDA";
  EXPECT_ERROR_CONTAINS(raw::zeros({2}, kFloat32, Device::cuda(0)), expected);
  EXPECT_ERROR_CONTAINS(raw::to(raw::ones({2}), Device::cuda(0)), "cuda:0");
}

TEST(CudaRuntime, MissingDeviceIndexIsNamed) {
  CXR_SKIP_WITHOUT_CUDA();
  EXPECT_ERROR_CONTAINS(raw::zeros({2}, kFloat32, Device::cuda(cuda_device_count())),
                        "CUDA device(s) are visible");
}

TEST(CudaRuntime, RoundTripPreservesEveryDtypeBitwise) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType d : kAllDtypes) {
    Tensor host = sample({3, 257}, d, 7);
    Tensor dev = raw::to(host, Device::cuda(0));
    EXPECT_EQ(dev.device(), Device::cuda(0));
    EXPECT_EQ(dev.dtype(), d);
    EXPECT_TRUE(test::bitwise_equal(raw::to(dev, Device::cpu()), host)) << dtype_name(d);
  }
}

TEST(CudaRuntime, StridedAndBroadcastCopiesAcrossDevices) {
  CXR_SKIP_WITHOUT_CUDA();
  const Device gpu = Device::cuda(0);
  Tensor host = sample({5, 7}, kFloat32, 3);
  // A transposed (non-contiguous) host view goes to the device with its logical order.
  Tensor t = raw::transpose(host, 0, 1);
  EXPECT_TRUE(test::bitwise_equal(raw::to(raw::to(t, gpu), Device::cpu()), raw::contiguous(t)));
  // Device -> a strided host destination.
  Tensor dst = raw::zeros({7, 5});
  raw::copy_(raw::transpose(dst, 0, 1), raw::to(host, gpu));
  EXPECT_TRUE(test::bitwise_equal(raw::transpose(dst, 0, 1), host));
  // Broadcast plus conversion from the host into a sliced device destination.
  Tensor row = sample({1, 7}, kFloat64, 4);
  Tensor big = raw::zeros({6, 7}, kFloat16, gpu);
  raw::copy_(raw::slice(big, 0, 1, 6, 2), row);
  Tensor expected = raw::zeros({6, 7}, kFloat16);
  raw::copy_(raw::slice(expected, 0, 1, 6, 2), row);
  EXPECT_TRUE(test::bitwise_equal(raw::to(big, Device::cpu()), expected));
  // Device-to-device within a device: a strided view converted to another dtype.
  Tensor dev = raw::to(host, gpu);
  Tensor converted = raw::to(raw::transpose(dev, 0, 1), kBFloat16);
  EXPECT_TRUE(test::bitwise_equal(raw::to(converted, Device::cpu()),
                                  raw::to(raw::contiguous(t), kBFloat16)));
}

TEST(CudaRuntime, FillsAndConstantsOnDevice) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType d : kAllDtypes) {
    Tensor dev = raw::full({4, 33}, 3.0, d, Device::cuda(0));
    EXPECT_TRUE(test::bitwise_equal(raw::to(dev, Device::cpu()), raw::full({4, 33}, 3.0, d)))
        << dtype_name(d);
  }
  Tensor z = raw::zeros({0, 3}, kFloat32, Device::cuda(0));
  EXPECT_EQ(z.numel(), 0);
  EXPECT_EQ(raw::to(z, Device::cpu()).numel(), 0);
}

TEST(CudaRuntime, ElementAccessReadsThroughHostCopy) {
  CXR_SKIP_WITHOUT_CUDA();
  Tensor host = raw::from_vector(std::vector<float>{1.5f, -2.0f, 4.25f, 8.0f}, {2, 2});
  Tensor dev = raw::to(host, Device::cuda(0));
  EXPECT_EQ(dev.to_vector<float>(), host.to_vector<float>());
  EXPECT_EQ(dev.at({1, 0}), 4.25);
  EXPECT_EQ(raw::select(raw::select(dev, 0, 0), 0, 1).item(), -2.0);
  EXPECT_NE(dev.str().find("4.25"), std::string::npos) << dev.str();
  EXPECT_NE(dev.str().find("device=cuda:0"), std::string::npos) << dev.str();
  // Host code cannot take a typed pointer to device memory.
  EXPECT_ERROR_CONTAINS(dev.data<float>(), "host code needs a cpu tensor");
}

TEST(CudaAllocator, StatisticsFollowLiveTensors) {
  CXR_SKIP_WITHOUT_CUDA();
  const int d = 0;
  const size_t bytes = size_t(10) << 20;
  const auto before = pool_stats(d);
  reset_peak(d);
  {
    Tensor t = raw::empty({int64_t(bytes)}, kUInt8, Device::cuda(d));
    const auto during = pool_stats(d);
    EXPECT_EQ(during.allocated - before.allocated, bytes);
    EXPECT_GE(during.peak, during.allocated);
    EXPECT_GE(during.reserved, during.allocated);
    EXPECT_EQ(during.allocations, before.allocations + 1);
  }
  const auto after = pool_stats(d);
  EXPECT_EQ(after.allocated, before.allocated);
  EXPECT_GE(after.peak, before.allocated + bytes);
  reset_peak(d);
  EXPECT_EQ(pool_stats(d).peak, after.allocated);
}

TEST(CudaAllocator, SteadyStateReusesPoolMemory) {
  CXR_SKIP_WITHOUT_CUDA();
  const Device gpu = Device::cuda(0);
  auto step = [&] {
    Tensor a = raw::full({1024, 1024}, 1.0, kFloat32, gpu);
    Tensor b = raw::full({512, 1024}, 2.0, kFloat32, gpu);
    raw::copy_(raw::narrow(a, 0, 0, 512), b);
  };
  step();
  sync(0);
  const size_t reserved = pool_stats(0).reserved;
  for (int i = 0; i < 50; ++i) step();
  sync(0);
  EXPECT_EQ(pool_stats(0).reserved, reserved)
      << "the pool grew although every step frees what it allocates";
}

TEST(CudaAllocator, OutOfMemoryNamesRequestAndPoolState) {
  CXR_SKIP_WITHOUT_CUDA();
  const std::string message = test::error_message(
      [] { raw::empty({int64_t(1) << 40}, kUInt8, Device::cuda(0)); });  // 1 TiB
  EXPECT_NE(message.find("CUDA out of memory on cuda:0"), std::string::npos) << message;
  EXPECT_NE(message.find("1099511627776 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("reserved by the pool"), std::string::npos) << message;
  EXPECT_NE(message.find("free of"), std::string::npos) << message;
  // The device is still usable afterwards.
  EXPECT_EQ(raw::full({3}, 2.0, kFloat32, Device::cuda(0)).to_vector<float>(),
            (std::vector<float>{2, 2, 2}));
}

TEST(CudaAllocator, EmptyCacheReturnsUnusedMemory) {
  CXR_SKIP_WITHOUT_CUDA();
  { Tensor t = raw::empty({int64_t(64) << 20}, kUInt8, Device::cuda(0)); }
  empty_pool(0);
  const auto s = pool_stats(0);
  EXPECT_LT(s.reserved, s.allocated + (size_t(64) << 20))
      << "empty_cache kept the freed 64 MiB block";
}
