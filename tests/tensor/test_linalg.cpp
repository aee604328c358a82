// matmul / bmm / linear: torch.matmul semantics against PyTorch golden values
// (tests/golden/gen_conv.py), a naive double-precision reference for odd sizes and strided views,
// half types, bitwise determinism across thread counts and the errors for bad shapes.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>

#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

const std::map<std::string, Tensor>& fixture() {
  static const auto f = test::load_fixture("conv.safetensors");
  return f;
}
Tensor fx(const std::string& key) {
  return test::fixture_tensor(fixture(), key);
}

// C[i, j] = sum_k A[i, k] B[k, j] in double for 2-D tensors of any layout.
Tensor reference_mm(const Tensor& a, const Tensor& b) {
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  std::vector<double> c(size_t(m * n), 0.0);
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) s += av[size_t(i * k + p)] * bv[size_t(p * n + j)];
      c[size_t(i * n + j)] = s;
    }
  return raw::from_vector(c, {m, n}, kFloat64);
}

}  // namespace

TEST(Matmul, AllRankCombinationsMatchPyTorch) {
  for (const char* name : {"mm", "dot", "vm", "mv", "bcast", "bvec", "vb"}) {
    SCOPED_TRACE(name);
    const std::string k = std::string("matmul_") + name + ".";
    EXPECT_ALL_CLOSE(raw::matmul(fx(k + "a"), fx(k + "b")), fx(k + "out"), 1e-5, 1e-5);
  }
  EXPECT_ALL_CLOSE(raw::bmm(fx("bmm.a"), fx("bmm.b")), fx("bmm.out"), 1e-5, 1e-5);
}

TEST(Matmul, TransposedOperandsGiveThePyTorchGradients) {
  // dL/dA = G Bᵀ and dL/dB = Aᵀ G, with the transposes passed as views (no copy).
  const Tensor a = fx("matmul_mm.a"), b = fx("matmul_mm.b"), g = fx("matmul_mm.gy");
  EXPECT_ALL_CLOSE(raw::matmul(g, raw::transpose(b, 0, 1)), fx("matmul_mm.grad_a"), 1e-5, 1e-5);
  EXPECT_ALL_CLOSE(raw::matmul(raw::transpose(a, 0, 1), g), fx("matmul_mm.grad_b"), 1e-5, 1e-5);
  const Tensor ba = fx("bmm.a"), bb = fx("bmm.b"), bg = fx("bmm.gy");
  EXPECT_ALL_CLOSE(raw::bmm(bg, raw::transpose(bb, 1, 2)), fx("bmm.grad_a"), 1e-5, 1e-5);
  EXPECT_ALL_CLOSE(raw::bmm(raw::transpose(ba, 1, 2), bg), fx("bmm.grad_b"), 1e-5, 1e-5);
}

TEST(Matmul, OddSizesAndStridedViewsMatchNaiveReference) {
  Generator gen(21);
  const int64_t sizes[] = {1, 7, 63, 65};
  for (int64_t m : sizes)
    for (int64_t n : sizes)
      for (int64_t k : sizes) {
        SCOPED_TRACE(::testing::Message() << "M=" << m << " N=" << n << " K=" << k);
        const Tensor a = raw::randn({m, k}, gen), b = raw::randn({k, n}, gen);
        const Tensor ref = reference_mm(a, b);
        EXPECT_ALL_CLOSE(raw::matmul(a, b), ref, 1e-4, 1e-4);
        // Aᵀ and Bᵀ stored: column-major operands.
        const Tensor at = raw::transpose(raw::contiguous(raw::transpose(a, 0, 1)), 0, 1);
        const Tensor bt = raw::transpose(raw::contiguous(raw::transpose(b, 0, 1)), 0, 1);
        EXPECT_ALL_CLOSE(raw::matmul(at, bt), ref, 1e-4, 1e-4);
        // Every other row and column of a bigger matrix: no unit stride at all (copied).
        const Tensor big = raw::randn({2 * m, 2 * k}, gen);
        const Tensor as = raw::slice(raw::slice(big, 0, 0, 2 * m, 2), 1, 0, 2 * k, 2);
        EXPECT_ALL_CLOSE(raw::matmul(as, b), reference_mm(as, b), 1e-4, 1e-4);
      }
}

TEST(Matmul, Float64AndBroadcastBatchesMatchReference) {
  Generator gen(4);
  const Tensor a = raw::randn({3, 1, 7, 65}, gen, kFloat64);
  const Tensor b = raw::randn({4, 65, 63}, gen, kFloat64);
  const Tensor c = raw::matmul(a, b);
  ASSERT_EQ(c.sizes(), (Shape{3, 4, 7, 63}));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j)
      EXPECT_ALL_CLOSE(raw::select(raw::select(c, 0, i), 0, j),
                       reference_mm(raw::select(raw::select(a, 0, i), 0, 0), raw::select(b, 0, j)),
                       1e-12, 1e-12);
  // An expanded (stride 0) operand reads the same matrix for every batch.
  const Tensor e = raw::expand(raw::randn({1, 7, 5}, gen), {6, 7, 5});
  const Tensor f = raw::randn({6, 5, 9}, gen);
  const Tensor r = raw::bmm(e, f);
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_ALL_CLOSE(raw::select(r, 0, i), reference_mm(raw::select(e, 0, i), raw::select(f, 0, i)),
                     1e-5, 1e-5);
}

TEST(Matmul, EmptyInnerDimensionGivesZeros) {
  const Tensor c = raw::matmul(raw::zeros({3, 0}), raw::zeros({0, 4}));
  EXPECT_EQ(c.sizes(), (Shape{3, 4}));
  EXPECT_EQ(c.to_vector<double>(), std::vector<double>(12, 0.0));
}

TEST(Matmul, HalfTypesComputeInFloat32) {
  for (DType dt : {kFloat16, kBFloat16}) {
    const double tol = dt == kFloat16 ? 1e-2 : 5e-2;
    const Tensor c =
        raw::matmul(raw::to(fx("matmul_bcast.a"), dt), raw::to(fx("matmul_bcast.b"), dt));
    EXPECT_EQ(c.dtype(), dt);
    EXPECT_ALL_CLOSE(c, fx("matmul_bcast.out"), tol, tol);
    const Tensor y = raw::linear(raw::to(fx("linear_bias.x"), dt), raw::to(fx("linear_bias.w"), dt),
                                 raw::to(fx("linear_bias.b"), dt));
    EXPECT_EQ(y.dtype(), dt);
    EXPECT_ALL_CLOSE(y, fx("linear_bias.out"), tol, tol);
  }
}

TEST(Matmul, BatchesAreBitwiseIdenticalForAnyThreadCount) {
  Generator gen(8);
  const int saved = omp_get_max_threads();
  // Small matrices (batch split over threads) and large ones (threads inside each GEMM).
  for (const auto& [as, bs] : {std::pair<Shape, Shape>{{16, 33, 17}, {16, 17, 29}},
                               std::pair<Shape, Shape>{{2, 300, 260}, {2, 260, 310}}}) {
    const Tensor a = raw::randn(as, gen), b = raw::randn(bs, gen);
    omp_set_num_threads(1);
    const Tensor one = raw::bmm(a, b);
    omp_set_num_threads(2);
    const Tensor two = raw::bmm(a, b);
    EXPECT_TRUE(test::bitwise_equal(one, two));
  }
  omp_set_num_threads(saved);
}

TEST(Linear, FusedBiasMatchesPyTorch) {
  for (const char* name : {"linear_bias", "linear_nobias", "linear_vec"}) {
    SCOPED_TRACE(name);
    const std::string k = std::string(name) + ".";
    const Tensor b = std::string(name) == "linear_nobias" ? Tensor() : fx(k + "b");
    EXPECT_ALL_CLOSE(raw::linear(fx(k + "x"), fx(k + "w"), b), fx(k + "out"), 1e-5, 1e-5);
  }
}

TEST(Linear, StridedInputsMatchReference) {
  Generator gen(12);
  // x [4, 5, 7] permuted from [5, 4, 7]: its leading dims do not collapse into one row stride.
  const Tensor x = raw::permute(raw::randn({5, 4, 7}, gen), {1, 0, 2});
  const Tensor w_t = raw::randn({7, 3}, gen);  // weight [3, 7] as a transposed view
  const Tensor w = raw::transpose(w_t, 0, 1), b = raw::randn({3}, gen);
  const Tensor y = raw::linear(x, w, b);
  ASSERT_EQ(y.sizes(), (Shape{4, 5, 3}));
  const auto bv = b.to_vector<double>();
  for (int64_t i = 0; i < 4; ++i) {
    Tensor ref = reference_mm(raw::select(x, 0, i), w_t);
    auto rv = ref.to_vector<double>();
    for (size_t e = 0; e < rv.size(); ++e) rv[e] += bv[e % 3];
    EXPECT_ALL_CLOSE(raw::select(y, 0, i), raw::from_vector(rv, {5, 3}, kFloat64), 1e-5, 1e-5);
  }
}

TEST(Linalg, BadShapesGiveClearErrors) {
  const Tensor a = raw::zeros({3, 4}), b = raw::zeros({5, 2});
  EXPECT_ERROR_CONTAINS({ raw::matmul(a, b); },
                        "inner dimensions differ: float32[3, 4] and float32[5, 2]");
  EXPECT_ERROR_CONTAINS(
      {
        raw::matmul(raw::zeros({2, 3, 4}), raw::zeros({3, 4, 2}));
      },
      "[2] and [3]");
  EXPECT_ERROR_CONTAINS({ raw::matmul(raw::zeros({}), a); }, "at least 1 dim");
  EXPECT_ERROR_CONTAINS({ raw::matmul(a, raw::zeros({4, 2}, kFloat64)); }, "dtypes differ");
  EXPECT_ERROR_CONTAINS(
      {
        raw::matmul(raw::zeros({3, 4}, kInt64), raw::zeros({4, 2}, kInt64));
      },
      "expected floating tensors");
  EXPECT_ERROR_CONTAINS({ raw::bmm(a, raw::zeros({4, 2})); }, "expected two 3-D tensors");
  EXPECT_ERROR_CONTAINS(
      {
        raw::bmm(raw::zeros({2, 3, 4}), raw::zeros({3, 4, 2}));
      },
      "batch sizes differ");
  EXPECT_ERROR_CONTAINS(
      {
        raw::linear(raw::zeros({2, 5}), a, Tensor());
      },
      "has 5 features but weight float32[3, 4] expects 4");
  EXPECT_ERROR_CONTAINS(
      {
        raw::linear(raw::zeros({2, 4}), a, raw::zeros({4}));
      },
      "bias must be [3]");
  EXPECT_ERROR_CONTAINS(
      {
        raw::linear(raw::zeros({2, 4}), raw::zeros({4}), Tensor());
      },
      "weight must be 2-D");
}
