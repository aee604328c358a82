// The caching CPU allocator: alignment, accounting, reuse of large blocks, and empty_cache.
#include <gtest/gtest.h>

#include <cstdint>

#include "tensor/cpu/allocator.h"
#include "tensor/ops.h"

using namespace cxr;

TEST(CpuAllocator, BlocksAre64ByteAlignedAndAccounted) {
  const auto before = cpu::allocator_stats();
  void* small = cpu::allocate(100);
  void* big = cpu::allocate(3 << 20);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big) % 64, 0u);
  const auto during = cpu::allocator_stats();
  EXPECT_EQ(during.allocated - before.allocated, size_t(128) + (size_t(3) << 20));
  EXPECT_GE(during.peak, during.allocated);
  cpu::deallocate(small, 100);
  cpu::deallocate(big, 3 << 20);
  EXPECT_EQ(cpu::allocator_stats().allocated, before.allocated);
}

TEST(CpuAllocator, LargeTensorsReuseFreedBlocks) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the cache is bypassed under AddressSanitizer";
#else
  cpu::empty_cache();
  void* first;
  {
    Tensor t = raw::empty({1 << 20});  // 4 MiB
    first = t.data_ptr();
  }
  EXPECT_EQ(cpu::allocator_stats().cached, size_t(4) << 20);
  Tensor again = raw::empty({1 << 20});
  EXPECT_EQ(again.data_ptr(), first);
  EXPECT_EQ(cpu::allocator_stats().cached, 0u);
  cpu::empty_cache();
#endif
}
