// Scaled dot-product attention on CUDA (tensor/cuda/attention.cu) against the CPU op (the
// specification): forward (out, lse) and backward (dq, dk, dv) for head dims 8..256, sizes
// that are not multiples of the tiles, bool / float / broadcast masks, causal with L != S, fully
// masked rows, every floating dtype, several leading dims, permuted (non-contiguous) inputs, empty
// problems; bitwise determinism run to run; the errors (mixed devices, bad shapes). Every GPU run
// goes through both kernel selections (cuda::set_attention_kernel: Auto, the tensor-core kernels
// of attention_tc.cu for float16/bfloat16, and Simt), and AutoMatchesSimt compares the two
// directly. Every test skips without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "tensor/backend.h"         // kCudaBuilt
#include "tensor/cuda/attention.h"  // set_attention_kernel (defined in CUDA builds only)
#include "tensor/ops.h"

using namespace cxr;

namespace {

const Device kGpu = Device::cuda(0);

using cuda::AttentionKernel;
const AttentionKernel kKernels[] = {AttentionKernel::Auto, AttentionKernel::Simt};

const char* kernel_name(AttentionKernel k) {
  return k == AttentionKernel::Auto ? "kernel Auto" : "kernel Simt";
}

// Selects the attention kernels for its lifetime (back to Auto, the default, after).
class KernelScope {
 public:
  explicit KernelScope(AttentionKernel k) {
    if constexpr (kCudaBuilt) cuda::set_attention_kernel(k);
  }
  ~KernelScope() {
    if constexpr (kCudaBuilt) cuda::set_attention_kernel(AttentionKernel::Auto);
  }
  KernelScope(const KernelScope&) = delete;
  KernelScope& operator=(const KernelScope&) = delete;
};

// Relative tolerance (against the largest |expected|) of a CUDA result vs the CPU result of the
// same inputs, per dtype: both compute in float32 (float64), so only the summation order differs
// (and, for the half types, the final rounding).
double tolerance(DType dt, bool grad) {
  switch (dt) {
    case kFloat64:
      return 1e-10;
    case kFloat16:
      return 2e-2;
    case kBFloat16:
      return 5e-2;
    default:
      return grad ? 5e-5 : 1e-5;
  }
}

// all_close with atol = rel · (largest finite |expected|, at least 1): infinities (the LSE of a
// fully masked row) must match exactly and do not widen the tolerance.
::testing::AssertionResult close(const Tensor& actual, const Tensor& expected, double rel) {
  double scale = 1.0;
  for (double x : expected.to_vector<double>())
    if (std::isfinite(x)) scale = std::max(scale, std::abs(x));
  return test::all_close(actual, expected, rel, rel * scale);
}

Tensor randn_as(const Shape& shape, DType dt, uint64_t seed) {
  Generator gen(seed);
  return raw::to(raw::randn(shape, gen), dt);
}

enum class MaskKind { None, Bool, Float, BoolLS, FloatLS, Padding };

const char* mask_name(MaskKind m) {
  switch (m) {
    case MaskKind::None:
      return "none";
    case MaskKind::Bool:
      return "bool[B,H,L,S]";
    case MaskKind::Float:
      return "float[B,H,L,S]";
    case MaskKind::BoolLS:
      return "bool[L,S]";
    case MaskKind::FloatLS:
      return "float[L,S]";
    case MaskKind::Padding:
      return "bool[B,1,1,S]";
  }
  return "?";
}

// A mask of the kind for q [B, H, L, *] and k [B, H, S, *]; bool masks keep most entries and drop
// a scattered few; float masks add small values and -inf in the same places; the padding mask
// hides the last 3·b keys of batch b (never all of them).
Tensor make_mask(MaskKind kind, int64_t B, int64_t H, int64_t L, int64_t S, DType float_dtype) {
  if (kind == MaskKind::None) return {};
  const bool ls = kind == MaskKind::BoolLS || kind == MaskKind::FloatLS;
  const bool pad = kind == MaskKind::Padding;
  const bool is_bool = kind == MaskKind::Bool || kind == MaskKind::BoolLS || pad;
  const Shape shape = pad ? Shape{B, 1, 1, S} : ls ? Shape{L, S} : Shape{B, H, L, S};
  std::vector<double> m(size_t(shape_numel(shape)));
  const double ninf = -std::numeric_limits<double>::infinity();
  for (size_t e = 0; e < m.size(); ++e) {
    const int64_t j = int64_t(e) % S, rest = int64_t(e) / S;
    bool keep;
    if (pad)
      keep = j < std::max<int64_t>(1, S - 3 * rest);
    else
      keep = (rest * 5 + j * 3) % 7 != 0;
    m[e] = is_bool ? (keep ? 1.0 : 0.0) : (keep ? 0.25 * double((rest + j) % 5) - 0.5 : ninf);
  }
  return raw::to(raw::from_vector(m, shape), is_bool ? kBool : float_dtype);
}

std::string describe_case(const Tensor& q, const Tensor& k, const Tensor& v, MaskKind mask,
                          bool causal) {
  return "q " + describe(q) + " k " + describe(k) + " v " + describe(v) + " mask " +
         mask_name(mask) + (causal ? " causal" : "");
}

// Runs forward and backward on the CPU and on the GPU (inputs copied there; each kernel selection)
// and compares all five results.
void expect_matches_cpu(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                        bool causal, double scale, const Tensor& gy, const std::string& what) {
  SCOPED_TRACE(what);
  const DType dt = q.dtype();
  raw::AttentionResult rc = raw::scaled_dot_product_attention(q, k, v, mask, causal, scale);
  raw::AttentionGrads gc =
      raw::scaled_dot_product_attention_backward(gy, q, k, v, rc, mask, causal, scale);
  const Tensor qg = raw::to(q, kGpu), kg = raw::to(k, kGpu), vg = raw::to(v, kGpu);
  const Tensor mg = mask.defined() ? raw::to(mask, kGpu) : Tensor();
  for (AttentionKernel kernel : kKernels) {
    SCOPED_TRACE(kernel_name(kernel));
    const KernelScope scope(kernel);
    raw::AttentionResult rg = raw::scaled_dot_product_attention(qg, kg, vg, mg, causal, scale);
    ASSERT_TRUE(rg.out.device().is_cuda());
    EXPECT_EQ(rg.out.dtype(), dt);
    EXPECT_EQ(rg.lse.dtype(), rc.lse.dtype());
    EXPECT_TRUE(close(rg.out, rc.out, tolerance(dt, false))) << "out";
    // The LSE is float32 (float64) for every input dtype: the half types read the same inputs.
    EXPECT_TRUE(close(rg.lse, rc.lse, tolerance(dt == kFloat64 ? dt : kFloat32, false))) << "lse";
    raw::AttentionGrads gg = raw::scaled_dot_product_attention_backward(raw::to(gy, kGpu), qg, kg,
                                                                        vg, rg, mg, causal, scale);
    EXPECT_TRUE(close(gg.q, gc.q, tolerance(dt, true))) << "dq";
    EXPECT_TRUE(close(gg.k, gc.k, tolerance(dt, true))) << "dk";
    EXPECT_TRUE(close(gg.v, gc.v, tolerance(dt, true))) << "dv";
  }
}

struct DimCase {
  int64_t D;
  DType dtype;
};
class CudaAttention : public ::testing::TestWithParam<DimCase> {};

// Every head dim × dtype through sizes that are not multiples of the tiles and every mask kind.
TEST_P(CudaAttention, ForwardAndBackwardMatchCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  const auto [D, dt] = GetParam();
  struct Shape4 {
    int64_t L, S;
    MaskKind mask;
    bool causal;
  };
  const Shape4 shapes[] = {{1, 1, MaskKind::None, false},      {1, 7, MaskKind::Bool, false},
                           {7, 77, MaskKind::Float, false},    {130, 77, MaskKind::FloatLS, false},
                           {77, 130, MaskKind::Padding, true}, {130, 130, MaskKind::None, true},
                           {130, 7, MaskKind::BoolLS, true},   {65, 200, MaskKind::Bool, true}};
  const int64_t B = 2, H = 2;
  uint64_t seed = 100;
  for (const Shape4& s : shapes) {
    const Tensor q = randn_as({B, H, s.L, D}, dt, seed++), k = randn_as({B, H, s.S, D}, dt, seed++);
    const Tensor v = randn_as({B, H, s.S, D}, dt, seed++),
                 gy = randn_as({B, H, s.L, D}, dt, seed++);
    const Tensor mask = make_mask(s.mask, B, H, s.L, s.S, dt == kFloat64 ? kFloat64 : kFloat32);
    expect_matches_cpu(q, k, v, mask, s.causal, 0, gy, describe_case(q, k, v, s.mask, s.causal));
  }
}

INSTANTIATE_TEST_SUITE_P(
    HeadDims, CudaAttention,
    ::testing::Values(DimCase{8, kFloat32}, DimCase{40, kFloat32}, DimCase{64, kFloat32},
                      DimCase{80, kFloat32}, DimCase{128, kFloat32}, DimCase{160, kFloat32},
                      DimCase{256, kFloat32}, DimCase{8, kFloat16}, DimCase{40, kFloat16},
                      DimCase{64, kFloat16}, DimCase{80, kFloat16}, DimCase{128, kFloat16},
                      DimCase{160, kFloat16}, DimCase{256, kFloat16}, DimCase{20, kFloat16},
                      DimCase{24, kBFloat16}, DimCase{8, kBFloat16}, DimCase{40, kBFloat16},
                      DimCase{64, kBFloat16}, DimCase{80, kBFloat16}, DimCase{128, kBFloat16},
                      DimCase{160, kBFloat16}, DimCase{256, kBFloat16}, DimCase{8, kFloat64},
                      DimCase{40, kFloat64}, DimCase{64, kFloat64}, DimCase{80, kFloat64},
                      DimCase{160, kFloat64}),
    [](const auto& info) {
      return std::string(dtype_name(info.param.dtype)) + "_D" + std::to_string(info.param.D);
    });

TEST(CudaAttentionCases, ValueHeadDimOtherThanQueryHeadDimAndCustomScale) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dt : {kFloat32, kFloat16}) {
    const Tensor q = randn_as({2, 3, 45, 64}, dt, 1), k = randn_as({2, 3, 70, 64}, dt, 2);
    const Tensor v = randn_as({2, 3, 70, 40}, dt, 3), gy = randn_as({2, 3, 45, 40}, dt, 4);
    expect_matches_cpu(q, k, v, {}, false, 0.3, gy, describe_case(q, k, v, MaskKind::None, false));
    expect_matches_cpu(q, k, v, {}, true, 0.3, gy, describe_case(q, k, v, MaskKind::None, true));
  }
}

TEST(CudaAttentionCases, ManyKeyTilesAndQueryTiles) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor q = randn_as({1, 2, 300, 40}, kFloat32, 5),
               k = randn_as({1, 2, 1000, 40}, kFloat32, 6);
  const Tensor v = randn_as({1, 2, 1000, 40}, kFloat32, 7);
  const Tensor gy = randn_as({1, 2, 300, 40}, kFloat32, 8);
  const Tensor mask = make_mask(MaskKind::Padding, 1, 2, 300, 1000, kFloat32);
  expect_matches_cpu(q, k, v, mask, false, 0, gy, describe_case(q, k, v, MaskKind::Padding, false));
  expect_matches_cpu(q, k, v, {}, true, 0, gy, describe_case(q, k, v, MaskKind::None, true));
}

// Rows whose keys are all masked give output 0 and LSE +inf (as on the CPU), and zero dq rows.
TEST(CudaAttentionCases, FullyMaskedRows) {
  CXR_SKIP_WITHOUT_CUDA();
  const int64_t L = 70, S = 90, D = 40;
  std::vector<float> keep(size_t(L * S), 1.0f);
  std::vector<float> add(size_t(L * S), 0.0f);
  for (int64_t j = 0; j < S; ++j) {
    keep[size_t(2 * S + j)] = keep[size_t(69 * S + j)] = 0.0f;         // rows 2 and 69 see nothing
    add[size_t(5 * S + j)] = -std::numeric_limits<float>::infinity();  // row 5 sees nothing
  }
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    const Tensor q = randn_as({2, L, D}, dt, 9), k = randn_as({2, S, D}, dt, 10);
    const Tensor v = randn_as({2, S, D}, dt, 11), gy = randn_as({2, L, D}, dt, 12);
    const Tensor masks[] = {raw::to(raw::from_vector(keep, {L, S}), kBool),
                            raw::from_vector(add, {L, S})};
    for (const Tensor& mask : masks) {
      const MaskKind kind = mask.dtype() == kBool ? MaskKind::BoolLS : MaskKind::FloatLS;
      expect_matches_cpu(q, k, v, mask, false, 0, gy,
                         describe_case(q, k, v, kind, false) + " fully masked rows");
      for (AttentionKernel kernel : kKernels) {
        SCOPED_TRACE(kernel_name(kernel));
        const KernelScope scope(kernel);
        raw::AttentionResult r = raw::scaled_dot_product_attention(
            raw::to(q, kGpu), raw::to(k, kGpu), raw::to(v, kGpu), raw::to(mask, kGpu), false, 0);
        const int64_t row = mask.dtype() == kBool ? 2 : 5;
        EXPECT_TRUE(std::isinf(r.lse.at({1, row})) && r.lse.at({1, row}) > 0) << describe(mask);
        for (int64_t c = 0; c < D; ++c) EXPECT_EQ(r.out.at({1, row, c}), 0.0) << describe(mask);
        raw::AttentionGrads g = raw::scaled_dot_product_attention_backward(
            raw::to(gy, kGpu), raw::to(q, kGpu), raw::to(k, kGpu), raw::to(v, kGpu), r,
            raw::to(mask, kGpu), false, 0);
        for (int64_t c = 0; c < D; ++c) EXPECT_EQ(g.q.at({0, row, c}), 0.0) << describe(mask);
        for (double x : g.k.to_vector<double>()) ASSERT_TRUE(std::isfinite(x)) << describe(mask);
      }
    }
  }
}

TEST(CudaAttentionCases, LeadingDims) {
  CXR_SKIP_WITHOUT_CUDA();
  {  // three leading dims, a mask broadcast over the middle one
    const Tensor q = randn_as({2, 3, 2, 33, 16}, kFloat32, 13);
    const Tensor k = randn_as({2, 3, 2, 50, 16}, kFloat32, 14);
    const Tensor v = randn_as({2, 3, 2, 50, 16}, kFloat32, 15);
    const Tensor gy = randn_as({2, 3, 2, 33, 16}, kFloat32, 16);
    std::vector<float> m(size_t(2 * 1 * 2 * 33 * 50));
    for (size_t e = 0; e < m.size(); ++e) m[e] = e % 11 == 3 ? 0.0f : 1.0f;
    const Tensor mask = raw::to(raw::from_vector(m, {2, 1, 2, 33, 50}), kBool);
    expect_matches_cpu(q, k, v, mask, false, 0, gy,
                       describe_case(q, k, v, MaskKind::Bool, false) + " mask [2,1,2,33,50]");
  }
  {  // no leading dim at all
    const Tensor q = randn_as({33, 24}, kFloat32, 17), k = randn_as({50, 24}, kFloat32, 18);
    const Tensor v = randn_as({50, 24}, kFloat32, 19), gy = randn_as({33, 24}, kFloat32, 20);
    expect_matches_cpu(q, k, v, {}, true, 0, gy, describe_case(q, k, v, MaskKind::None, true));
  }
}

// q/k/v (and the incoming gradient) as [B, L, H, D] views permuted to [B, H, L, D], what a
// model's reshape gives; also q from a transpose of the last two dims (column stride != 1).
TEST(CudaAttentionCases, NonContiguousInputs) {
  CXR_SKIP_WITHOUT_CUDA();
  const int64_t B = 2, H = 3, L = 70, S = 90, D = 40;
  for (DType dt : {kFloat32, kFloat16}) {
    const Tensor q = raw::permute(randn_as({B, L, H, D}, dt, 21), {0, 2, 1, 3});
    const Tensor k = raw::permute(randn_as({B, S, H, D}, dt, 22), {0, 2, 1, 3});
    const Tensor v = raw::permute(randn_as({B, S, H, D}, dt, 23), {0, 2, 1, 3});
    const Tensor gy = raw::permute(randn_as({B, L, H, D}, dt, 24), {0, 2, 1, 3});
    const Tensor mask = make_mask(MaskKind::FloatLS, B, H, L, S, kFloat32);
    ASSERT_FALSE(q.is_contiguous());
    expect_matches_cpu(q, k, v, mask, false, 0.5, gy,
                       describe_case(q, k, v, MaskKind::FloatLS, false) + " permuted");
    // Permuted on the device too (the GPU kernel reads the strides itself).
    const Tensor qt = raw::transpose(randn_as({B, H, D, L}, dt, 25), -1, -2);
    expect_matches_cpu(qt, k, v, {}, true, 0, gy,
                       describe_case(qt, k, v, MaskKind::None, true) + " q transposed");
  }
}

TEST(CudaAttentionCases, EmptyProblems) {
  CXR_SKIP_WITHOUT_CUDA();
  for (AttentionKernel kernel : kKernels)
    for (DType dt : {kFloat32, kFloat16}) {
      SCOPED_TRACE(std::string(kernel_name(kernel)) + " " + std::string(dtype_name(dt)));
      const KernelScope scope(kernel);
      // No keys: output 0, LSE +inf; no queries: zero key/value gradients.
      const Tensor q = randn_as({2, 5, 8}, dt, 26), k0 = raw::zeros({2, 0, 8}, dt, kGpu);
      raw::AttentionResult r =
          raw::scaled_dot_product_attention(raw::to(q, kGpu), k0, k0, {}, false, 0);
      EXPECT_EQ(r.out.sizes(), (Shape{2, 5, 8}));
      for (double x : r.out.to_vector<double>()) EXPECT_EQ(x, 0.0);
      for (double x : r.lse.to_vector<double>()) EXPECT_TRUE(std::isinf(x) && x > 0);
      const Tensor q0 = raw::zeros({2, 0, 8}, dt, kGpu);
      const Tensor k = raw::to(randn_as({2, 6, 8}, dt, 27), kGpu);
      raw::AttentionResult r0 = raw::scaled_dot_product_attention(q0, k, k, {}, false, 0);
      EXPECT_EQ(r0.out.numel(), 0);
      raw::AttentionGrads g = raw::scaled_dot_product_attention_backward(
          raw::zeros({2, 0, 8}, dt, kGpu), q0, k, k, r0, {}, false, 0);
      EXPECT_EQ(g.k.sizes(), (Shape{2, 6, 8}));
      for (double x : g.k.to_vector<double>()) EXPECT_EQ(x, 0.0);
      for (double x : g.v.to_vector<double>()) EXPECT_EQ(x, 0.0);
    }
}

// Same inputs, same bits: the forward and both backward kernels own their outputs (no atomics).
TEST(CudaAttentionCases, DeterministicRunToRun) {
  CXR_SKIP_WITHOUT_CUDA();
  for (AttentionKernel kernel : kKernels)
    for (DType dt : {kFloat32, kBFloat16}) {
      SCOPED_TRACE(std::string(kernel_name(kernel)) + " " + std::string(dtype_name(dt)));
      const KernelScope scope(kernel);
      const Tensor q = raw::to(randn_as({2, 4, 300, 64}, dt, 28), kGpu);
      const Tensor k = raw::to(randn_as({2, 4, 500, 64}, dt, 29), kGpu);
      const Tensor v = raw::to(randn_as({2, 4, 500, 64}, dt, 30), kGpu);
      const Tensor gy = raw::to(randn_as({2, 4, 300, 64}, dt, 31), kGpu);
      const Tensor mask = raw::to(make_mask(MaskKind::Padding, 2, 4, 300, 500, kFloat32), kGpu);
      raw::AttentionResult r1 = raw::scaled_dot_product_attention(q, k, v, mask, true, 0);
      raw::AttentionResult r2 = raw::scaled_dot_product_attention(q, k, v, mask, true, 0);
      EXPECT_TRUE(test::bitwise_equal(r1.out, r2.out));
      EXPECT_TRUE(test::bitwise_equal(r1.lse, r2.lse));
      raw::AttentionGrads g1 =
          raw::scaled_dot_product_attention_backward(gy, q, k, v, r1, mask, true, 0);
      raw::AttentionGrads g2 =
          raw::scaled_dot_product_attention_backward(gy, q, k, v, r2, mask, true, 0);
      EXPECT_TRUE(test::bitwise_equal(g1.q, g2.q));
      EXPECT_TRUE(test::bitwise_equal(g1.k, g2.k));
      EXPECT_TRUE(test::bitwise_equal(g1.v, g2.v));
    }
}

// The tensor-core kernels (Auto) against the SIMT ones (Simt) on the same GPU inputs, for the
// float16/bfloat16 head dims of Stable Diffusion and friends, every pair of lengths (partial tiles,
// single rows and keys), cycling through the mask kinds and causal.
TEST(CudaAttentionCases, AutoMatchesSimt) {
  CXR_SKIP_WITHOUT_CUDA();
  const int64_t lengths[] = {1, 7, 77, 130, 257};
  const MaskKind masks[] = {MaskKind::None, MaskKind::Bool, MaskKind::Float, MaskKind::Padding};
  const int64_t B = 2, H = 2;
  uint64_t seed = 1000;
  int index = 0;
  for (DType dt : {kFloat16, kBFloat16})
    for (int64_t D : {40, 64, 80, 128, 160})
      for (int64_t L : lengths)
        for (int64_t S : lengths) {
          const MaskKind mk = masks[index % 4];
          const bool causal = index % 3 == 1;
          ++index;
          const Tensor q = raw::to(randn_as({B, H, L, D}, dt, seed++), kGpu);
          const Tensor k = raw::to(randn_as({B, H, S, D}, dt, seed++), kGpu);
          const Tensor v = raw::to(randn_as({B, H, S, D}, dt, seed++), kGpu);
          const Tensor gy = raw::to(randn_as({B, H, L, D}, dt, seed++), kGpu);
          const Tensor mask =
              mk == MaskKind::None ? Tensor() : raw::to(make_mask(mk, B, H, L, S, kFloat32), kGpu);
          SCOPED_TRACE(describe_case(q, k, v, mk, causal));
          raw::AttentionResult r[2];
          raw::AttentionGrads g[2];
          for (int i = 0; i < 2; ++i) {
            const KernelScope scope(kKernels[i]);
            r[i] = raw::scaled_dot_product_attention(q, k, v, mask, causal, 0);
            g[i] = raw::scaled_dot_product_attention_backward(gy, q, k, v, r[i], mask, causal, 0);
          }
          EXPECT_TRUE(close(r[0].out, r[1].out, tolerance(dt, false))) << "out";
          EXPECT_TRUE(close(r[0].lse, r[1].lse, tolerance(kFloat32, false))) << "lse";
          EXPECT_TRUE(close(g[0].q, g[1].q, tolerance(dt, true))) << "dq";
          EXPECT_TRUE(close(g[0].k, g[1].k, tolerance(dt, true))) << "dk";
          EXPECT_TRUE(close(g[0].v, g[1].v, tolerance(dt, true))) << "dv";
        }
}

TEST(CudaAttentionCases, WorkspaceIsZero) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor q = raw::zeros({1, 8, 4096, 64}, kFloat16, kGpu);
  EXPECT_EQ(raw::scaled_dot_product_attention_workspace_bytes(q, q, q, 2), 0);
}

TEST(CudaAttentionCases, Errors) {
  CXR_SKIP_WITHOUT_CUDA();
  const Tensor q = raw::zeros({1, 2, 4, 8}, kFloat32, kGpu),
               k = raw::zeros({1, 2, 5, 8}, kFloat32, kGpu);
  const Tensor v = raw::zeros({1, 2, 5, 8}, kFloat32, kGpu);
  // Mixed devices name both.
  const std::string mixed = test::error_message(
      [&] { raw::scaled_dot_product_attention(q, raw::to(k, Device::cpu()), v, {}, false, 0); });
  EXPECT_NE(mixed.find("cpu"), std::string::npos) << mixed;
  EXPECT_NE(mixed.find("cuda"), std::string::npos) << mixed;
  EXPECT_THROW(raw::scaled_dot_product_attention(q, k, v, raw::ones({4, 5}, kBool), false, 0),
               Error);  // mask on the CPU
  // Bad shapes throw as on the CPU, naming the op and the shape.
  const std::string msg = test::error_message([&] {
    raw::scaled_dot_product_attention(q, raw::zeros({1, 2, 5, 7}, kFloat32, kGpu), v, {}, false, 0);
  });
  EXPECT_NE(msg.find("scaled_dot_product_attention"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[1, 2, 5, 7]"), std::string::npos) << msg;
  EXPECT_THROW(raw::scaled_dot_product_attention(q, k, raw::zeros({1, 2, 6, 8}, kFloat32, kGpu), {},
                                                 false, 0),
               Error);  // key/value lengths differ
  EXPECT_THROW(
      raw::scaled_dot_product_attention(q, k, v, raw::zeros({4, 6}, kFloat32, kGpu), false, 0),
      Error);  // mask not broadcastable
  // Head dims past the kernel's limit are refused with a message.
  const Tensor wide = raw::zeros({1, 3, 257}, kFloat32, kGpu);
  EXPECT_ERROR_CONTAINS(raw::scaled_dot_product_attention(wide, wide, wide, {}, false, 0), "257");
  // Backward: saved results on another device.
  raw::AttentionResult r = raw::scaled_dot_product_attention(q, k, v, {}, false, 0);
  raw::AttentionResult on_cpu{raw::to(r.out, Device::cpu()), raw::to(r.lse, Device::cpu())};
  EXPECT_THROW(raw::scaled_dot_product_attention_backward(raw::zeros({1, 2, 4, 8}, kFloat32, kGpu),
                                                          q, k, v, on_cpu, {}, false, 0),
               Error);
}

}  // namespace
