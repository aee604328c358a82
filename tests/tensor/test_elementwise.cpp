// Raw elementwise ops: the float32 math of tensor/math.h against float64 references over dense
// grids (ulp bounds), every op against PyTorch golden values (tests/golden/gen_elementwise.py)
// on contiguous and strided inputs and in every floating dtype, broadcasting, type promotion,
// in-place forms, and the errors on bad input.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>

#include "support/compare.h"
#include "support/fixtures.h"
#include "tensor/math.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

constexpr const char* kFixture = "elementwise.safetensors";
Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

// The same values as `t` (2-D) held in a transposed (non-contiguous) view.
Tensor strided_copy(const Tensor& t) {
  return raw::transpose(raw::contiguous(raw::transpose(t, 0, 1)), 0, 1);
}

// Distance in units in the last place of the float nearest to `want`.
double ulp_error(float got, double want) {
  if (std::isnan(want)) return std::isnan(got) ? 0 : 1e30;
  if (std::isinf(want)) return double(got) == want ? 0 : 1e30;
  float w = float(want);
  double ulp = std::nextafter(std::fabs(w), std::numeric_limits<float>::infinity()) - std::fabs(w);
  if (w == 0.0f) ulp = std::numeric_limits<float>::denorm_min();
  return std::fabs(double(got) - want) / ulp;
}

template <typename F, typename G>
double max_ulp(F f, G ref, double lo, double hi, int n = 200001) {
  double worst = 0;
  for (int i = 0; i <= n; ++i) {
    float x = float(lo + (hi - lo) * i / n);
    worst = std::max(worst, ulp_error(f(x), ref(double(x))));
  }
  return worst;
}

struct UnaryCase {
  const char* name;
  UnaryOp op;
};
const UnaryCase kUnary[] = {
    {"neg", UnaryOp::Neg},
    {"abs", UnaryOp::Abs},
    {"sign", UnaryOp::Sign},
    {"square", UnaryOp::Square},
    {"reciprocal", UnaryOp::Reciprocal},
    {"exp", UnaryOp::Exp},
    {"log", UnaryOp::Log},
    {"log1p", UnaryOp::Log1p},
    {"sqrt", UnaryOp::Sqrt},
    {"rsqrt", UnaryOp::Rsqrt},
    {"sin", UnaryOp::Sin},
    {"cos", UnaryOp::Cos},
    {"tanh", UnaryOp::Tanh},
    {"sigmoid", UnaryOp::Sigmoid},
    {"relu", UnaryOp::Relu},
    {"silu", UnaryOp::Silu},
    {"gelu", UnaryOp::Gelu},
    {"gelu_tanh", UnaryOp::GeluTanh},
    {"quick_gelu", UnaryOp::QuickGelu},
    {"erf", UnaryOp::Erf},
};

UnaryOp unary_by_name(const std::string& name) {
  for (const UnaryCase& c : kUnary)
    if (name == c.name) return c.op;
  ADD_FAILURE() << "no unary op " << name;
  return UnaryOp::Neg;
}

}  // namespace

// ---- the float32 math itself ------------------------------------------------------------------

TEST(Float32Math, WithinFewUlpOfFloat64) {
  using namespace math;
  struct Case {
    const char* name;
    float (*f)(float);
    double (*ref)(double);
    double lo, hi, max_ulp;
  };
  const Case cases[] = {
      {"exp", [](float x) { return exp_f32(x); }, [](double x) { return std::exp(x); }, -103, 88.7,
       1.5},
      {"expm1", expm1_f32, [](double x) { return std::expm1(x); }, -6, 6, 3},
      {"expm1 small", expm1_f32, [](double x) { return std::expm1(x); }, -1e-3, 1e-3, 1},
      {"log", log_f32, [](double x) { return std::log(x); }, 1e-4, 1e4, 1.5},
      {"log subnormal", log_f32, [](double x) { return std::log(x); }, 1e-44, 1e-37, 1.5},
      {"log1p", log1p_f32, [](double x) { return std::log1p(x); }, -0.999, 50, 3},
      {"log1p small", log1p_f32, [](double x) { return std::log1p(x); }, -1e-4, 1e-4, 3},
      {"tanh", tanh_f32, [](double x) { return std::tanh(x); }, -12, 12, 3},
      {"tanh small", tanh_f32, [](double x) { return std::tanh(x); }, -1e-3, 1e-3, 3},
      {"erf", erf_f32, [](double x) { return std::erf(x); }, -6, 6, 3},
      {"erf small", erf_f32, [](double x) { return std::erf(x); }, -1e-3, 1e-3, 3},
      {"erfc", erfc_f32, [](double x) { return std::erfc(x); }, -3, 9.5, 6},
      {"sigmoid", [](float x) { return sigmoid(x); },
       [](double x) { return 1 / (1 + std::exp(-x)); }, -80, 80, 3},
      {"gelu", [](float x) { return GeluFn{}(x); },
       [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }, -13, 8, 8},
  };
  for (const Case& c : cases) EXPECT_LE(max_ulp(c.f, c.ref, c.lo, c.hi), c.max_ulp) << c.name;
}

TEST(Float32Math, SpecialValues) {
  using namespace math;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  EXPECT_EQ(exp_f32(-inf), 0.0f);
  EXPECT_EQ(exp_f32(inf), inf);
  EXPECT_EQ(exp_f32(89.0f), inf);
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
  EXPECT_TRUE(std::isnan(exp_f32(nan)));
  EXPECT_EQ(log_f32(0.0f), -inf);
  EXPECT_EQ(log_f32(1.0f), 0.0f);
  EXPECT_EQ(log_f32(inf), inf);
  EXPECT_TRUE(std::isnan(log_f32(-1.0f)));
  EXPECT_EQ(log1p_f32(-1.0f), -inf);
  EXPECT_EQ(log1p_f32(inf), inf);
  EXPECT_EQ(log1p_f32(1e-30f), 1e-30f);
  EXPECT_EQ(tanh_f32(inf), 1.0f);
  EXPECT_EQ(tanh_f32(-inf), -1.0f);
  EXPECT_TRUE(std::isnan(tanh_f32(nan)));
  EXPECT_EQ(erf_f32(inf), 1.0f);
  EXPECT_EQ(erf_f32(-inf), -1.0f);
  EXPECT_EQ(sigmoid(-inf), 0.0f);
  EXPECT_EQ(sigmoid(inf), 1.0f);
}

// ---- unary ops against PyTorch -----------------------------------------------------------------

class UnaryGolden : public ::testing::TestWithParam<UnaryCase> {};

TEST_P(UnaryGolden, ForwardAndBackwardMatchTorch) {
  const UnaryCase c = GetParam();
  const std::string n = std::string("unary.") + c.name;
  Tensor x = fx(n + ".x");
  Tensor y = raw::unary(c.op, x);
  EXPECT_ALL_CLOSE(y, fx(n + ".out"), 1e-5, 1e-6);
  // A strided (transposed) view gives the same values.
  EXPECT_ALL_CLOSE(raw::unary(c.op, strided_copy(x)), fx(n + ".out"), 1e-5, 1e-6);
  Tensor gx = raw::unary_backward(c.op, fx(n + ".gy"), x, y);
  EXPECT_ALL_CLOSE(gx, fx(n + ".grad_x"), 1e-4, 1e-5);
  EXPECT_ALL_CLOSE(
      raw::unary_backward(c.op, strided_copy(fx(n + ".gy")), strided_copy(x), Tensor()),
      fx(n + ".grad_x"), 1e-4, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Ops, UnaryGolden, ::testing::ValuesIn(kUnary),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(UnaryWide, TailsZerosAndSpecialValuesMatchTorch) {
  for (const char* name : {"exp", "tanh", "sigmoid", "silu", "gelu", "erf", "gelu_tanh", "relu",
                           "log1p", "log", "sqrt", "abs", "neg"}) {
    const std::string n = std::string("wide.") + name;
    Tensor y = raw::unary(unary_by_name(name), fx(n + ".x"));
    Tensor want = fx(n + ".out");
    const bool gelu = std::string(name) == "gelu";
    if (gelu) {
      // torch's vectorised GELU gives NaN at +inf (its scalar path gives +inf, as we do).
      EXPECT_EQ(y.at({246}), INFINITY);
      y = raw::slice(y, 0, 0, 246);
      want = raw::slice(want, 0, 0, 246);
    }
    // Relative to torch (which itself carries a few ulp), plus an absolute floor for the left
    // tail of GELU, where torch's 1 + erf(x / sqrt 2) cancels (ours does not).
    EXPECT_ALL_CLOSE(y, want, 4e-6, gelu ? 5e-7 : 1e-7) << name;
  }
}

TEST(UnaryDtypes, Float64Float16BFloat16MatchTorch) {
  struct Tol {
    const char* dtype;
    double rtol, atol;
  };
  for (Tol t :
       {Tol{"float64", 1e-12, 1e-14}, Tol{"float16", 2e-3, 1e-4}, Tol{"bfloat16", 1.6e-2, 1e-3}}) {
    for (const char* name : {"exp", "gelu", "tanh"}) {
      const std::string n = std::string("dtype.") + t.dtype + "." + name;
      Tensor x = fx(n + ".x");
      Tensor y = raw::unary(unary_by_name(name), x);
      EXPECT_EQ(y.dtype(), x.dtype());
      EXPECT_ALL_CLOSE(y, fx(n + ".out"), t.rtol, t.atol) << n;
    }
    const std::string n = std::string("dtype.") + t.dtype + ".sqrt";
    EXPECT_ALL_CLOSE(raw::sqrt(raw::abs(fx(n + ".x"))), fx(n + ".out"), t.rtol, t.atol) << n;
    for (auto [name, op] :
         {std::pair{"add", BinaryOp::Add}, std::pair{"mul", BinaryOp::Mul},
          std::pair{"div", BinaryOp::Div}, std::pair{"maximum", BinaryOp::Maximum}}) {
      const std::string b = std::string("dtype.") + t.dtype + "." + name;
      Tensor out = raw::binary(op, fx(b + ".a"), fx(b + ".b"));
      EXPECT_EQ(out.dtype(), fx(b + ".out").dtype());
      EXPECT_ALL_CLOSE(out, fx(b + ".out"), t.rtol, t.atol) << b;
    }
  }
}

TEST(Unary, FloatOnlyOpsRejectIntegersAndBool) {
  Tensor i = raw::arange(0, 5, 1, kInt32);
  for (UnaryOp op : {UnaryOp::Exp, UnaryOp::Log, UnaryOp::Sigmoid, UnaryOp::Gelu, UnaryOp::Sqrt})
    EXPECT_THROW(raw::unary(op, i), Error);
  EXPECT_THROW(raw::neg(raw::ones({3}, kBool)), Error);
  // Ops defined on integers keep the dtype.
  Tensor n = raw::neg(i);
  EXPECT_EQ(n.dtype(), kInt32);
  EXPECT_EQ(n.to_vector<int32_t>(), (std::vector<int32_t>{0, -1, -2, -3, -4}));
  EXPECT_EQ(raw::unary(UnaryOp::Square, n).to_vector<int64_t>(),
            (std::vector<int64_t>{0, 1, 4, 9, 16}));
  EXPECT_EQ(raw::relu(n).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 0, 0}));
  EXPECT_THROW(raw::unary_backward(UnaryOp::Exp, raw::ones({3}), raw::ones({4}), Tensor()), Error);
  EXPECT_THROW(raw::exp(Tensor()), Error);
}

TEST(Unary, ContiguousAndStridedPathsAreBitwiseEqual) {
  // The vectorised contiguous loop and the generic strided loop run the same functor, so their
  // results must agree bit for bit (no FMA contraction, one definition of the math).
  Generator gen(3);
  Tensor x = raw::mul(raw::randn({300, 257}, gen), 4.0);
  Tensor xs = strided_copy(x);
  for (UnaryOp op : {UnaryOp::Exp, UnaryOp::Gelu, UnaryOp::Silu, UnaryOp::Tanh, UnaryOp::Erf,
                     UnaryOp::Log1p, UnaryOp::GeluTanh}) {
    Tensor xin = op == UnaryOp::Log1p ? raw::abs(x) : x;
    Tensor xins = op == UnaryOp::Log1p ? raw::abs(xs) : xs;
    EXPECT_EQ(raw::unary(op, xin).to_vector<float>(), raw::unary(op, xins).to_vector<float>())
        << unary_op_name(op);
  }
}

TEST(Unary, EmptyAndZeroDim) {
  Tensor e = raw::exp(raw::zeros({0, 3}));
  EXPECT_EQ(e.sizes(), (Shape{0, 3}));
  Tensor s = raw::exp(raw::scalar_tensor(1.0));
  EXPECT_EQ(s.dim(), 0);
  EXPECT_NEAR(s.item(), std::exp(1.0), 1e-6);
}

TEST(Unary, InPlaceWritesThroughAViewAndBumpsTheVersion) {
  Tensor base = raw::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor col = raw::select(base, 1, 1);  // {2, 5}, stride 3
  uint64_t v0 = base.storage()->version();
  raw::unary_(UnaryOp::Neg, col);
  EXPECT_EQ(base.to_vector<float>(), (std::vector<float>{1, -2, 3, 4, -5, 6}));
  EXPECT_GT(base.storage()->version(), v0);
  EXPECT_THROW(raw::unary_(UnaryOp::Exp, raw::expand(raw::ones({1}), {3})), Error);
}

// ---- binary ops -------------------------------------------------------------------------------

TEST(BinaryGolden, BroadcastingMatchesTorch) {
  for (auto [name, op] :
       {std::pair{"add", BinaryOp::Add}, std::pair{"sub", BinaryOp::Sub},
        std::pair{"mul", BinaryOp::Mul}, std::pair{"div", BinaryOp::Div},
        std::pair{"maximum", BinaryOp::Maximum}, std::pair{"minimum", BinaryOp::Minimum},
        std::pair{"pow", BinaryOp::Pow}}) {
    const std::string n = std::string("binary.") + name;
    Tensor out = raw::binary(op, fx(n + ".a"), fx(n + ".b"));
    EXPECT_EQ(out.sizes(), (Shape{4, 3, 5}));
    EXPECT_ALL_CLOSE(out, fx(n + ".out"), 1e-6, 1e-6) << name;
    // b as a transposed [1, 3] -> still [3, 1] values via a non-contiguous view of a [1, 3] copy.
    Tensor bt = raw::transpose(raw::contiguous(raw::transpose(fx(n + ".b"), 0, 1)), 0, 1);
    EXPECT_ALL_CLOSE(raw::binary(op, fx(n + ".a"), bt), fx(n + ".out"), 1e-6, 1e-6) << name;
  }
  EXPECT_ALL_CLOSE(raw::mul(fx("binary.mul_same.a"), strided_copy(fx("binary.mul_same.b"))),
                   fx("binary.mul_same.out"));
  EXPECT_ALL_CLOSE(raw::add(fx("binary.add_scalar_tensor.a"), fx("binary.add_scalar_tensor.b")),
                   fx("binary.add_scalar_tensor.out"));
}

TEST(BinaryGolden, TypePromotionMatchesTorch) {
  for (auto [name, op] :
       {std::pair{"int32_add_float32", BinaryOp::Add}, std::pair{"int32_add_int64", BinaryOp::Add},
        std::pair{"int32_mul_int64", BinaryOp::Mul}, std::pair{"int32_div_int64", BinaryOp::Div},
        std::pair{"float16_add_float32", BinaryOp::Add}, std::pair{"bool_add_bool", BinaryOp::Add},
        std::pair{"int64_pow_int64", BinaryOp::Pow},
        std::pair{"uint8_maximum_int32", BinaryOp::Maximum}}) {
    const std::string n = std::string("promote.") + name;
    Tensor out = raw::binary(op, fx(n + ".a"), fx(n + ".b"));
    Tensor want = fx(n + ".out");
    EXPECT_EQ(out.dtype(), want.dtype()) << name;
    EXPECT_ALL_CLOSE(out, want, 1e-6, 1e-6) << name;
  }
}

TEST(BinaryGolden, ScalarOperandsMatchTorch) {
  EXPECT_ALL_CLOSE(raw::binary(BinaryOp::Sub, 3.0, fx("rsub.x")), fx("rsub.out"));
  EXPECT_ALL_CLOSE(raw::binary(BinaryOp::Div, 3.0, fx("rdiv.x")), fx("rdiv.out"));
  EXPECT_ALL_CLOSE(raw::binary(BinaryOp::Pow, 2.0, fx("rpow.x")), fx("rpow.out"), 1e-6, 1e-6);
  // int tensor with a scalar: integral values keep the integer dtype, fractions give float32.
  Tensor i = raw::arange(0, 4, 1, kInt32);
  EXPECT_EQ(raw::add(i, 2.0).dtype(), kInt32);
  EXPECT_EQ(raw::add(i, 2.0).to_vector<int32_t>(), (std::vector<int32_t>{2, 3, 4, 5}));
  EXPECT_EQ(raw::add(i, 0.5).dtype(), kFloat32);
  EXPECT_EQ(raw::binary(BinaryOp::Div, i, 2.0).dtype(), kFloat32);
  EXPECT_EQ(raw::mul(raw::ones({2}, kFloat16), 3.0).dtype(), kFloat16);
}

TEST(Binary, BroadcastingCornerCasesAndErrors) {
  // [2, 1] * [3] -> [2, 3]; [0, 3] + [3] -> [0, 3]; 0-dim + 0-dim.
  Tensor a = raw::from_vector(std::vector<float>{1, 2}, {2, 1});
  Tensor b = raw::from_vector(std::vector<float>{10, 20, 30}, {3});
  EXPECT_EQ(raw::mul(a, b).to_vector<float>(), (std::vector<float>{10, 20, 30, 20, 40, 60}));
  EXPECT_EQ(raw::add(raw::zeros({0, 3}), b).sizes(), (Shape{0, 3}));
  EXPECT_EQ(raw::add(raw::scalar_tensor(1), raw::scalar_tensor(2)).item(), 3.0);
  EXPECT_THROW(raw::add(raw::zeros({2, 3}), raw::zeros({4})), Error);
  EXPECT_THROW(raw::binary(BinaryOp::Sub, raw::ones({2}, kBool), raw::ones({2}, kBool)), Error);
}

TEST(Binary, LargeBroadcastsMatchTheDefinition) {
  // Row, column and scalar broadcasts on a size that takes the parallel vectorised paths.
  Generator gen(11);
  Tensor x = raw::randn({513, 1031}, gen);
  Tensor row = raw::randn({1031}, gen);
  Tensor col = raw::randn({513, 1}, gen);
  auto xv = x.to_vector<float>(), rv = row.to_vector<float>(), cv = col.to_vector<float>();
  auto s1 = raw::sub(x, row).to_vector<float>();
  auto s2 = raw::binary(BinaryOp::Div, col, x).to_vector<float>();
  auto s3 = raw::binary(BinaryOp::Maximum, x, 0.25).to_vector<float>();
  for (int64_t i = 0; i < 513; ++i)
    for (int64_t j = 0; j < 1031; ++j) {
      size_t k = size_t(i * 1031 + j);
      ASSERT_EQ(s1[k], xv[k] - rv[size_t(j)]);
      ASSERT_EQ(s2[k], cv[size_t(i)] / xv[k]);
      ASSERT_EQ(s3[k], std::max(xv[k], 0.25f));
    }
}

TEST(Binary, MaximumMinimumPropagateNaN) {
  const float nan = std::nanf("");
  Tensor a = raw::from_vector(std::vector<float>{nan, 1, 2}, {3});
  Tensor b = raw::from_vector(std::vector<float>{0, nan, 1}, {3});
  auto mx = raw::binary(BinaryOp::Maximum, a, b).to_vector<float>();
  auto mn = raw::binary(BinaryOp::Minimum, a, b).to_vector<float>();
  EXPECT_TRUE(std::isnan(mx[0]) && std::isnan(mx[1]) && mx[2] == 2);
  EXPECT_TRUE(std::isnan(mn[0]) && std::isnan(mn[1]) && mn[2] == 1);
}

TEST(Binary, InPlaceForms) {
  Tensor a = raw::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  raw::binary_(BinaryOp::Add, a, raw::from_vector(std::vector<float>{10, 20, 30}, {3}));
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  raw::binary_(BinaryOp::Mul, a, 0.5);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{5.5, 11, 16.5, 7, 12.5, 18}));
  // Reading the transposed self while writing self: b is copied first.
  Tensor sq = raw::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  raw::binary_(BinaryOp::Sub, sq, raw::transpose(sq, 0, 1));
  EXPECT_EQ(sq.to_vector<float>(), (std::vector<float>{0, -1, 1, 0}));
  // int += float cannot be stored; broadcasting must not grow self; expanded self is refused.
  EXPECT_THROW(raw::binary_(BinaryOp::Add, raw::zeros({3}, kInt32), raw::ones({3})), Error);
  EXPECT_THROW(raw::binary_(BinaryOp::Add, raw::zeros({3}, kInt32), 0.5), Error);
  EXPECT_THROW(raw::binary_(BinaryOp::Add, raw::zeros({3}), raw::ones({2, 3})), Error);
  EXPECT_THROW(raw::binary_(BinaryOp::Add, raw::expand(raw::zeros({1}), {3}), 1.0), Error);
  Tensor i = raw::arange(0, 3, 1, kInt64);
  raw::binary_(BinaryOp::Add, i, 2.0);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{2, 3, 4}));
}

TEST(CompareGolden, MatchesTorchWithTies) {
  for (auto [name, op] : {std::pair{"eq", CompareOp::Eq}, std::pair{"ne", CompareOp::Ne},
                          std::pair{"lt", CompareOp::Lt}, std::pair{"le", CompareOp::Le},
                          std::pair{"gt", CompareOp::Gt}, std::pair{"ge", CompareOp::Ge}}) {
    const std::string n = std::string("compare.") + name;
    Tensor out = raw::compare(op, fx(n + ".a"), fx(n + ".b"));
    EXPECT_EQ(out.dtype(), kBool);
    EXPECT_EQ(out.to_vector<uint8_t>(), fx(n + ".out").to_vector<uint8_t>()) << name;
  }
  Tensor out =
      raw::compare(CompareOp::Lt, fx("compare.int_lt_float.a"), fx("compare.int_lt_float.b"));
  EXPECT_EQ(out.to_vector<uint8_t>(), fx("compare.int_lt_float.out").to_vector<uint8_t>());
  Tensor i = raw::arange(0, 4, 1, kInt32);
  EXPECT_EQ(raw::compare(CompareOp::Gt, i, 1.5).to_vector<uint8_t>(),
            (std::vector<uint8_t>{0, 0, 1, 1}));
  EXPECT_EQ(raw::compare(CompareOp::Eq, raw::from_vector(std::vector<float>{0.1f, 0.2f}, {2}), 0.1)
                .to_vector<uint8_t>(),
            (std::vector<uint8_t>{1, 0}));
}

// ---- parameterised activations -----------------------------------------------------------------

TEST(ActivationGolden, LeakyReluSoftplusClampLerpPow) {
  EXPECT_ALL_CLOSE(raw::leaky_relu(fx("leaky_relu.x"), 0.2), fx("leaky_relu.out"));
  EXPECT_ALL_CLOSE(raw::leaky_relu_backward(fx("leaky_relu.gy"), fx("leaky_relu.x"), 0.2),
                   fx("leaky_relu.grad_x"));
  EXPECT_ALL_CLOSE(raw::softplus(fx("softplus.x"), 2.0, 5.0), fx("softplus.out"), 1e-5, 1e-6);
  EXPECT_ALL_CLOSE(raw::softplus_backward(fx("softplus.gy"), fx("softplus.x"), 2.0, 5.0),
                   fx("softplus.grad_x"), 1e-5, 1e-6);
  EXPECT_ALL_CLOSE(raw::softplus(fx("softplus_default.x")), fx("softplus_default.out"), 1e-5, 1e-6);
  EXPECT_ALL_CLOSE(raw::clamp(fx("clamp.x"), -0.5, 0.7), fx("clamp.out"));
  EXPECT_ALL_CLOSE(raw::clamp_backward(fx("clamp_grad.gy"), fx("clamp_grad.x"), -0.5, 0.7),
                   fx("clamp_grad.grad_x"));
  Tensor ci = raw::clamp(fx("clamp_int.x"), -2, 3);
  EXPECT_EQ(ci.dtype(), kInt64);
  EXPECT_EQ(ci.to_vector<int64_t>(), fx("clamp_int.out").to_vector<int64_t>());
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(raw::clamp(fx("clamp_int.x"), -inf, 0).to_vector<int64_t>()[12], 0);
  EXPECT_ALL_CLOSE(raw::lerp(fx("lerp_scalar.a"), fx("lerp_scalar.b"), 0.3), fx("lerp_scalar.out"));
  EXPECT_ALL_CLOSE(raw::lerp(fx("lerp_tensor.a"), fx("lerp_tensor.b"), fx("lerp_tensor.w")),
                   fx("lerp_tensor.out"));
  for (double e : {2.0, 0.5, -1.0, 3.0, 3.5, -0.5, 0.0}) {
    char key[32];
    std::snprintf(key, sizeof key, "pow_scalar.%.1f", e);
    EXPECT_ALL_CLOSE(raw::pow(fx(std::string(key) + ".x"), e), fx(std::string(key) + ".out"), 2e-6,
                     1e-6)
        << key;
  }
  Tensor pi = raw::pow(fx("pow_scalar_int.x"), 3);
  EXPECT_EQ(pi.dtype(), kInt64);
  EXPECT_EQ(pi.to_vector<int64_t>(), fx("pow_scalar_int.out").to_vector<int64_t>());
  EXPECT_THROW(raw::pow(fx("pow_scalar_int.x"), -1), Error);
  EXPECT_EQ(raw::pow(fx("pow_scalar_int.x"), 0.5).dtype(), kFloat32);
}

TEST(Activation, InPlaceClampAndErrors) {
  Tensor x = raw::from_vector(std::vector<float>{-2, 0, 2}, {3});
  raw::clamp_(x, -1, 1);
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{-1, 0, 1}));
  EXPECT_THROW(raw::clamp(x, std::nan(""), 1), Error);
  EXPECT_THROW(raw::leaky_relu(raw::zeros({2}, kInt64), 0.1), Error);
  EXPECT_THROW(raw::softplus(raw::zeros({2}), 0.0), Error);
  EXPECT_THROW(raw::lerp(raw::zeros({2}), raw::zeros({2}, kFloat64), 0.5), Error);
  EXPECT_THROW(raw::lerp(raw::zeros({2}), raw::zeros({3}), 0.5), Error);
  EXPECT_THROW(raw::leaky_relu_backward(raw::zeros({2}), raw::zeros({3}), 0.1), Error);
}
