// Tests of the CPU GEMM (tensor/cpu/gemm.h): every micro-kernel this CPU supports against the naive
// float64-accumulating loop on odd sizes, all transposition cases, general strides, alpha/beta
// (beta = 0 must ignore NaN in C), dgemm, and bitwise determinism across runs and thread counts.
#include <gtest/gtest.h>
#include <omp.h>  // omp_set_num_threads, omp_get_max_threads

#include <atomic>   // std::atomic, a source's counter
#include <cmath>    // std::fabs
#include <cstring>  // std::memcmp
#include <limits>   // std::numeric_limits
#include <random>   // std::mt19937
#include <string>
#include <vector>

#include "tensor/cpu/gemm.h"
#include "tensor/cpu/gemm_kernels.h"
#include "tensor/error.h"

namespace cxr::cpu {
namespace {

// How a test matrix is laid out in memory.
enum class Layout { kRowMajor, kColMajor, kStrided };

// A rows x cols matrix of random values stored with `layout`: row-/column-major with a padded
// leading dimension, or with no unit stride at all (every element 2 apart along rows).
template <typename T>
struct Matrix {
  int64_t rows, cols, rs = 0, cs = 0;
  std::vector<T> data;

  Matrix(int64_t r, int64_t c, Layout layout, uint32_t seed) : rows(r), cols(c) {
    switch (layout) {
      case Layout::kRowMajor:
        rs = c + 3, cs = 1;
        break;
      case Layout::kColMajor:
        rs = 1, cs = r + 5;
        break;
      case Layout::kStrided:
        rs = 2, cs = 2 * r + 1;
        break;
    }
    data.assign(static_cast<size_t>((r - 1) * rs + (c - 1) * cs + 1), T(0));
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) at(i, j) = static_cast<T>(dist(gen));
  }
  T& at(int64_t i, int64_t j) { return data[static_cast<size_t>(i * rs + j * cs)]; }
  T at(int64_t i, int64_t j) const { return data[static_cast<size_t>(i * rs + j * cs)]; }
};

// Checks C (after the product) against the float64 product of A, B and the old C elementwise, with
// the forward error bound of a K-term dot product with FMA: |err| <= 2 K eps sum_k |alpha a b| +
// 2 eps |beta c| + eps |result| (Higham, Accuracy and Stability of Numerical Algorithms, §3.1).
template <typename T>
void expect_product(const Matrix<T>& a, const Matrix<T>& b, const Matrix<T>& c_old,
                    const Matrix<T>& c, double alpha, double beta, const std::string& what) {
  const double eps = std::numeric_limits<T>::epsilon();
  const int64_t K = a.cols;
  int failures = 0;
  for (int64_t i = 0; i < c.rows; ++i)
    for (int64_t j = 0; j < c.cols; ++j) {
      double dot = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        dot += static_cast<double>(a.at(i, k)) * b.at(k, j);
        mag += std::fabs(static_cast<double>(a.at(i, k)) * b.at(k, j));
      }
      const double old = beta == 0 ? 0 : beta * c_old.at(i, j);
      const double want = alpha * dot + old;
      const double tol = 2 * (K + 1) * eps * std::fabs(alpha) * mag + 2 * eps * std::fabs(old) +
                         eps * std::fabs(want) + std::numeric_limits<T>::min();
      const double got = c.at(i, j);
      if (!(std::fabs(got - want) <= tol) && ++failures <= 5)
        ADD_FAILURE() << what << ": C(" << i << "," << j << ") = " << got << ", want " << want
                      << " +- " << tol;
    }
  EXPECT_EQ(failures, 0) << what;
}

// The ISAs this CPU can run, best first.
std::vector<std::string> supported_isas() {
  std::vector<std::string> isas;
  for (const char* isa : {"avx512", "avx2", "scalar"})
    if (gemm_detail::gemm_isa_supported(isa)) isas.emplace_back(isa);
  return isas;
}

const char* name(Layout layout) {
  switch (layout) {
    case Layout::kRowMajor:
      return "row";
    case Layout::kColMajor:
      return "col";
    case Layout::kStrided:
      return "strided";
  }
  return "?";
}

// Runs one sgemm with `isa` on fresh random operands and checks it.
void check_sgemm(const std::string& isa, int64_t M, int64_t N, int64_t K, Layout la, Layout lb,
                 Layout lc, float alpha, float beta) {
  const Matrix<float> a(M, K, la, 1), b(K, N, lb, 2);
  Matrix<float> c_old(M, N, lc, 3);
  if (beta == 0.0f)  // beta == 0 must not read C
    for (float& v : c_old.data) v = std::numeric_limits<float>::quiet_NaN();
  Matrix<float> c = c_old;
  gemm_detail::sgemm_with_isa(isa.c_str(), M, N, K, alpha, a.data.data(), a.rs, a.cs, b.data.data(),
                              b.rs, b.cs, beta, c.data.data(), c.rs, c.cs);
  expect_product(a, b, c_old, c, alpha, beta,
                 isa + " M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" +
                     std::to_string(K) + " A " + name(la) + " B " + name(lb) + " C " + name(lc) +
                     " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta));
}

TEST(Gemm, IsaNameIsSupported) {
  const std::string isa = gemm_isa();
  EXPECT_TRUE(isa == "avx512" || isa == "avx2" || isa == "scalar") << isa;
  EXPECT_TRUE(gemm_detail::gemm_isa_supported(isa.c_str()));
  EXPECT_TRUE(gemm_detail::gemm_isa_supported("scalar"));
  EXPECT_THROW(gemm_detail::gemm_isa_supported("sse9"), Error);
}

TEST(Gemm, OddSizesAllTranspositionsEveryIsa) {
  const int64_t sizes[] = {1, 7, 63, 65};
  for (const std::string& isa : supported_isas())
    for (int64_t M : sizes)
      for (int64_t N : sizes)
        for (int64_t K : sizes)
          for (Layout la : {Layout::kRowMajor, Layout::kColMajor})
            for (Layout lb : {Layout::kRowMajor, Layout::kColMajor})
              check_sgemm(isa, M, N, K, la, lb, Layout::kRowMajor, 1.0f, 0.0f);
}

TEST(Gemm, LargeDimensionsEveryIsa) {
  struct Shape {
    int64_t m, n, k;
  };
  const Shape shapes[] = {{1000, 65, 63},   {65, 1000, 7},   {63, 7, 1000},
                          {1000, 1000, 65}, {7, 1000, 1000}, {1000, 63, 1000}};
  for (const std::string& isa : supported_isas())
    for (const Shape& s : shapes) {
      check_sgemm(isa, s.m, s.n, s.k, Layout::kRowMajor, Layout::kRowMajor, Layout::kRowMajor, 1.0f,
                  0.0f);
      check_sgemm(isa, s.m, s.n, s.k, Layout::kColMajor, Layout::kColMajor, Layout::kColMajor, 1.0f,
                  0.0f);
    }
}

TEST(Gemm, GeneralStridesEveryIsa) {
  for (const std::string& isa : supported_isas())
    for (Layout lc : {Layout::kRowMajor, Layout::kColMajor, Layout::kStrided}) {
      check_sgemm(isa, 65, 63, 70, Layout::kStrided, Layout::kStrided, lc, 1.0f, 0.0f);
      check_sgemm(isa, 130, 29, 500, Layout::kStrided, Layout::kRowMajor, lc, 1.0f, 0.5f);
      check_sgemm(isa, 33, 140, 400, Layout::kColMajor, Layout::kStrided, lc, 1.0f, 1.0f);
    }
}

TEST(Gemm, AlphaBetaEveryIsa) {
  for (const std::string& isa : supported_isas())
    for (float alpha : {1.0f, -0.5f, 0.0f})
      for (float beta : {0.0f, 1.0f, 0.25f}) {
        check_sgemm(isa, 65, 63, 7, Layout::kRowMajor, Layout::kColMajor, Layout::kRowMajor, alpha,
                    beta);
        check_sgemm(isa, 100, 70, 900, Layout::kColMajor, Layout::kRowMajor, Layout::kColMajor,
                    alpha, beta);
      }
}

TEST(Gemm, EmptyAndZeroK) {
  // K = 0: C = beta * C, and with beta = 0 NaN in C becomes 0.
  std::vector<float> c(6, std::numeric_limits<float>::quiet_NaN());
  sgemm(2, 3, 0, 1.0f, nullptr, 0, 1, nullptr, 3, 1, 0.0f, c.data(), 3, 1);
  for (float v : c) EXPECT_EQ(v, 0.0f);
  std::vector<float> d = {1, 2, 3, 4, 5, 6};
  sgemm(2, 3, 0, 1.0f, nullptr, 0, 1, nullptr, 3, 1, 2.0f, d.data(), 3, 1);
  EXPECT_EQ(d, (std::vector<float>{2, 4, 6, 8, 10, 12}));
  sgemm(0, 3, 5, 1.0f, nullptr, 5, 1, nullptr, 3, 1, 0.0f, nullptr, 3, 1);  // nothing to do
  EXPECT_THROW(sgemm(-1, 3, 5, 1.0f, nullptr, 5, 1, nullptr, 3, 1, 0.0f, nullptr, 3, 1), Error);
  EXPECT_THROW(sgemm(2, 3, 5, 1.0f, nullptr, 5, 1, nullptr, 3, 1, 0.0f, c.data(), 3, 1), Error);
}

TEST(Gemm, NegativeStrides) {
  // A and C walked backwards along their rows (a reversed view) give the reversed product.
  const Matrix<float> a(40, 50, Layout::kRowMajor, 4), b(50, 37, Layout::kRowMajor, 5);
  Matrix<float> c(40, 37, Layout::kRowMajor, 6), c_ref = c;
  sgemm(40, 37, 50, 1.0f, a.data.data() + 39 * a.rs, -a.rs, a.cs, b.data.data(), b.rs, b.cs, 0.0f,
        c.data.data() + 39 * c.rs, -c.rs, c.cs);
  sgemm(40, 37, 50, 1.0f, a.data.data(), a.rs, a.cs, b.data.data(), b.rs, b.cs, 0.0f,
        c_ref.data.data(), c_ref.rs, c_ref.cs);
  for (int64_t i = 0; i < 40; ++i)
    for (int64_t j = 0; j < 37; ++j) EXPECT_EQ(c.at(i, j), c_ref.at(i, j));
}

TEST(Gemm, Dgemm) {
  struct Case {
    int64_t m, n, k;
    Layout la, lb, lc;
    double alpha, beta;
  };
  const Case cases[] = {
      {1, 1, 1, Layout::kRowMajor, Layout::kRowMajor, Layout::kRowMajor, 1.0, 0.0},
      {65, 63, 7, Layout::kRowMajor, Layout::kColMajor, Layout::kRowMajor, 1.0, 0.0},
      {7, 65, 63, Layout::kColMajor, Layout::kRowMajor, Layout::kColMajor, -0.5, 1.0},
      {130, 70, 500, Layout::kStrided, Layout::kColMajor, Layout::kStrided, 2.0, 0.25},
      {300, 200, 400, Layout::kRowMajor, Layout::kRowMajor, Layout::kRowMajor, 1.0, 0.0},
  };
  for (const Case& t : cases) {
    const Matrix<double> a(t.m, t.k, t.la, 7), b(t.k, t.n, t.lb, 8);
    Matrix<double> c_old(t.m, t.n, t.lc, 9);
    if (t.beta == 0)
      for (double& v : c_old.data) v = std::numeric_limits<double>::quiet_NaN();
    Matrix<double> c = c_old;
    dgemm(t.m, t.n, t.k, t.alpha, a.data.data(), a.rs, a.cs, b.data.data(), b.rs, b.cs, t.beta,
          c.data.data(), c.rs, c.cs);
    expect_product(a, b, c_old, c, t.alpha, t.beta, "dgemm M=" + std::to_string(t.m));
  }
}

TEST(Gemm, NaiveMatchesFloat64Product) {
  const Matrix<float> a(9, 11, Layout::kRowMajor, 10), b(11, 5, Layout::kColMajor, 11);
  Matrix<float> c_old(9, 5, Layout::kRowMajor, 12), c = c_old;
  sgemm_naive(9, 5, 11, 0.5f, a.data.data(), a.rs, a.cs, b.data.data(), b.rs, b.cs, 2.0f,
              c.data.data(), c.rs, c.cs);
  expect_product(a, b, c_old, c, 0.5, 2.0, "sgemm_naive");
}

// Restores the OpenMP thread count a test changed.
class ThreadCountGuard {
 public:
  ThreadCountGuard() : saved_(omp_get_max_threads()) {}
  ~ThreadCountGuard() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

// Runs sgemm with `threads` OpenMP threads on fixed operands and returns C.
std::vector<float> product_with_threads(const std::string& isa, int threads, int64_t M, int64_t N,
                                        int64_t K) {
  omp_set_num_threads(threads);
  const Matrix<float> a(M, K, Layout::kRowMajor, 13), b(K, N, Layout::kColMajor, 14);
  Matrix<float> c(M, N, Layout::kRowMajor, 15);
  gemm_detail::sgemm_with_isa(isa.c_str(), M, N, K, 1.5f, a.data.data(), a.rs, a.cs, b.data.data(),
                              b.rs, b.cs, 0.5f, c.data.data(), c.rs, c.cs);
  return c.data;
}

TEST(Gemm, BitwiseDeterministicAcrossRunsAndThreadCounts) {
  ThreadCountGuard guard;
  struct Shape {
    int64_t m, n, k;
  };
  // Large enough to run threaded, with K > KC so several K blocks accumulate. Row-major C is
  // computed as C^T, so {2000, 20} has 20 kernel rows and splits N, the others split M.
  const Shape shapes[] = {{517, 389, 700}, {2000, 20, 300}, {20, 2000, 900}};
  for (const std::string& isa : supported_isas())
    for (const Shape& s : shapes) {
      const std::vector<float> two = product_with_threads(isa, 2, s.m, s.n, s.k);
      const std::vector<float> again = product_with_threads(isa, 2, s.m, s.n, s.k);
      const std::vector<float> one = product_with_threads(isa, 1, s.m, s.n, s.k);
      const size_t bytes = sizeof(float) * two.size();
      EXPECT_EQ(std::memcmp(two.data(), again.data(), bytes), 0)
          << isa << " M=" << s.m << " N=" << s.n << " K=" << s.k;
      EXPECT_EQ(std::memcmp(two.data(), one.data(), bytes), 0)
          << isa << " M=" << s.m << " N=" << s.n << " K=" << s.k;
    }
}

// A B operand served block by block through the PanelSource interface from a stored matrix, as
// a convolution's im2col source does; counts the values it packs.
template <typename T>
class StoredSource final : public PanelSource<T> {
 public:
  explicit StoredSource(const Matrix<T>& b) : b_(b) {}
  void pack(int64_t line0, int64_t len, int64_t k0, int64_t kc, int w, T* dst) const override {
    // B's lines are its columns: line j, index p is B(p, j).
    pack_panels(len, kc, &b_.data[static_cast<size_t>(line0 * b_.cs + k0 * b_.rs)], b_.cs, b_.rs, w,
                dst, int64_t(w) * kc);
    packed_ += len * kc;
  }
  mutable std::atomic<int64_t> packed_{0};

 private:
  const Matrix<T>& b_;
};

template <typename T>
void expect_source_gives_stored_result(int64_t M, int64_t N, int64_t K, Layout lc, int threads) {
  ThreadCountGuard guard;
  omp_set_num_threads(threads);
  const Matrix<T> a(M, K, Layout::kRowMajor, 21), b(K, N, Layout::kRowMajor, 22);
  Matrix<T> stored(M, N, lc, 23);
  Matrix<T> sourced = stored;
  gemm(M, N, K, a.data.data(), a.rs, a.cs, b.data.data(), b.rs, b.cs, T(0.5), stored.data.data(),
       stored.rs, stored.cs);
  const StoredSource<T> source(b);
  gemm(M, N, K, a.data.data(), a.rs, a.cs, source, T(0.5), sourced.data.data(), sourced.rs,
       sourced.cs);
  const std::string what = std::string(sizeof(T) == 4 ? "float" : "double") +
                           " M=" + std::to_string(M) + " N=" + std::to_string(N) +
                           " K=" + std::to_string(K) + " C " + name(lc) +
                           " threads=" + std::to_string(threads);
  EXPECT_EQ(stored.data, sourced.data) << what;
  // Every value of B is packed at least once (more often when B is repacked per block of A).
  EXPECT_GE(source.packed_.load(), N * K) << what;
}

TEST(Gemm, PanelSourceGivesTheSameBitsAsTheStoredOperand) {
  // Row-major C is computed as C^T, where the source becomes the A operand (packed per MC block);
  // column-major C keeps it as B. Sizes span several MC, NC and KC blocks and split M or N.
  struct Shape {
    int64_t m, n, k;
  };
  for (const Shape& s : {Shape{517, 389, 700}, Shape{2000, 20, 300}, Shape{20, 2000, 900}})
    for (Layout lc : {Layout::kRowMajor, Layout::kColMajor})
      for (int threads : {1, 2}) {
        expect_source_gives_stored_result<float>(s.m, s.n, s.k, lc, threads);
        expect_source_gives_stored_result<double>(s.m, s.n, s.k, lc, threads);
      }
}

TEST(Gemm, PackPanelsWritesTheDocumentedLayout) {
  // 37 lines of a k = 5 strip, contiguous along k (the transposing path) and along the lines,
  // into panels of width w = 16 that are 16 * 9 values apart (room for k = 9).
  constexpr int64_t kLen = 37, kK = 5, kW = 16, kStride = kW * 9;
  std::vector<float> by_line(kLen * kK), by_k(kLen * kK);
  for (int64_t i = 0; i < kLen; ++i)
    for (int64_t p = 0; p < kK; ++p) by_line[i * kK + p] = by_k[p * kLen + i] = float(i * 100 + p);
  for (bool lines_contiguous : {false, true}) {
    std::vector<float> dst(3 * kStride, -1.0f);
    if (lines_contiguous)
      pack_panels(kLen, kK, by_k.data(), 1, kLen, kW, dst.data(), kStride);
    else
      pack_panels(kLen, kK, by_line.data(), kK, 1, kW, dst.data(), kStride);
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t p = 0; p < 9; ++p)
        for (int64_t slot = 0; slot < kW; ++slot) {
          const int64_t i = r * kW + slot;
          const float want = p >= kK ? -1.0f : i < kLen ? float(i * 100 + p) : 0.0f;
          EXPECT_EQ(dst[r * kStride + p * kW + slot], want)
              << "lines contiguous " << lines_contiguous << " panel " << r << " p " << p << " slot "
              << slot;
        }
  }
}

}  // namespace
}  // namespace cxr::cpu
