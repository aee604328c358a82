// Pinned host memory: page-aligned, page-locked (the kernel's VmLck count of this process grows by
// the buffer and shrinks back when the last tensor using it goes), recognised by is_pinned, and
// pin() copies any layout.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "tensor/creation.h"
#include "tensor/error.h"
#include "tensor/pinned.h"
#include "tensor/views.h"

namespace cxr {
namespace {

// The process's locked memory in kB, from /proc/self/status ("VmLck:   64 kB").
int64_t locked_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmLck:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

// AddressSanitizer's mlock/munlock interceptors do nothing (its shadow memory cannot be locked),
// so the kernel's count is only checked without it.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif

// Runs f; when the locked-memory limit stops it, checks the message names the limit and skips.
#define PIN_OR_SKIP(statement)                                                              \
  try {                                                                                     \
    statement;                                                                              \
  } catch (const Error& e) {                                                                \
    ASSERT_NE(std::string(e.what()).find("RLIMIT_MEMLOCK"), std::string::npos) << e.what(); \
    GTEST_SKIP() << "locked memory is limited here: " << e.what();                          \
  }

TEST(Pinned, PageAlignedLockedAndReleased) {
  const int64_t page = sysconf(_SC_PAGESIZE);
  const int64_t before = locked_kb();
  ASSERT_GE(before, 0) << "no VmLck line in /proc/self/status";
  {
    Tensor t;
    PIN_OR_SKIP(t = empty_pinned({4, 1024}, kFloat32));  // 16 KiB: 4 pages of 4 KiB
    EXPECT_TRUE(is_pinned(t));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data<float>()) % uintptr_t(page), 0u);
    if (!kAddressSanitizer) {
      EXPECT_EQ(locked_kb() - before, 16);
    }
    // A view shares the pinned storage.
    EXPECT_TRUE(is_pinned(raw::narrow(t, 0, 1, 2)));
    EXPECT_FALSE(is_pinned(raw::zeros({4, 1024})));
  }
  EXPECT_EQ(locked_kb(), before);
}

TEST(Pinned, PinCopiesAnyLayout) {
  const Tensor src = raw::transpose(raw::reshape(raw::arange(0, 12, 1, kFloat32), {3, 4}), 0, 1);
  Tensor p;
  PIN_OR_SKIP(p = pin(src));
  EXPECT_TRUE(is_pinned(p));
  EXPECT_TRUE(p.is_contiguous());
  EXPECT_EQ(p.sizes(), src.sizes());
  EXPECT_EQ(p.to_vector<float>(), raw::contiguous(src).to_vector<float>());
  // Registered with CUDA exactly when a device is usable (never on a machine without a GPU).
  EXPECT_EQ(pinned_registered_with_cuda(), cuda_device_count() > 0);
}

}  // namespace
}  // namespace cxr
