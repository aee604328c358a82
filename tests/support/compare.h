// Test helpers: tensors compared elementwise with a tolerance, and a clear message on mismatch.
#pragma once

#include <gtest/gtest.h>

#include "tensor/ops.h"

namespace cxr::test {

// |actual - expected| <= atol + rtol * |expected| for every element (NaNs must match NaNs); shapes
// must be equal. The message names the first failing index and the worst error.
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected,
                                     double rtol = 1e-5, double atol = 1e-6);

// all_close with rtol = rel and atol = rel * max(max |expected|, floor): the comparison with a
// float64 reference of the model tests (an error is judged against the tensor's scale, so values
// near zero do not need an impossible relative accuracy).
::testing::AssertionResult close_to_reference(const Tensor& actual, const Tensor& expected,
                                              double rel, double floor = 0.0);

// Same shape, same dtype and the same bytes (of the contiguous data): for determinism checks. NaNs
// with equal payloads compare equal, -0 and +0 do not. The message names the first differing index.
::testing::AssertionResult bitwise_equal(const Tensor& a, const Tensor& b);

}  // namespace cxr::test

#define EXPECT_ALL_CLOSE(actual, expected, ...) \
  EXPECT_TRUE(::cxr::test::all_close(actual, expected, ##__VA_ARGS__))
