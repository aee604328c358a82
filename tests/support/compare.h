// Test helpers: tensors compared elementwise with a tolerance, and a clear message on mismatch.
#pragma once

#include <gtest/gtest.h>

#include "tensor/ops.h"

namespace cxr::test {

// |actual - expected| <= atol + rtol * |expected| for every element (NaNs must match NaNs); shapes
// must be equal. The message names the first failing index and the worst error.
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected,
                                     double rtol = 1e-5, double atol = 1e-6);

}  // namespace cxr::test

#define EXPECT_ALL_CLOSE(actual, expected, ...) \
  EXPECT_TRUE(::cxr::test::all_close(actual, expected, ##__VA_ARGS__))
