// Initialisation functions: random draws come from tensor/random.h (Philox) and are copied into
// the target in place (raw ops: nothing is recorded for autograd).
#include "nn/init.h"

#include <cmath>
#include <vector>

#include "tensor/creation.h"  // raw::copy_, raw::fill_, raw::from_vector

namespace cxr::nn::init {

namespace {

void check_floating(const Tensor& t, const char* op) {
  CXR_CHECK(t.defined(), "init::", op, ": undefined tensor");
  CXR_CHECK(is_floating(t.dtype()), "init::", op, ": expected a floating tensor, got ",
            describe(t));
}

// Draws are made in float64 for float64 targets and float32 otherwise, then converted.
DType draw_dtype(const Tensor& t) {
  return t.dtype() == kFloat64 ? kFloat64 : kFloat32;
}

void fill_from(const Tensor& t, const Tensor& values) {
  raw::copy_(t, values);
  t.storage()->bump_version();
}

int64_t fan(const Tensor& t, FanMode mode) {
  auto [in, out] = fan_in_and_fan_out(t);
  return mode == FanMode::FanIn ? in : out;
}

// erf^-1(y) for y in (-1, 1): Giles' single-precision polynomial ("Approximating the erfinv
// function", GPU Computing Gems, 2011) refined by two Newton steps on erf(x) - y.
double erfinv(double y) {
  if (y <= -1.0) return -INFINITY;
  if (y >= 1.0) return INFINITY;
  double w = -std::log((1.0 - y) * (1.0 + y)), p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                     -0.00417768164, 0.246640727, 1.50140941})
      p = c + p * w;
  } else {
    w = std::sqrt(w) - 3.0;
    p = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                     0.00943887047, 1.00167406, 2.83297682})
      p = c + p * w;
  }
  double x = p * y;
  const double two_over_sqrt_pi = 1.1283791670955126;
  for (int i = 0; i < 2; ++i) x -= (std::erf(x) - y) / (two_over_sqrt_pi * std::exp(-x * x));
  return x;
}

double normal_cdf(double x) {
  return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
}

}  // namespace

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" ||
      nonlinearity == "conv3d" || nonlinearity == "sigmoid")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "selu") return 0.75;
  CXR_FAIL("init::calculate_gain: unknown nonlinearity '", nonlinearity,
           "' (expected linear, conv2d, sigmoid, tanh, relu, leaky_relu or selu)");
}

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t) {
  CXR_CHECK(t.defined() && t.dim() >= 2,
            "init: fan in and fan out need a tensor of at least 2 dims, got ",
            t.defined() ? describe(t) : std::string("undefined"));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

void uniform(const Tensor& t, double low, double high, Generator& gen) {
  check_floating(t, "uniform");
  CXR_CHECK(low <= high, "init::uniform: low ", low, " > high ", high);
  fill_from(t, raw::rand(t.sizes(), gen, draw_dtype(t), low, high));
}

void normal(const Tensor& t, double mean, double stddev, Generator& gen) {
  check_floating(t, "normal");
  CXR_CHECK(stddev >= 0, "init::normal: std must be >= 0, got ", stddev);
  fill_from(t, raw::randn(t.sizes(), gen, draw_dtype(t), mean, stddev));
}

void trunc_normal(const Tensor& t, double mean, double stddev, double a, double b, Generator& gen) {
  check_floating(t, "trunc_normal");
  CXR_CHECK(stddev > 0 && a < b, "init::trunc_normal: need std > 0 and a < b, got std=", stddev,
            ", a=", a, ", b=", b);
  const double lo = normal_cdf((a - mean) / stddev), hi = normal_cdf((b - mean) / stddev);
  std::vector<double> u =
      raw::rand(t.sizes(), gen, kFloat64, 2 * lo - 1, 2 * hi - 1).to_vector<double>();
  for (double& v : u) {
    v = mean + stddev * std::sqrt(2.0) * erfinv(v);
    v = std::min(std::max(v, a), b);
  }
  fill_from(t, raw::from_vector(u, t.sizes(), kFloat64));
}

void constant(const Tensor& t, double value) {
  check_floating(t, "constant");
  raw::fill_(t, value);
  t.storage()->bump_version();
}

void zeros(const Tensor& t) {
  constant(t, 0.0);
}
void ones(const Tensor& t) {
  constant(t, 1.0);
}

void xavier_uniform(const Tensor& t, double gain, Generator& gen) {
  check_floating(t, "xavier_uniform");
  auto [in, out] = fan_in_and_fan_out(t);
  const double bound = gain * std::sqrt(6.0 / double(in + out));
  uniform(t, -bound, bound, gen);
}

void xavier_normal(const Tensor& t, double gain, Generator& gen) {
  check_floating(t, "xavier_normal");
  auto [in, out] = fan_in_and_fan_out(t);
  normal(t, 0.0, gain * std::sqrt(2.0 / double(in + out)), gen);
}

void kaiming_uniform(const Tensor& t, double a, FanMode mode, const std::string& nonlinearity,
                     Generator& gen) {
  check_floating(t, "kaiming_uniform");
  const double stddev = calculate_gain(nonlinearity, a) / std::sqrt(double(fan(t, mode)));
  const double bound = std::sqrt(3.0) * stddev;
  uniform(t, -bound, bound, gen);
}

void kaiming_normal(const Tensor& t, double a, FanMode mode, const std::string& nonlinearity,
                    Generator& gen) {
  check_floating(t, "kaiming_normal");
  normal(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(double(fan(t, mode))), gen);
}

void default_weight_and_bias(const Tensor& weight, const Tensor& bias, Generator& gen) {
  kaiming_uniform(weight, std::sqrt(5.0), FanMode::FanIn, "leaky_relu", gen);
  if (!bias.defined()) return;
  const int64_t fan_in = fan_in_and_fan_out(weight).first;
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
  uniform(bias, -bound, bound, gen);
}

Module& zero_module(Module& m) {
  for (const Tensor& p : m.parameters()) zeros(p);
  return m;
}

}  // namespace cxr::nn::init
