// The table-driven op harness (DESIGN.md §6, after ggml's test-backend-ops): every case runs on
// every available device and dtype; each result is compared with the float64 CPU result of the same
// (dtype-rounded) inputs, within the dtype's tolerance. It prints the support table
// (op x device x dtype): "ok", "-" (refused with a cxr::Error where PyTorch refuses too) or
// "FAIL". Golden values per op are checked by the op's own tests; this harness
// checks that every dtype and device agrees with the reference path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>

#include "tensor/ops.h"

using namespace cxr;

namespace {

struct OpCase {
  std::string name;
  std::vector<Shape> shapes;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  // Which dtypes the op may refuse with a cxr::Error (as PyTorch refuses them): none, bool only
  // (neg, sub, ... on bool), or every integral dtype (float-only math such as exp).
  enum Refuses { kNone, kBool, kIntegral } refuses = kIntegral;
  double lo = -2.0, hi = 2.0;  // input range
  // float32 products run on TF32 tensor cores on CUDA (10-bit significand inputs): judged with
  // TF32's tolerance there.
  bool tf32 = false;
};

std::vector<OpCase> cases() {
  std::vector<OpCase> c;
  using R = OpCase::Refuses;
  auto unary = [&](const char* name, UnaryOp op, R float_only = OpCase::kIntegral, double lo = -2,
                   double hi = 2) {
    c.push_back({name,
                 {{3, 5}},
                 [op](const std::vector<Tensor>& in) { return raw::unary(op, in[0]); },
                 float_only,
                 lo,
                 hi});
  };
  unary("neg", UnaryOp::Neg, OpCase::kBool);
  unary("abs", UnaryOp::Abs, OpCase::kBool);
  unary("exp", UnaryOp::Exp);
  unary("log", UnaryOp::Log, OpCase::kIntegral, 0.1, 3);
  unary("log1p", UnaryOp::Log1p, OpCase::kIntegral, -0.5, 3);
  unary("sqrt", UnaryOp::Sqrt, OpCase::kIntegral, 0.1, 3);
  unary("rsqrt", UnaryOp::Rsqrt, OpCase::kIntegral, 0.1, 3);
  unary("sin", UnaryOp::Sin);
  unary("cos", UnaryOp::Cos);
  unary("tanh", UnaryOp::Tanh);
  unary("sigmoid", UnaryOp::Sigmoid);
  unary("relu", UnaryOp::Relu, OpCase::kBool);
  unary("silu", UnaryOp::Silu);
  unary("gelu", UnaryOp::Gelu);
  unary("gelu_tanh", UnaryOp::GeluTanh);
  unary("quick_gelu", UnaryOp::QuickGelu);
  auto binary = [&](const char* name, BinaryOp op, R float_only = OpCase::kNone, double lo = -2,
                    double hi = 2) {
    c.push_back({name,
                 {{3, 1, 4}, {2, 4}},  // broadcasting
                 [op](const std::vector<Tensor>& in) { return raw::binary(op, in[0], in[1]); },
                 float_only,
                 lo,
                 hi});
  };
  binary("add", BinaryOp::Add);
  binary("sub", BinaryOp::Sub, OpCase::kBool);
  binary("mul", BinaryOp::Mul);
  binary("div", BinaryOp::Div, OpCase::kNone, 0.5, 2);
  binary("pow", BinaryOp::Pow, OpCase::kBool, 0.5, 2);
  binary("maximum", BinaryOp::Maximum);
  binary("minimum", BinaryOp::Minimum);
  c.push_back(
      {"lt",
       {{4, 3}, {3}},
       [](const std::vector<Tensor>& in) { return raw::compare(CompareOp::Lt, in[0], in[1]); },
       OpCase::kNone});
  c.push_back({"clamp",
               {{4, 3}},
               [](const std::vector<Tensor>& in) { return raw::clamp(in[0], -0.5, 1.0); },
               OpCase::kBool});
  c.push_back(
      {"softplus", {{4, 3}}, [](const std::vector<Tensor>& in) { return raw::softplus(in[0]); }});
  c.push_back({"sum",
               {{4, 6}},
               [](const std::vector<Tensor>& in) { return raw::sum(in[0], {1}); },
               OpCase::kNone});
  c.push_back(
      {"mean", {{4, 6}}, [](const std::vector<Tensor>& in) { return raw::mean(in[0], {0}); }});
  c.push_back(
      {"var", {{4, 6}}, [](const std::vector<Tensor>& in) { return raw::var(in[0], {1}); }});
  c.push_back({"amax",
               {{4, 6}},
               [](const std::vector<Tensor>& in) { return raw::amax(in[0], {1}); },
               OpCase::kNone});
  c.push_back({"logsumexp", {{4, 6}}, [](const std::vector<Tensor>& in) {
                 return raw::logsumexp(in[0], {1});
               }});
  c.push_back({"cumsum",
               {{4, 6}},
               [](const std::vector<Tensor>& in) { return raw::cumsum(in[0], 1); },
               OpCase::kNone});
  c.push_back({"matmul",
               {{2, 5, 7}, {7, 3}},
               [](const std::vector<Tensor>& in) { return raw::matmul(in[0], in[1]); },
               OpCase::kIntegral,
               -2.0,
               2.0,
               true});
  c.push_back({"conv2d",
               {{2, 4, 7, 7}, {6, 2, 3, 3}, {6}},
               [](const std::vector<Tensor>& in) {
                 Conv2dParams p;
                 p.padding = {1, 1};
                 p.groups = 2;
                 return raw::conv2d(in[0], in[1], in[2], p);
               },
               OpCase::kIntegral,
               -2.0,
               2.0,
               true});
  c.push_back({"max_pool2d", {{1, 2, 6, 6}}, [](const std::vector<Tensor>& in) {
                 return raw::max_pool2d(in[0], Pool2dParams{}).out;
               }});
  c.push_back({"avg_pool2d", {{1, 2, 6, 6}}, [](const std::vector<Tensor>& in) {
                 return raw::avg_pool2d(in[0], Pool2dParams{});
               }});
  c.push_back({"upsample_bilinear2d", {{1, 2, 3, 4}}, [](const std::vector<Tensor>& in) {
                 return raw::upsample_bilinear2d(in[0], {5, 7}, false);
               }});
  c.push_back(
      {"softmax", {{3, 7}}, [](const std::vector<Tensor>& in) { return raw::softmax(in[0], -1); }});
  c.push_back({"layer_norm", {{3, 8}, {8}, {8}}, [](const std::vector<Tensor>& in) {
                 return raw::layer_norm(in[0], 1, in[1], in[2], 1e-5).out;
               }});
  c.push_back({"group_norm_silu", {{2, 4, 3, 3}, {4}, {4}}, [](const std::vector<Tensor>& in) {
                 return raw::group_norm(in[0], 2, in[1], in[2], 1e-5, true).out;
               }});
  c.push_back(
      {"sdpa", {{1, 2, 9, 8}, {1, 2, 5, 8}, {1, 2, 5, 8}}, [](const std::vector<Tensor>& in) {
         return raw::scaled_dot_product_attention(in[0], in[1], in[2], Tensor(), false, 0).out;
       }});
  c.push_back({"cat",
               {{2, 3}, {2, 2}},
               [](const std::vector<Tensor>& in) {
                 return raw::cat({in[0], in[1]}, 1);
               },
               OpCase::kNone});
  c.push_back({"pad_reflect",
               {{1, 2, 4}},
               [](const std::vector<Tensor>& in) {
                 return raw::pad(in[0], {2, 1}, PadMode::Reflect);
               },
               OpCase::kNone});
  c.push_back({"flip",
               {{3, 4}},
               [](const std::vector<Tensor>& in) {
                 return raw::flip(in[0], {0, 1});
               },
               OpCase::kNone});
  return c;
}

struct Tolerance {
  double rtol, atol;
};
Tolerance tolerance(DType d) {
  switch (d) {
    case kFloat64:
      return {1e-10, 1e-12};
    case kFloat32:
      return {2e-5, 2e-5};
    case kFloat16:
      return {1e-2, 1e-2};  // 11-bit significand, several rounded intermediates
    case kBFloat16:
      return {4e-2, 4e-2};  // 8-bit significand
    default:
      return {0, 0};  // integer results are exact
  }
}

const std::vector<DType> kDTypes = {kFloat32, kFloat64, kFloat16, kBFloat16,
                                    kInt32,   kInt64,   kUInt8,   kBool};

std::string short_name(DType d) {
  switch (d) {
    case kFloat32:
      return "f32";
    case kFloat64:
      return "f64";
    case kFloat16:
      return "f16";
    case kBFloat16:
      return "bf16";
    case kInt32:
      return "i32";
    case kInt64:
      return "i64";
    case kUInt8:
      return "u8";
    case kBool:
      return "bool";
  }
  return "?";
}

// Runs one case on `device` in `dtype`; "ok", "-" or "FAIL: reason".
std::string run_case(const OpCase& op, DType dtype, Device device, uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor> in_ref, in_dev;
  for (const Shape& s : op.shapes) {
    bool integral = is_integral(dtype);
    double lo = op.lo, hi = op.hi;
    if (dtype == kUInt8 || dtype == kBool) lo = std::max(lo, 0.0);
    if (dtype == kBool) hi = std::min(hi, 2.0);
    Tensor x = raw::rand(s, gen, kFloat64, lo, hi);
    if (integral) x = raw::to(raw::to(x, kInt64), kFloat64);
    Tensor typed = raw::to(x, dtype);  // the inputs the device sees, rounded to dtype
    in_ref.push_back(raw::to(typed, kFloat64));
    in_dev.push_back(raw::to(typed, device));
  }
  Tensor out;
  try {
    out = op.fn(in_dev);
  } catch (const Error& e) {
    bool allowed = (op.refuses == OpCase::kIntegral && is_integral(dtype)) ||
                   (op.refuses == OpCase::kBool && dtype == kBool);
    if (allowed) return "-";
    return std::string("FAIL: refused: ") + e.what();
  }
  Tensor ref = op.fn(in_ref);
  Tensor got = raw::to(raw::to(out, Device::cpu()), kFloat64);
  Tensor want = raw::to(ref, kFloat64);
  if (is_floating(dtype) && is_floating(out.dtype()) == false && out.dtype() != kBool)
    return "FAIL: floating op returned " + std::string(dtype_name(out.dtype()));
  if (got.sizes() != want.sizes()) return "FAIL: shape " + shape_str(got.sizes());
  // Reference rounded to the result dtype (integer results of integer inputs are exact).
  if (!is_floating(out.dtype())) want = raw::to(raw::to(want, out.dtype()), kFloat64);
  Tolerance tol = tolerance(out.dtype() == kBool ? kInt64 : dtype);
  if (op.tf32 && device.is_cuda() && dtype == kFloat32) tol = {5e-3, 5e-3};
  auto g = got.to_vector<double>(), w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i] != w[i] && !(std::isnan(g[i]) && std::isnan(w[i])) &&
        !(std::abs(g[i] - w[i]) <= tol.atol + tol.rtol * std::abs(w[i])))
      return "FAIL: index " + std::to_string(i) + ": " + std::to_string(g[i]) + " vs " +
             std::to_string(w[i]);
  return "ok";
}

}  // namespace

TEST(OpTable, EveryOpAgreesAcrossDtypesAndDevices) {
  std::vector<Device> devices = {Device::cpu()};
  for (int i = 0; i < cuda_device_count(); ++i) devices.push_back(Device::cuda(i));
  std::printf("%-20s %-7s", "op", "device");
  for (DType d : kDTypes) std::printf(" %-5s", short_name(d).c_str());
  std::printf("\n");
  int failures = 0;
  uint64_t seed = 100;
  for (const OpCase& op : cases()) {
    for (Device dev : devices) {
      std::printf("%-20s %-7s", op.name.c_str(), dev.str().c_str());
      for (DType d : kDTypes) {
        std::string r = run_case(op, d, dev, ++seed);
        std::printf(" %-5s", r.rfind("FAIL", 0) == 0 ? "FAIL" : r.c_str());
        if (r.rfind("FAIL", 0) == 0) {
          ++failures;
          ADD_FAILURE() << op.name << " on " << dev.str() << " in " << dtype_name(d) << ": " << r;
        }
      }
      std::printf("\n");
    }
  }
  if (cuda_device_count() == 0) std::printf("(cuda: no device visible; GPU columns skipped)\n");
  EXPECT_EQ(failures, 0);
}
