// Tensor handle basics: geometry, dtype conversion, copies through views, printing, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "support/errors.h"
#include "tensor/ops.h"

using namespace cxr;

TEST(TensorCore, EmptyHasContiguousGeometry) {
  Tensor t = raw::empty({2, 3, 4});
  EXPECT_EQ(t.sizes(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(t.numel(), 24);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.dtype(), kFloat32);
}

TEST(TensorCore, NegativeSizeIsRefused) {
  EXPECT_THROW(raw::empty({2, -1}), Error);
}

TEST(TensorCore, UndefinedTensorThrowsOnUse) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_THROW(t.sizes(), Error);
}

TEST(TensorCore, HalfRoundTripsExactValuesAndRoundsToNearestEven) {
  // Values representable in binary16 round-trip exactly.
  for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f})
    EXPECT_EQ(float(Half(v)), v) << v;
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even gives 1.
  EXPECT_EQ(float(Half(1.0f + 0.00048828125f)), 1.0f);
  // 1 + 3*2^-11 is halfway between 1+2^-10 and 1+2^-9: ties to even gives 1+2^-9.
  EXPECT_EQ(float(Half(1.0f + 3 * 0.00048828125f)), 1.0f + 0.001953125f);
  EXPECT_TRUE(std::isinf(float(Half(65520.0f))));
  EXPECT_TRUE(std::isnan(float(Half(NAN))));
  // Subnormal halfway case: 2^-25 rounds to 0 (even), 3*2^-25 rounds to 2*2^-24.
  EXPECT_EQ(float(Half(std::ldexp(1.0f, -25))), 0.0f);
  EXPECT_EQ(float(Half(std::ldexp(3.0f, -25))), std::ldexp(1.0f, -23));
}

TEST(TensorCore, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(float(BFloat16(1.0f)), 1.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even gives 1.
  EXPECT_EQ(float(BFloat16(1.0f + 0.00390625f)), 1.0f);
  EXPECT_EQ(float(BFloat16(1.0f + 3 * 0.00390625f)), 1.0f + 0.015625f);
  EXPECT_TRUE(std::isnan(float(BFloat16(NAN))));
}

TEST(TensorCore, ToDtypeConvertsEveryType) {
  Tensor a = raw::from_vector(std::vector<double>{-1.75, 0.0, 2.5, 3.0}, {4}, kFloat64);
  for (DType d : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    EXPECT_EQ(raw::to(a, d).to_vector<double>(), (std::vector<double>{-1.75, 0.0, 2.5, 3.0}));
  }
  EXPECT_EQ(raw::to(a, kInt64).to_vector<int64_t>(), (std::vector<int64_t>{-1, 0, 2, 3}));
  EXPECT_EQ(raw::to(a, kInt32).to_vector<int64_t>(), (std::vector<int64_t>{-1, 0, 2, 3}));
  EXPECT_EQ(raw::to(a, kBool).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1, 1}));
}

TEST(TensorCore, CopyBroadcastsIntoAView) {
  Tensor dst = raw::zeros({3, 4});
  Tensor row = raw::from_vector(std::vector<float>{1, 2, 3, 4}, {4});
  raw::copy_(dst, row);
  EXPECT_EQ(dst.at({2, 3}), 4.0);
  EXPECT_EQ(dst.at({0, 0}), 1.0);
  Tensor bad = raw::zeros({3});
  EXPECT_THROW(raw::copy_(dst, bad), Error);
}

TEST(TensorCore, ArangeAndLinspaceMatchTorchDefinitions) {
  EXPECT_EQ(raw::arange(0, 5).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(raw::arange(1, 2, 0.25, kFloat32).to_vector<double>(),
            (std::vector<double>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(raw::arange(5, 0, -2).to_vector<int64_t>(), (std::vector<int64_t>{5, 3, 1}));
  EXPECT_EQ(raw::linspace(0, 1, 5, kFloat64).to_vector<double>(),
            (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  EXPECT_EQ(raw::linspace(-1, 1, 1).numel(), 1);
  EXPECT_THROW(raw::arange(0, 1, 0), Error);
}

TEST(TensorCore, FromVectorChecksCount) {
  EXPECT_THROW(raw::from_vector(std::vector<float>{1, 2, 3}, {2, 2}), Error);
}

TEST(TensorCore, PrintingShowsValuesShapeAndDtype) {
  Tensor t = raw::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  std::string s = t.str();
  EXPECT_NE(s.find("shape=[2, 2]"), std::string::npos) << s;
  EXPECT_NE(s.find("dtype=float32"), std::string::npos) << s;
  EXPECT_NE(s.find("[[1, 2]"), std::string::npos) << s;
  Tensor big = raw::arange(0, 100);
  EXPECT_NE(big.str().find("..."), std::string::npos);
}

TEST(TensorCore, DeviceParsingAndCudaRefusalAreClear) {
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  EXPECT_THROW(Device::parse("gpu"), Error);
  if (cuda_device_count() == 0) {
    EXPECT_ERROR_CONTAINS(raw::empty({2}, kFloat32, Device::cuda(0)), "cuda:0");
  }
}
