// safetensors: reading files written by the reference Python package, round trips, and clear errors
// for missing, truncated and corrupt files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "support/files.h"
#include "support/fixtures.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"

using namespace cxr;

namespace {
using test::temp_path;
using test::write_bytes;
std::string expect_error(const std::string& path) {
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << path;
  return {};
}
}  // namespace

TEST(Safetensors, ReadsEveryDtypeWrittenByTheReferencePackage) {
  auto f = load_safetensors(std::string(CXR_FIXTURE_DIR) + "/safetensors_reference.safetensors");
  EXPECT_EQ(f.metadata.at("format"), "pt");
  const auto& t = f.tensors;
  EXPECT_EQ(t.at("f32").sizes(), (Shape{2, 3}));
  EXPECT_EQ(t.at("f32").to_vector<double>(), (std::vector<double>{0, 0.25, 0.5, 0.75, 1, 1.25}));
  EXPECT_EQ(t.at("f64").to_vector<double>(), (std::vector<double>{1.5, -2.25}));
  EXPECT_EQ(t.at("f16").dtype(), kFloat16);
  EXPECT_EQ(t.at("f16").to_vector<double>(),
            (std::vector<double>{0.5, -1.0, 65504.0, std::ldexp(1.0, -24)}));
  EXPECT_EQ(t.at("bf16").to_vector<double>(), (std::vector<double>{1.0, -3.0, 0.0078125}));
  EXPECT_EQ(t.at("i32").to_vector<int64_t>(), (std::vector<int64_t>{-7, 0, 2147483647}));
  EXPECT_EQ(t.at("i64").to_vector<int64_t>(), (std::vector<int64_t>{-(int64_t(1) << 40), 3}));
  EXPECT_EQ(t.at("u8").to_vector<int64_t>(), (std::vector<int64_t>{0, 255, 17}));
  EXPECT_EQ(t.at("b").to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(t.at("scalar").dim(), 0);
  EXPECT_EQ(t.at("scalar").item(), 3.25);
  EXPECT_EQ(t.at("empty").sizes(), (Shape{0, 4}));
}

TEST(Safetensors, RoundTripIsBitExactAndAtomic) {
  std::string path = temp_path("roundtrip.safetensors");
  Tensor base = raw::arange(0, 12, 1, kFloat32);
  Tensor a(base.storage(), {4, 3}, {1, 4}, 0, kFloat32);  // the transpose of a 3x4 matrix
  Tensor b = raw::from_vector(std::vector<int64_t>{5, -6}, {2});
  save_safetensors(path, {{"a", a}, {"b", b}}, {{"step", "7"}});
  auto f = load_safetensors(path);
  EXPECT_EQ(f.metadata.at("step"), "7");
  EXPECT_EQ(f.tensors.at("a").sizes(), (Shape{4, 3}));
  EXPECT_EQ(f.tensors.at("a").to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(f.tensors.at("b").to_vector<int64_t>(), b.to_vector<int64_t>());
  // No temporary file is left behind.
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::temp_directory_path()))
    EXPECT_EQ(e.path().filename().string().find("cxr_test_roundtrip.safetensors.tmp"),
              std::string::npos);
  std::filesystem::remove(path);
}

TEST(Safetensors, MissingFileNamesThePath) {
  std::string msg = expect_error("/nonexistent/dir/x.safetensors");
  EXPECT_NE(msg.find("/nonexistent/dir/x.safetensors"), std::string::npos) << msg;
}

TEST(Safetensors, TruncatedAndCorruptFilesAreReported) {
  std::string path = temp_path("bad.safetensors");
  write_bytes(path, "abc");
  EXPECT_NE(expect_error(path).find("truncated"), std::string::npos);

  std::string header = R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  std::string len(8, '\0');
  len[0] = char(header.size());
  write_bytes(path, len + header + std::string(8, '\0'));  // 8 of 16 data bytes
  EXPECT_NE(expect_error(path).find("outside"), std::string::npos);

  std::string bad_json = "{not json";
  len[0] = char(bad_json.size());
  write_bytes(path, len + bad_json);
  EXPECT_NE(expect_error(path).find("malformed"), std::string::npos);

  std::string huge(8, '\xff');
  write_bytes(path, huge + "{}");
  EXPECT_NE(expect_error(path).find("exceeds"), std::string::npos);

  std::string bad_dtype = R"({"x":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})";
  len[0] = char(bad_dtype.size());
  write_bytes(path, len + bad_dtype + "x");
  EXPECT_NE(expect_error(path).find("unsupported dtype"), std::string::npos);

  std::string bad_span = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})";
  len[0] = char(bad_span.size());
  write_bytes(path, len + bad_span + "abcd");
  EXPECT_NE(expect_error(path).find("needs 8 bytes"), std::string::npos);
  std::filesystem::remove(path);
}
