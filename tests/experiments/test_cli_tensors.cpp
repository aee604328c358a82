// `cxr tensors ls|stats|diff` and `cxr env`, run as the real binary on temporary files: the
// listed names, dtypes, shapes and sizes, statistics computed by hand, diff errors and locations,
// and exit status 2 with a one-line reason for missing or corrupt files.
#include <gtest/gtest.h>
#include <sys/wait.h>  // WEXITSTATUS

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/files.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"

using namespace cxr;

namespace {

using cxr::test::read_text;
using cxr::test::temp_path;
using Result = cxr::test::CommandResult;

Result run_cxr(const std::string& args) {
  return cxr::test::run_command(CXR_BINARY, args);
}

class CliTensors : public ::testing::Test {
 protected:
  void SetUp() override {
    save_safetensors(a_,
                     {{"w", raw::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3})},
                      {"n", raw::from_vector(std::vector<float>{1, NAN, INFINITY}, {3})},
                      {"i", raw::from_vector(std::vector<int64_t>{-5, 5}, {2})},
                      {"only_a", raw::zeros({1}, kFloat16)}},
                     {{"format", "pt"}, {"note", "first"}});
    save_safetensors(b_,
                     {{"w", raw::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6.5f}, {2, 3})},
                      {"n", raw::zeros({4})},
                      {"i", raw::from_vector(std::vector<int64_t>{-5, 5}, {2})},
                      {"only_b", raw::zeros({2}, kBFloat16)}},
                     {{"format", "pt"}, {"note", "second"}});
  }
  void TearDown() override {
    std::filesystem::remove(a_);
    std::filesystem::remove(b_);
  }
  const std::string a_ = temp_path("a.safetensors"), b_ = temp_path("b.safetensors");
};

void expect_contains(const std::string& text, const std::string& needle) {
  EXPECT_NE(text.find(needle), std::string::npos) << "missing '" << needle << "' in:\n" << text;
}

// The whitespace-separated cells of the first table row whose first cell is `name`, joined by
// single spaces (so the test does not depend on column widths).
std::string row(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream cells(line);
    std::string first, cell, joined;
    if (!(cells >> first) || first != name) continue;
    joined = first;
    while (cells >> cell) joined += " " + cell;
    return joined;
  }
  return "(no row '" + name + "' in:\n" + text + ")";
}

}  // namespace

TEST_F(CliTensors, LsListsMetadataAndTensors) {
  const Result r = run_cxr("tensors ls '" + a_ + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  expect_contains(r.out, a_ + ": 4 tensors, 54 B of data");  // 24 + 12 + 16 + 2 bytes
  expect_contains(r.out, "metadata note: first");
  EXPECT_EQ(row(r.out, "w"), "w F32 [2, 3] 24");
  EXPECT_EQ(row(r.out, "i"), "i I64 [2] 16");
  EXPECT_EQ(row(r.out, "only_a"), "only_a F16 [1] 2");
}

TEST_F(CliTensors, StatsOverFiniteValuesWithNanAndInfCounts) {
  const Result r = run_cxr("tensors stats '" + a_ + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  // w: 1..6, mean 3.5, unbiased std sqrt(17.5 / 5) = 1.87083.
  EXPECT_EQ(row(r.out, "w"), "w F32 [2, 3] 1 6 3.5 1.87083 0 0");
  // n: one finite value (1), one NaN, one inf: no std.
  EXPECT_EQ(row(r.out, "n"), "n F32 [3] 1 1 1 - 1 1");
  // i: -5 and 5, std sqrt(50) = 7.07107.
  EXPECT_EQ(row(r.out, "i"), "i I64 [2] -5 5 0 7.07107 0 0");
}

TEST_F(CliTensors, DiffReportsErrorsLocationsAndNamesInOneFile) {
  const Result r = run_cxr("tensors diff '" + a_ + "' '" + b_ + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  // w differs at [1, 2] by 0.5; relative to max(|6|, |6.5|).
  EXPECT_EQ(row(r.out, "w"), "w 0.5 0.0769231 1/6 [1, 2]");
  EXPECT_EQ(row(r.out, "i"), "i identical");
  EXPECT_EQ(row(r.out, "n"), "n shape [3] vs [4]");
  expect_contains(r.out, "only in " + a_ + ": only_a");
  expect_contains(r.out, "only in " + b_ + ": only_b");
  expect_contains(r.out, "metadata note: differs");
  expect_contains(r.out, "summary: 1 identical, 1 differing, 1 with other shapes");
}

TEST_F(CliTensors, MissingOrCorruptFilesExitTwoWithOneLine) {
  Result r = run_cxr("tensors ls /nonexistent/x.safetensors");
  EXPECT_EQ(r.status, 2);
  expect_contains(r.err, "/nonexistent/x.safetensors");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  const std::string bad = temp_path("bad.safetensors");
  std::ofstream(bad, std::ios::binary) << std::string("\x09\0\0\0\0\0\0\0{not json", 17);
  r = run_cxr("tensors stats '" + bad + "'");
  EXPECT_EQ(r.status, 2);
  expect_contains(r.err, "malformed JSON header");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  std::filesystem::remove(bad);

  r = run_cxr("tensors diff '" + a_ + "'");  // needs two files
  EXPECT_EQ(r.status, 2);
  r = run_cxr("tensors");  // needs ls, stats or diff
  EXPECT_EQ(r.status, 2);
}

TEST(CliEnv, ReportsVersionBuildCpuAndGpus) {
  const Result r = run_cxr("env");
  ASSERT_EQ(r.status, 0) << r.err;
  expect_contains(r.out, "synthcxr ");
  expect_contains(r.out, "CUDA:");
  expect_contains(r.out, "cuDNN:");
  expect_contains(r.out, "NCCL:");
  expect_contains(r.out, "MPI:");
  expect_contains(r.out, "BLAS:        own packed GEMM, micro-kernel ");
  expect_contains(r.out, "OpenMP:");
  expect_contains(r.out, "CUDA devices: ");
}
