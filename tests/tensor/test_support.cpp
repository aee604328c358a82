// Tests of the shared test helpers themselves (tests/support/): each must be able to fail.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "support/compare.h"
#include "support/errors.h"
#include "support/files.h"
#include "support/fixtures.h"
#include "tensor/error.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {
void throw_shape_error() {
  CXR_CHECK(false, "reshape: cannot view float32[2, 3] as [7]");
}
void throw_nothing() {}
}  // namespace

TEST(Support, ErrorMessageReturnsWhatOrEmpty) {
  EXPECT_NE(test::error_message(throw_shape_error).find("cannot view float32[2, 3] as [7]"),
            std::string::npos);
  EXPECT_EQ(test::error_message(throw_nothing), "");
  // Other exception types are not swallowed.
  EXPECT_THROW(test::error_message([] { throw std::runtime_error("other"); }), std::runtime_error);
}

TEST(Support, ErrorContainsFailsOnWrongTextOrNoThrow) {
  EXPECT_TRUE(test::error_contains(throw_shape_error, "float32[2, 3]"));
  EXPECT_FALSE(test::error_contains(throw_shape_error, "float64"));
  EXPECT_FALSE(test::error_contains(throw_nothing, "reshape"));
  EXPECT_ERROR_CONTAINS(throw_shape_error(), "reshape");
  EXPECT_NONFATAL_FAILURE(EXPECT_ERROR_CONTAINS(throw_shape_error(), "matmul"), "does not contain");
  EXPECT_NONFATAL_FAILURE(EXPECT_ERROR_CONTAINS(throw_nothing(), "matmul"), "no cxr::Error");
}

TEST(Support, BitwiseEqualComparesShapeDtypeAndBytes) {
  Tensor a = raw::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_TRUE(test::bitwise_equal(a, raw::clone(a)));
  // A strided view compares by its logical elements.
  Tensor t = raw::transpose(raw::contiguous(raw::transpose(a, 0, 1)), 0, 1);
  EXPECT_TRUE(test::bitwise_equal(a, t));
  EXPECT_FALSE(test::bitwise_equal(a, raw::reshape(a, {3, 2})));  // shape
  EXPECT_FALSE(test::bitwise_equal(a, raw::to(a, kFloat64)));     // dtype
  Tensor b = raw::clone(a);
  b.data<float>()[5] = std::nextafter(6.0f, 7.0f);  // one ulp away
  EXPECT_FALSE(test::bitwise_equal(a, b));
  Tensor z = raw::from_vector(std::vector<float>{0.0f}, {1});
  Tensor nz = raw::from_vector(std::vector<float>{-0.0f}, {1});
  EXPECT_FALSE(test::bitwise_equal(z, nz));  // equal values, different bytes
}

TEST(Support, CachedFixtureLoadsOnceAndFindsKeys) {
  const auto& first = test::cached_fixture("indexing.safetensors");
  const auto& second = test::cached_fixture("indexing.safetensors");
  EXPECT_EQ(&first, &second);
  ASSERT_FALSE(first.empty());
  const auto& [key, value] = *first.begin();
  EXPECT_EQ(test::fixture_tensor("indexing.safetensors", key).data_ptr(), value.data_ptr());
  EXPECT_THROW(test::fixture_tensor("indexing.safetensors", "no.such.key"), Error);
  EXPECT_THROW(test::cached_fixture("no_such_fixture.safetensors"), Error);
}

TEST(Support, TempDirWritesAndCleansUp) {
  std::filesystem::path kept;
  {
    test::TempDir a, b;
    EXPECT_NE(a.dir, b.dir);
    const std::string p = a.write("sub/x.txt", std::string("hi\0there", 8));
    EXPECT_EQ(test::read_text(p), std::string("hi\0there", 8));
    kept = a.dir;
    EXPECT_TRUE(std::filesystem::exists(kept));
  }
  EXPECT_FALSE(std::filesystem::exists(kept));
  EXPECT_EQ(test::read_text(test::temp_path("does_not_exist")), "");
}

TEST(Support, RunCommandCapturesStatusAndStreams) {
  const test::CommandResult r = test::run_command("/bin/sh", "-c 'echo out; echo err >&2; exit 3'");
  EXPECT_EQ(r.status, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}
