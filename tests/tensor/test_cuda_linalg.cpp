// matmul / bmm / linear on CUDA (tensor/cuda/linalg.cu, cuBLAS) against the CPU in float64 on the
// same (dtype-rounded) inputs: every dtype, vectors, N-D broadcasting (the strided-batched and the
// folded paths), transposed, sliced and expanded views, K = 1, M or N = 1, empty dims, the bias,
// determinism, and the errors (same messages as on the CPU). Tolerances are relative to the largest
// expected magnitude: TF32 (float32) 5e-3, float16 1e-2, bfloat16 4e-2, float64 1e-12. Every test
// skips without a CUDA device.
#include <gtest/gtest.h>

#include <string>

#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

using test::cpu_f64;
using test::kFloatDtypes;
using test::spread_input;
using test::to_cuda;

// matmul of views made by `view_a` / `view_b` from CPU tensors of shapes sa, sb, on CUDA vs CPU.
template <typename ViewA, typename ViewB>
void check_matmul(const Shape& sa, const Shape& sb, ViewA view_a, ViewB view_b,
                  const std::string& what) {
  for (DType dtype : kFloatDtypes) {
    const Tensor a = spread_input(sa, dtype), b = spread_input(sb, dtype);
    const Tensor expected = raw::matmul(view_a(cpu_f64(a)), view_b(cpu_f64(b)));
    test::expect_matches_tf32_reference(raw::matmul(view_a(to_cuda(a)), view_b(to_cuda(b))),
                                        expected, dtype, what);
  }
}

void check_matmul(const Shape& sa, const Shape& sb, const std::string& what) {
  auto same = [](const Tensor& t) { return t; };
  check_matmul(sa, sb, same, same, what);
}

TEST(CudaLinalg, Matmul2D) {
  CXR_SKIP_WITHOUT_CUDA();
  check_matmul({37, 53}, {53, 29}, "[37, 53] x [53, 29]");
  check_matmul({64, 1000}, {1000, 48}, "[64, 1000] x [1000, 48] (long K)");
}

TEST(CudaLinalg, MatmulVectors) {
  CXR_SKIP_WITHOUT_CUDA();
  check_matmul({53}, {53, 29}, "[53] x [53, 29]");
  check_matmul({37, 53}, {53}, "[37, 53] x [53]");
  check_matmul({53}, {53}, "[53] x [53] (dot)");
  check_matmul({4, 37, 53}, {53}, "[4, 37, 53] x [53]");
  check_matmul({53}, {4, 53, 29}, "[53] x [4, 53, 29]");
}

TEST(CudaLinalg, MatmulBroadcastBatch) {
  CXR_SKIP_WITHOUT_CUDA();
  check_matmul({3, 1, 5, 7}, {4, 7, 6}, "[3, 1, 5, 7] x [4, 7, 6]");
  check_matmul({2, 3, 5, 7}, {7, 6}, "[2, 3, 5, 7] x [7, 6] (folded)");
  check_matmul({2, 3, 1, 7}, {7, 6}, "[2, 3, 1, 7] x [7, 6] (folded, M = 1)");
  check_matmul({5, 7}, {2, 3, 7, 6}, "[5, 7] x [2, 3, 7, 6]");
  check_matmul({2, 1, 5, 7}, {1, 3, 7, 6}, "[2, 1, 5, 7] x [1, 3, 7, 6]");
}

TEST(CudaLinalg, MatmulTransposedAndStridedViews) {
  CXR_SKIP_WITHOUT_CUDA();
  auto same = [](const Tensor& t) { return t; };
  auto t01 = [](const Tensor& t) { return raw::transpose(t, -1, -2); };
  check_matmul({53, 37}, {53, 29}, t01, same, "[53, 37]^T x [53, 29]");
  check_matmul({37, 53}, {29, 53}, same, t01, "[37, 53] x [29, 53]^T");
  check_matmul({53, 37}, {29, 53}, t01, t01, "[53, 37]^T x [29, 53]^T");
  check_matmul({4, 53, 37}, {4, 29, 53}, t01, t01, "batched transposes");
  // Column step 2: no unit stride, copied; row slices keep a unit column stride.
  auto step2 = [](const Tensor& t) { return raw::slice(t, -1, 1, t.size(-1), 2); };
  check_matmul({37, 107}, {53, 29}, step2, same, "[37, 107][:, 1::2] x [53, 29]");
  auto rows = [](const Tensor& t) { return raw::slice(t, 0, 3, t.size(0) - 2); };
  check_matmul({42, 53}, {58, 29}, rows, rows, "row slices");
  // Batch entries that are not evenly spaced: a permuted batch.
  auto perm = [](const Tensor& t) { return raw::permute(t, {1, 0, 2, 3}); };
  check_matmul({3, 2, 5, 7}, {2, 3, 7, 6}, perm, same, "permuted batch");
  // Broadcast by expand (stride 0) in the batch and in the rows.
  auto expand_batch = [](const Tensor& t) { return raw::expand(t, {4, t.size(1), t.size(2)}); };
  check_matmul({1, 5, 7}, {4, 7, 6}, expand_batch, same, "expanded batch");
  auto expand_rows = [](const Tensor& t) { return raw::expand(t, {5, t.size(1)}); };
  check_matmul({1, 7}, {7, 6}, expand_rows, same, "expanded rows");
}

TEST(CudaLinalg, MatmulDegenerateSizes) {
  CXR_SKIP_WITHOUT_CUDA();
  check_matmul({5, 1}, {1, 6}, "K = 1");
  check_matmul({1, 7}, {7, 6}, "M = 1");
  check_matmul({5, 7}, {7, 1}, "N = 1");
  check_matmul({0, 7}, {7, 5}, "M = 0");
  check_matmul({5, 0}, {0, 6}, "K = 0 (zeros)");
  check_matmul({0, 5, 7}, {7, 6}, "empty batch");
}

TEST(CudaLinalg, Bmm) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dtype : kFloatDtypes) {
    const Tensor a = spread_input({4, 13, 17}, dtype), b = spread_input({4, 11, 17}, dtype);
    const Tensor expected = raw::bmm(cpu_f64(a), raw::transpose(cpu_f64(b), 1, 2));
    test::expect_matches_tf32_reference(raw::bmm(to_cuda(a), raw::transpose(to_cuda(b), 1, 2)),
                                        expected, dtype, "bmm [4, 13, 17] x [4, 11, 17]^T");
  }
}

TEST(CudaLinalg, Linear) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dtype : kFloatDtypes) {
    const Tensor x = spread_input({3, 5, 17}, dtype), w = spread_input({11, 17}, dtype),
                 b = spread_input({11}, dtype);
    test::expect_matches_tf32_reference(raw::linear(to_cuda(x), to_cuda(w), to_cuda(b)),
                                        raw::linear(cpu_f64(x), cpu_f64(w), cpu_f64(b)), dtype,
                                        "linear with bias");
    test::expect_matches_tf32_reference(raw::linear(to_cuda(x), to_cuda(w), Tensor()),
                                        raw::linear(cpu_f64(x), cpu_f64(w), Tensor()), dtype,
                                        "linear without bias");
    const Tensor v = spread_input({17}, dtype);
    test::expect_matches_tf32_reference(raw::linear(to_cuda(v), to_cuda(w), to_cuda(b)),
                                        raw::linear(cpu_f64(v), cpu_f64(w), cpu_f64(b)), dtype,
                                        "linear of a vector");
    // Leading dims that do not collapse into one row stride, and a transposed weight.
    const Tensor xp = spread_input({5, 3, 17}, dtype), wt = spread_input({17, 11}, dtype);
    auto px = [](const Tensor& t) { return raw::permute(t, {1, 0, 2}); };
    auto tw = [](const Tensor& t) { return raw::transpose(t, 0, 1); };
    test::expect_matches_tf32_reference(raw::linear(px(to_cuda(xp)), tw(to_cuda(wt)), to_cuda(b)),
                                        raw::linear(px(cpu_f64(xp)), tw(cpu_f64(wt)), cpu_f64(b)),
                                        dtype, "linear of permuted input, transposed weight");
    // No input features: the output is the bias.
    const Tensor x0 = spread_input({4, 0}, dtype), w0 = spread_input({6, 0}, dtype),
                 b6 = spread_input({6}, dtype);
    test::expect_matches_tf32_reference(raw::linear(to_cuda(x0), to_cuda(w0), to_cuda(b6)),
                                        raw::linear(cpu_f64(x0), cpu_f64(w0), cpu_f64(b6)), dtype,
                                        "linear with 0 features");
  }
}

TEST(CudaLinalg, Deterministic) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dtype : kFloatDtypes) {
    const Tensor a = to_cuda(spread_input({3, 65, 130}, dtype)),
                 b = to_cuda(spread_input({130, 77}, dtype));
    EXPECT_TRUE(test::bitwise_equal(raw::matmul(a, b), raw::matmul(a, b))) << dtype_name(dtype);
  }
}

TEST(CudaLinalg, Errors) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor a = spread_input({3, 4}, kFloat32), b = spread_input({5, 6}, kFloat32);
  EXPECT_ERROR_CONTAINS(raw::matmul(to_cuda(a), spread_input({4, 6}, kFloat32)),
                        "expected all tensors on one device");
  EXPECT_ERROR_CONTAINS(
      raw::linear(to_cuda(a), to_cuda(spread_input({6, 4}, kFloat32)), spread_input({6}, kFloat32)),
      "expected all tensors on one device");
  auto mm = [](const Tensor& x, const Tensor& y) { raw::matmul(x, y); };
  auto bmm = [](const Tensor& x, const Tensor& y) { raw::bmm(x, y); };
  auto lin = [](const Tensor& x, const Tensor& y) { raw::linear(x, y, Tensor()); };
  EXPECT_SAME_ERROR(mm, a, b);
  EXPECT_SAME_ERROR(mm, spread_input({2, 3, 4}, kFloat32), spread_input({3, 4, 5}, kFloat32));
  EXPECT_SAME_ERROR(mm, a, spread_input({4, 6}, kFloat64));
  EXPECT_SAME_ERROR(mm, raw::to(a, kInt64), raw::to(spread_input({4, 6}, kFloat32), kInt64));
  EXPECT_SAME_ERROR(bmm, spread_input({2, 3, 4}, kFloat32), spread_input({3, 4, 5}, kFloat32));
  EXPECT_SAME_ERROR(bmm, a, spread_input({4, 6}, kFloat32));
  EXPECT_SAME_ERROR(lin, a, b);
}

}  // namespace
