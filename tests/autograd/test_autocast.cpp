// Autocast (autograd/autocast.h): the thread-local scope, the lower-precision list (matmul, bmm,
// linear, conv2d, attention run in the autocast dtype and their gradients reach float32 leaves in
// float32, within half-precision tolerance of the float32 run), the float32 list (softmax,
// log_softmax, layer_norm, group_norm cast half inputs up), and what autocast leaves alone
// (float64, batch_norm, ops outside a scope). The same checks run on every CUDA device (skipped
// without one).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>

#include "autograd/autocast.h"
#include "autograd/checkpoint.h"
#include "autograd/conv.h"
#include "autograd/elementwise.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/linalg.h"
#include "autograd/loss.h"
#include "autograd/nn_ops.h"
#include "autograd/reduce.h"
#include "autograd/views.h"
#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "tensor/ops.h"

using namespace cxr;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// A case of the lower-precision list: the op applied to float32 leaves of these shapes.
struct LowerCase {
  std::string name;
  std::vector<Shape> shapes;
  Fn fn;
};

std::vector<LowerCase> lower_cases() {
  return {
      {"matmul", {{3, 5, 16}, {16, 7}}, [](const auto& in) { return matmul(in[0], in[1]); }},
      {"bmm", {{2, 5, 16}, {2, 16, 6}}, [](const auto& in) { return bmm(in[0], in[1]); }},
      {"linear",
       {{4, 16}, {8, 16}, {8}},
       [](const auto& in) { return linear(in[0], in[1], in[2]); }},
      {"conv2d",
       {{2, 3, 9, 9}, {4, 3, 3, 3}, {4}},
       [](const auto& in) {
         return conv2d(in[0], in[1], in[2], {.padding = {1, 1}});
       }},
      {"scaled_dot_product_attention",
       {{1, 2, 5, 8}, {1, 2, 6, 8}, {1, 2, 6, 8}},
       [](const auto& in) { return scaled_dot_product_attention(in[0], in[1], in[2]); }},
  };
}

// Seeded float32 leaves of `shapes` on `device` (the same values for the same seed).
std::vector<Tensor> leaves(const std::vector<Shape>& shapes, Device device, uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor> out;
  for (const Shape& s : shapes) {
    Tensor t = raw::to(raw::randn(s, gen), device);
    t.set_requires_grad(true);
    out.push_back(t);
  }
  return out;
}

// sum(y * w) for a fixed seeded w, in float32: a scalar whose gradient is w (not all ones).
Tensor weighted_sum(const Tensor& y) {
  Generator gen(99);
  const Tensor w = raw::to(raw::randn(y.sizes(), gen), y.device());
  return sum(mul(to(y, kFloat32), w));
}

// Relative tolerance of a result computed from inputs rounded to `dtype` (8 / 11 mantissa bits),
// judged against the reference's scale.
double tolerance(DType dtype) {
  return dtype == kBFloat16 ? 3e-2 : 4e-3;
}

// Runs `c` on `device` under AutocastGuard(dtype): the output has the autocast dtype, the
// gradients have the leaves' dtype (float32) and device, and both are within half precision of
// the float32 run on the CPU without autocast.
void check_lower(const LowerCase& c, Device device, DType dtype) {
  SCOPED_TRACE(c.name + " on " + device.str() + " under autocast " +
               std::string(dtype_name(dtype)));
  const std::vector<Tensor> ref_in = leaves(c.shapes, Device::cpu(), 7);
  const Tensor ref = c.fn(ref_in);
  ASSERT_EQ(ref.dtype(), kFloat32) << "outside a scope the op keeps float32";
  autograd::backward({weighted_sum(ref)});

  const std::vector<Tensor> in = leaves(c.shapes, device, 7);
  Tensor out;
  {
    AutocastGuard amp(dtype);
    out = c.fn(in);
  }
  ASSERT_EQ(out.dtype(), dtype);
  ASSERT_EQ(out.device(), device);
  EXPECT_TRUE(test::close_to_reference(raw::to(out, kFloat32), ref, tolerance(dtype)));
  autograd::backward({weighted_sum(out)});  // outside the scope, as a training loop does
  for (size_t i = 0; i < in.size(); ++i) {
    SCOPED_TRACE("gradient of input " + std::to_string(i));
    const Tensor g = in[i].grad();
    ASSERT_TRUE(g.defined());
    EXPECT_EQ(g.dtype(), kFloat32);
    EXPECT_EQ(g.device(), device);
    EXPECT_TRUE(test::close_to_reference(g, ref_in[i].grad(), tolerance(dtype)));
  }
}

TEST(AutocastState, OffByDefaultAndScopesNest) {
  EXPECT_FALSE(autocast_dtype().has_value());
  {
    AutocastGuard outer(kBFloat16);
    EXPECT_EQ(autocast_dtype(), kBFloat16);
    {
      AutocastGuard inner(kFloat16);
      EXPECT_EQ(autocast_dtype(), kFloat16);
      {
        AutocastGuard off(std::nullopt);
        EXPECT_FALSE(autocast_dtype().has_value());
      }
      EXPECT_EQ(autocast_dtype(), kFloat16);
    }
    EXPECT_EQ(autocast_dtype(), kBFloat16);
  }
  EXPECT_FALSE(autocast_dtype().has_value());
}

TEST(AutocastState, ThreadLocal) {
  AutocastGuard amp(kBFloat16);
  bool other_thread_on = true;
  std::thread([&] { other_thread_on = autocast_dtype().has_value(); }).join();
  EXPECT_FALSE(other_thread_on);
  EXPECT_EQ(autocast_dtype(), kBFloat16);
}

TEST(AutocastState, RefusesOtherDtypes) {
  EXPECT_ERROR_CONTAINS(AutocastGuard guard(kFloat32), "AutocastGuard");
  EXPECT_ERROR_CONTAINS(AutocastGuard guard(kInt64), "got int64");
  EXPECT_FALSE(autocast_dtype().has_value()) << "a refused guard changes nothing";
}

TEST(AutocastLowerList, CastsOperandsAndGradientsReachFloat32Leaves) {
  for (DType dtype : {kBFloat16, kFloat16})
    for (const LowerCase& c : lower_cases()) check_lower(c, Device::cpu(), dtype);
}

TEST(AutocastLowerList, ScopeTurnedOffKeepsFloat32) {
  // A scope off (std::nullopt) inside an autocast one: float32 stays float32.
  AutocastGuard amp(kBFloat16);
  AutocastGuard off(std::nullopt);
  for (const LowerCase& c : lower_cases())
    EXPECT_EQ(c.fn(leaves(c.shapes, Device::cpu(), 3)).dtype(), kFloat32) << c.name;
}

TEST(AutocastLowerList, CastsWithoutGradToo) {
  const std::vector<Tensor> in = leaves({{4, 16}, {8, 16}}, Device::cpu(), 5);
  autograd::NoGradGuard no_grad;
  AutocastGuard amp(kFloat16);
  const Tensor y = linear(in[0], in[1]);
  EXPECT_EQ(y.dtype(), kFloat16);
  EXPECT_FALSE(y.requires_grad());
}

TEST(AutocastLowerList, LeavesFloat64Alone) {
  // float64 is never cast, so gradient checks run unchanged inside a scope.
  Generator gen(11);
  Tensor a = raw::randn({3, 4}, gen, kFloat64), b = raw::randn({4, 2}, gen, kFloat64);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  AutocastGuard amp(kBFloat16);
  EXPECT_EQ(matmul(a, b).dtype(), kFloat64);
  EXPECT_TRUE(
      gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b}));
}

TEST(AutocastLowerList, ShapeErrorsStillNameTheOp) {
  const std::vector<Tensor> in = leaves({{3, 4}, {5, 2}}, Device::cpu(), 1);
  AutocastGuard amp(kBFloat16);
  EXPECT_ERROR_CONTAINS(matmul(in[0], in[1]), "matmul: inner dimensions differ");
}

// A float32-list op on bfloat16 inputs on `device` under autocast: float32 output equal to the
// op on the inputs converted up (on the CPU), the gradients in the inputs' dtype and device;
// without a scope the output keeps bfloat16.
void check_upcast(const std::string& name, const Fn& fn, const std::vector<Shape>& shapes,
                  Device device) {
  SCOPED_TRACE(name + " on " + device.str());
  std::vector<Tensor> in, up;
  for (const Tensor& t : leaves(shapes, Device::cpu(), 13)) {
    Tensor h = raw::to(raw::to(t, kBFloat16), device);
    h.set_requires_grad(true);
    in.push_back(h);
    up.push_back(raw::to(raw::to(h, Device::cpu()), kFloat32));
  }
  const Tensor expected = fn(up);
  EXPECT_EQ(fn(in).dtype(), kBFloat16) << "outside a scope";
  Tensor out;
  {
    AutocastGuard amp(kBFloat16);
    out = fn(in);
  }
  ASSERT_EQ(out.dtype(), kFloat32);
  ASSERT_EQ(out.device(), device);
  EXPECT_ALL_CLOSE(raw::to(out, Device::cpu()), expected, 1e-5, 1e-6);
  autograd::backward({weighted_sum(out)});
  for (const Tensor& t : in) {
    ASSERT_TRUE(t.grad().defined());
    EXPECT_EQ(t.grad().dtype(), kBFloat16);
    EXPECT_EQ(t.grad().device(), device);
  }
}

void check_float32_list(Device device) {
  check_upcast(
      "softmax", [](const auto& in) { return softmax(in[0], 1); }, {{3, 7}}, device);
  check_upcast(
      "log_softmax", [](const auto& in) { return log_softmax(in[0], -1); }, {{2, 3, 5}}, device);
  check_upcast(
      "layer_norm", [](const auto& in) { return layer_norm(in[0], {6}, in[1], in[2]); },
      {{4, 6}, {6}, {6}}, device);
  check_upcast(
      "group_norm+silu",
      [](const auto& in) { return group_norm(in[0], 2, in[1], in[2], 1e-5, true); },
      {{2, 4, 3, 3}, {4}, {4}}, device);
}

TEST(AutocastFloat32List, CastsHalfInputsUp) {
  check_float32_list(Device::cpu());
}

TEST(AutocastFloat32List, KeepsFloat32Inputs) {
  const Tensor x = leaves({{3, 7}}, Device::cpu(), 2)[0];
  AutocastGuard amp(kFloat16);
  EXPECT_EQ(softmax(x, 1).dtype(), kFloat32);
  EXPECT_EQ(layer_norm(x, {7}).dtype(), kFloat32);
}

// ResNet's conv -> batch_norm -> relu under autocast on `device`: the convolution runs in the
// autocast dtype and batch_norm, on neither list as in PyTorch, keeps that dtype (its kernel
// keeps float32 statistics) with float32 parameters and running statistics. Output and
// gradients within half precision of the float32 run on the CPU; the parameters' gradients and
// the running statistics stay float32.
void check_conv_bn_relu(Device device, DType dtype) {
  SCOPED_TRACE("conv2d -> batch_norm -> relu on " + device.str() + " under autocast " +
               std::string(dtype_name(dtype)));
  const std::vector<Shape> shapes = {{4, 3, 6, 6}, {5, 3, 3, 3}, {5}, {5}};  // x, conv w, bn w, b
  const auto block = [](const std::vector<Tensor>& p, const Tensor& mean, const Tensor& var) {
    return relu(batch_norm(conv2d(p[0], p[1], {}, {.padding = {1, 1}}), mean, var, p[2], p[3],
                           /*training=*/true));
  };
  const std::vector<Tensor> ref_p = leaves(shapes, Device::cpu(), 31);
  const Tensor ref = block(ref_p, raw::zeros({5}), raw::ones({5}));
  autograd::backward({weighted_sum(ref)});

  const std::vector<Tensor> p = leaves(shapes, device, 31);
  const Tensor mean = raw::zeros({5}, kFloat32, device), var = raw::ones({5}, kFloat32, device);
  Tensor out;
  {
    AutocastGuard amp(dtype);
    out = block(p, mean, var);
  }
  ASSERT_EQ(out.dtype(), dtype);
  EXPECT_EQ(mean.dtype(), kFloat32);
  EXPECT_TRUE(test::close_to_reference(raw::to(out, kFloat32), ref, 2 * tolerance(dtype)));
  autograd::backward({weighted_sum(out)});
  for (size_t i = 0; i < p.size(); ++i) {
    SCOPED_TRACE("gradient of input " + std::to_string(i));
    ASSERT_TRUE(p[i].grad().defined());
    EXPECT_EQ(p[i].grad().dtype(), kFloat32);
    EXPECT_TRUE(test::close_to_reference(p[i].grad(), ref_p[i].grad(), 2 * tolerance(dtype)));
  }
}

TEST(AutocastFloat32List, BatchNormIsOnNeitherList) {
  for (DType dtype : {kBFloat16, kFloat16}) check_conv_bn_relu(Device::cpu(), dtype);
}

// A small network mixing both lists: linear -> layer_norm -> gelu -> linear -> log_softmax. Under
// autocast its output is float32 (log_softmax), the parameters' gradients are float32 and within
// bfloat16 tolerance of the float32 run.
TEST(AutocastNetwork, MixedListsTrainFloat32Parameters) {
  const Fn net = [](const std::vector<Tensor>& p) {
    Tensor h = linear(p[0], p[1], p[2]);
    h = gelu(layer_norm(h, {12}, p[3], p[4]));
    return log_softmax(linear(h, p[5], p[6]), -1);
  };
  const std::vector<Shape> shapes = {{5, 10}, {12, 10}, {12}, {12}, {12}, {4, 12}, {4}};
  const std::vector<Tensor> ref_p = leaves(shapes, Device::cpu(), 21);
  const Tensor ref = net(ref_p);
  autograd::backward({weighted_sum(ref)});
  const std::vector<Tensor> p = leaves(shapes, Device::cpu(), 21);
  Tensor out;
  {
    AutocastGuard amp(kBFloat16);
    out = net(p);
  }
  EXPECT_EQ(out.dtype(), kFloat32);
  EXPECT_TRUE(test::close_to_reference(out, ref, tolerance(kBFloat16)));
  autograd::backward({weighted_sum(out)});
  for (size_t i = 0; i < p.size(); ++i) {
    SCOPED_TRACE("parameter " + std::to_string(i));
    EXPECT_EQ(p[i].grad().dtype(), kFloat32);
    EXPECT_TRUE(test::close_to_reference(p[i].grad(), ref_p[i].grad(), 2 * tolerance(kBFloat16)));
  }
}

// Gradient checkpointing recomputes a block's forward during backward: with backward inside the
// autocast scope too (as bench_unet's ControlNet step runs it), the recomputation casts as the
// forward did and the gradients equal those of the block run without checkpointing.
TEST(AutocastNetwork, CheckpointedBlockWithBackwardInScope) {
  const std::vector<Shape> shapes = {{3, 8}, {6, 8}, {6}};
  const auto block = [](const std::vector<Tensor>& in, const Tensor& w, const Tensor& b) {
    return std::vector<Tensor>{layer_norm(linear(in[0], w, b), {6})};
  };
  const std::vector<Tensor> ref_p = leaves(shapes, Device::cpu(), 41);
  const std::vector<Tensor> p = leaves(shapes, Device::cpu(), 41);
  {
    AutocastGuard amp(kBFloat16);
    autograd::backward({weighted_sum(block({ref_p[0]}, ref_p[1], ref_p[2])[0])});
    const Tensor y =
        autograd::checkpoint([&](const std::vector<Tensor>& in) { return block(in, p[1], p[2]); },
                             {p[0]}, {p[1], p[2]})[0];
    EXPECT_EQ(y.dtype(), kFloat32);
    autograd::backward({weighted_sum(y)});
  }
  for (size_t i = 0; i < p.size(); ++i) {
    SCOPED_TRACE("gradient of input " + std::to_string(i));
    EXPECT_EQ(p[i].grad().dtype(), kFloat32);
    EXPECT_ALL_CLOSE(p[i].grad(), ref_p[i].grad(), 1e-6, 1e-6);
  }
}

// Backward usually runs after the training step's scope has closed: the recomputation must still
// run under the forward's autocast state, or it would rebuild a float32 graph whose gradients
// differ from the bfloat16 forward's by bfloat16 rounding.
TEST(AutocastNetwork, CheckpointedBlockWithBackwardOutsideScope) {
  const std::vector<Shape> shapes = {{3, 8}, {6, 8}, {6}};
  const auto block = [](const std::vector<Tensor>& in, const Tensor& w, const Tensor& b) {
    return std::vector<Tensor>{layer_norm(linear(in[0], w, b), {6})};
  };
  const std::vector<Tensor> ref_p = leaves(shapes, Device::cpu(), 43);
  const std::vector<Tensor> p = leaves(shapes, Device::cpu(), 43);
  Tensor ref_loss, loss;
  {
    AutocastGuard amp(kBFloat16);
    ref_loss = weighted_sum(block({ref_p[0]}, ref_p[1], ref_p[2])[0]);
    loss = weighted_sum(
        autograd::checkpoint([&](const std::vector<Tensor>& in) { return block(in, p[1], p[2]); },
                             {p[0]}, {p[1], p[2]})[0]);
  }
  ASSERT_FALSE(autocast_dtype().has_value());
  autograd::backward({ref_loss});
  autograd::backward({loss});
  for (size_t i = 0; i < p.size(); ++i) {
    SCOPED_TRACE("gradient of input " + std::to_string(i));
    EXPECT_ALL_CLOSE(p[i].grad(), ref_p[i].grad(), 1e-6, 1e-6);
  }
}

// Losses are on the float32 list: half inputs give a float32 loss equal to the loss of the
// upcast inputs, and the gradient reaches the half leaf in its own dtype.
TEST(AutocastFloat32List, LossesComputeInFloat32) {
  Generator gen(5);
  const Tensor x = raw::to(raw::randn({4, 6}, gen), kBFloat16);
  const Tensor t = raw::to(raw::randn({4, 6}, gen), kBFloat16);
  Tensor leaf = raw::clone(x);
  leaf.set_requires_grad(true);
  Tensor loss;
  {
    AutocastGuard amp(kBFloat16);
    loss = mse_loss(leaf, t, Reduction::Mean);
    EXPECT_EQ(binary_cross_entropy_with_logits(leaf, raw::sigmoid(t)).dtype(), kFloat32);
    EXPECT_EQ(l1_loss(leaf, t).dtype(), kFloat32);
  }
  EXPECT_EQ(loss.dtype(), kFloat32);
  EXPECT_ALL_CLOSE(loss, mse_loss(raw::to(x, kFloat32), raw::to(t, kFloat32), Reduction::Mean), 0,
                   0);
  autograd::backward({loss});
  EXPECT_EQ(leaf.grad().dtype(), kBFloat16);
}

// The same checks on CUDA (cuBLAS/cuDNN/our attention kernel in float16/bfloat16) against the CPU
// float32 run.
TEST(AutocastCuda, LowerListOnDevice) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dtype : {kBFloat16, kFloat16})
    for (const LowerCase& c : lower_cases()) check_lower(c, Device::cuda(0), dtype);
}

TEST(AutocastCuda, Float32ListOnDevice) {
  CXR_SKIP_WITHOUT_CUDA();
  check_float32_list(Device::cuda(0));
}

TEST(AutocastCuda, ConvBatchNormReluOnDevice) {
  CXR_SKIP_WITHOUT_CUDA();
  for (DType dtype : {kBFloat16, kFloat16}) check_conv_bn_relu(Device::cuda(0), dtype);
}

}  // namespace
