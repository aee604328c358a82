// A training loop on CUDA against the same loop on the CPU: optimizer steps (tensor/optim_ops.h),
// a small network's forward, backward and AdamW steps after module.to(cuda), the loss scaler's
// inf/NaN check, gradient clipping, the EMA, and state dicts saved from and loaded into CUDA
// modules. Every test skips without a usable CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/loss.h"
#include "nn/attention.h"
#include "nn/grad_utils.h"
#include "nn/loss_scaler.h"
#include "nn/nn.h"
#include "nn/optim.h"
#include "support/compare.h"
#include "support/devices.h"
#include "support/errors.h"
#include "support/files.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"

using namespace cxr;
using namespace cxr::nn;

namespace {

const Device kCuda = Device::cuda(0);

// A leaf parameter on `device` holding `values`.
Tensor param_on(const Tensor& values, Device device) {
  return raw::clone(raw::to(values, device)).set_requires_grad(true);
}

// Parameter shapes: sizes that are not multiples of the block size, a scalar, an empty tensor.
std::vector<Shape> param_shapes() {
  return {{1037}, {33, 65}, {}, {0, 4}};
}

// Runs `steps` optimizer steps on cpu and cuda copies of the same parameters with the same
// gradients (the second gradient is a transposed, non-contiguous view) and compares them after
// every step.
void compare_optimizer_steps(
    const std::string& name, DType dtype, double rtol, double atol,
    const std::function<std::unique_ptr<Optimizer>(const std::vector<Tensor>&)>& make) {
  SCOPED_TRACE(name + " " + std::string(dtype_name(dtype)));
  Generator gen(11);
  std::vector<Tensor> cpu, gpu;
  for (const Shape& s : param_shapes()) {
    const Tensor init = raw::to(raw::randn(s, gen), dtype);
    cpu.push_back(param_on(init, Device::cpu()));
    gpu.push_back(param_on(init, kCuda));
  }
  auto opt_cpu = make(cpu);
  auto opt_gpu = make(gpu);
  for (int step = 0; step < 10; ++step) {
    for (size_t i = 0; i < cpu.size(); ++i) {
      if (i == 1) {  // [33, 65] as the transpose of a contiguous [65, 33]
        const Tensor gt = raw::to(raw::randn({65, 33}, gen), dtype);
        cpu[i].set_grad(raw::transpose(gt, 0, 1));
        gpu[i].set_grad(raw::transpose(raw::to(gt, kCuda), 0, 1));
        continue;
      }
      const Tensor g = raw::to(raw::randn(cpu[i].sizes(), gen), dtype);
      cpu[i].set_grad(g);
      gpu[i].set_grad(raw::to(g, kCuda));
    }
    opt_cpu->step();
    opt_gpu->step();
    for (size_t i = 0; i < cpu.size(); ++i) {
      ASSERT_EQ(gpu[i].device(), kCuda);
      EXPECT_TRUE(test::all_close(gpu[i], cpu[i], rtol, atol))
          << "parameter " << i << " " << shape_str(cpu[i].sizes()) << " after step " << step;
    }
  }
  // The state lives on the parameters' device (the step counter stays a cpu scalar).
  for (const auto& [key, t] : opt_gpu->state_dict()) {
    const bool step = key.size() > 5 && key.compare(key.size() - 5, 5, ".step") == 0;
    const bool host = key.rfind("group.", 0) == 0 || step;
    EXPECT_EQ(t.device(), host ? Device::cpu() : kCuda) << key;
    EXPECT_TRUE(test::all_close(t, opt_cpu->state_dict().at(key), rtol, atol)) << key;
  }
}

struct DTypeCase {
  DType dtype;
  double rtol, atol;
};
const DTypeCase kDTypes[] = {{kFloat32, 1e-6, 1e-7},
                             {kFloat64, 1e-12, 1e-14},
                             {kBFloat16, 1e-2, 1e-3},
                             {kFloat16, 1e-3, 1e-4}};

}  // namespace

TEST(CudaTraining, AdamWStepsMatchTheCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const DTypeCase& c : kDTypes)
    compare_optimizer_steps("AdamW", c.dtype, c.rtol, c.atol, [](const std::vector<Tensor>& p) {
      return std::make_unique<AdamW>(p, AdamOptions{.lr = 1e-2, .weight_decay = 0.1});
    });
}

TEST(CudaTraining, AdamAmsgradStepsMatchTheCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const DTypeCase& c : kDTypes)
    compare_optimizer_steps(
        "Adam amsgrad", c.dtype, c.rtol, c.atol, [](const std::vector<Tensor>& p) {
          return std::make_unique<Adam>(
              p, AdamOptions{.lr = 1e-2, .weight_decay = 0.05, .amsgrad = true});
        });
}

TEST(CudaTraining, SgdMomentumStepsMatchTheCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (const DTypeCase& c : kDTypes) {
    compare_optimizer_steps(
        "SGD nesterov", c.dtype, c.rtol, c.atol, [](const std::vector<Tensor>& p) {
          return std::make_unique<SGD>(
              p, SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = true});
        });
    compare_optimizer_steps("SGD dampening", c.dtype, c.rtol, c.atol,
                            [](const std::vector<Tensor>& p) {
                              return std::make_unique<SGD>(
                                  p, SGDOptions{.lr = 0.05, .momentum = 0.5, .dampening = 0.3});
                            });
    compare_optimizer_steps("SGD plain", c.dtype, c.rtol, c.atol, [](const std::vector<Tensor>& p) {
      return std::make_unique<SGD>(p, SGDOptions{.lr = 0.05});
    });
  }
}

TEST(CudaTraining, OptimizerStateLoadsAcrossDevices) {
  CXR_SKIP_WITHOUT_CUDA();
  Generator gen(5);
  const Tensor init = raw::randn({300}, gen);
  Tensor cpu = param_on(init, Device::cpu()), gpu = param_on(init, kCuda);
  AdamW opt_cpu({cpu}), opt_gpu({gpu});
  const Tensor g = raw::randn({300}, gen);
  cpu.set_grad(g);
  opt_cpu.step();
  // A cpu state (as read from a checkpoint) continues on the cuda parameter.
  raw::copy_(gpu, cpu);
  opt_gpu.load_state_dict(opt_cpu.state_dict());
  EXPECT_EQ(opt_gpu.state_dict().at("state.0.exp_avg").device(), kCuda);
  gpu.set_grad(raw::to(g, kCuda));
  opt_cpu.step();
  opt_gpu.step();
  EXPECT_ALL_CLOSE(gpu, cpu, 1e-6, 1e-7);
}

TEST(CudaTraining, MixedDeviceGradientIsAnError) {
  CXR_SKIP_WITHOUT_CUDA();
  Tensor p = param_on(raw::ones({4}), kCuda);
  p.set_grad(raw::ones({4}));
  SGD opt({p});
  EXPECT_ERROR_CONTAINS(opt.step(), "SGD.step: parameter 0 is on cuda:0 but its gradient on cpu");
}

namespace {

// Conv2d -> BatchNorm2d (cumulative momentum: its batch counter is read) -> GroupNorm -> SiLU ->
// attention block (residual) -> Linear, built from the global seed. The convolution has no bias,
// as before any BatchNorm: BatchNorm cancels it, so its gradient would be pure rounding noise,
// which AdamW normalises into full-size steps of device-dependent sign.
std::shared_ptr<Sequential> make_net() {
  manual_seed(1234);
  auto net = std::make_shared<Sequential>();
  net->push_back(std::make_shared<Conv2d>(3, 8, 3, Conv2dOptions{.padding = 1, .bias = false}));
  net->push_back(std::make_shared<BatchNorm2d>(8, BatchNormOptions{.momentum = std::nullopt}));
  net->push_back(std::make_shared<GroupNorm>(4, 8));
  net->push_back(std::make_shared<SiLU>());
  net->push_back(std::make_shared<Attention>(
      8, AttentionOptions{.heads = 2, .dim_head = 4, .residual_connection = true}));
  net->push_back(std::make_shared<Flatten>());
  net->push_back(std::make_shared<Linear>(8 * 5 * 6, 7));
  return net;
}

}  // namespace

TEST(CudaTraining, SmallNetworkForwardBackwardAndAdamWMatchTheCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  auto cpu_net = make_net();
  auto gpu_net = make_net();
  gpu_net->to(kCuda);
  for (const auto& [name, p] : gpu_net->named_parameters()) ASSERT_EQ(p.device(), kCuda) << name;
  AdamW opt_cpu(cpu_net->parameters(), AdamOptions{.lr = 1e-2});
  AdamW opt_gpu(gpu_net->parameters(), AdamOptions{.lr = 1e-2});
  Generator gen(3);
  // TF32 matmuls and convolutions on the GPU: relative agreement to a few 1e-3.
  constexpr double kRtol = 3e-3, kAtol = 1e-4;
  for (int step = 0; step < 5; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const Tensor x = raw::randn({4, 3, 5, 6}, gen);
    const Tensor y = raw::randint(0, 7, {4}, gen);
    const Tensor loss_cpu = cross_entropy(cpu_net->forward(x), y);
    const Tensor loss_gpu = cross_entropy(gpu_net->forward(raw::to(x, kCuda)), raw::to(y, kCuda));
    ASSERT_EQ(loss_gpu.device(), kCuda);
    EXPECT_NEAR(loss_gpu.item(), loss_cpu.item(), kRtol * std::abs(loss_cpu.item()));
    opt_cpu.zero_grad();
    opt_gpu.zero_grad();
    autograd::backward({loss_cpu});
    autograd::backward({loss_gpu});
    const auto cpu_params = cpu_net->named_parameters();
    const auto gpu_params = gpu_net->named_parameters();
    ASSERT_EQ(cpu_params.size(), gpu_params.size());
    for (size_t i = 0; i < cpu_params.size(); ++i) {
      const Tensor gc = cpu_params[i].second.grad(), gg = gpu_params[i].second.grad();
      ASSERT_TRUE(gc.defined() && gg.defined()) << cpu_params[i].first;
      EXPECT_EQ(gg.device(), kCuda) << cpu_params[i].first;
      EXPECT_TRUE(test::close_to_reference(gg, gc, kRtol, 1e-3))
          << "gradient of " << cpu_params[i].first;
    }
    opt_cpu.step();
    opt_gpu.step();
  }
  const auto cpu_params = cpu_net->named_parameters();
  const auto gpu_params = gpu_net->named_parameters();
  for (size_t i = 0; i < cpu_params.size(); ++i)
    EXPECT_TRUE(test::all_close(gpu_params[i].second, cpu_params[i].second, kRtol, kAtol))
        << "parameter " << cpu_params[i].first << " after 5 AdamW steps";
  for (const auto& [name, b] : cpu_net->named_buffers())
    EXPECT_TRUE(test::all_close(gpu_net->tensor(name), b, kRtol, kAtol)) << "buffer " << name;
  EXPECT_EQ(gpu_net->tensor("1.num_batches_tracked").item(), 5.0);
}

TEST(CudaTraining, LossScalerSkipsTheStepOnAnInfGradient) {
  CXR_SKIP_WITHOUT_CUDA();
  Generator gen(8);
  const Tensor init = raw::randn({2000}, gen);
  Tensor p = param_on(init, kCuda), q = param_on(raw::to(init, kFloat16), kCuda);
  SGD opt({p, q}, {.lr = 0.1});
  LossScaler scaler({.init_scale = 1024.0});
  // Finite gradients: unscaled exactly as on the cpu, and the step runs.
  const Tensor g = raw::mul(raw::randn({2000}, gen), 1024.0);
  const Tensor unscaled = raw::mul(g, 1.0 / 1024.0);
  p.set_grad(raw::to(g, kCuda));
  q.set_grad(raw::to(raw::to(g, kFloat16), kCuda));
  scaler.unscale_(opt);
  EXPECT_FALSE(scaler.found_inf());
  EXPECT_TRUE(test::bitwise_equal(p.grad(), unscaled));
  EXPECT_TRUE(scaler.step(opt));
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 1024.0);
  // One inf element (in the middle of the float16 gradient): no step, the scale backs off.
  const Tensor before_p = raw::clone(p), before_q = raw::clone(q);
  Tensor bad = raw::to(raw::to(g, kFloat16), kCuda);
  raw::fill_(raw::narrow(bad, 0, 1234, 1), INFINITY);
  p.set_grad(raw::to(g, kCuda));
  q.set_grad(bad);
  EXPECT_FALSE(scaler.step(opt));
  EXPECT_TRUE(scaler.found_inf());
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 512.0);
  EXPECT_TRUE(test::bitwise_equal(p, before_p));
  EXPECT_TRUE(test::bitwise_equal(q, before_q));
  // A NaN is found too.
  Tensor nan = raw::to(g, kCuda);
  raw::fill_(raw::narrow(nan, 0, 1999, 1), NAN);
  p.set_grad(nan);
  q.set_grad(raw::to(raw::to(g, kFloat16), kCuda));
  EXPECT_FALSE(scaler.step(opt));
}

TEST(CudaTraining, ClipGradNormMatchesTheCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  for (double norm_type : {2.0, 1.0, 3.0, double(INFINITY)}) {
    SCOPED_TRACE("norm_type " + std::to_string(norm_type));
    Generator gen(21);
    std::vector<Tensor> cpu, gpu;
    for (const Shape& s : param_shapes()) {
      const Tensor g = raw::randn(s, gen);
      cpu.push_back(param_on(raw::zeros(s), Device::cpu()));
      gpu.push_back(param_on(raw::zeros(s), kCuda));
      cpu.back().set_grad(raw::clone(g));
      gpu.back().set_grad(raw::to(g, kCuda));
    }
    const double total_cpu = clip_grad_norm_(cpu, 0.5, norm_type);
    const double total_gpu = clip_grad_norm_(gpu, 0.5, norm_type);
    EXPECT_NEAR(total_gpu, total_cpu, 1e-9 * total_cpu);
    for (size_t i = 0; i < cpu.size(); ++i)
      EXPECT_ALL_CLOSE(gpu[i].grad(), cpu[i].grad(), 1e-6, 1e-7);
  }
}

TEST(CudaTraining, EmaMatchesTheCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  Generator gen(4);
  const Tensor init = raw::randn({513}, gen);
  Tensor cpu = param_on(init, Device::cpu()), gpu = param_on(init, kCuda);
  EMA ema_cpu({cpu}, {.decay = 0.9}), ema_gpu({gpu}, {.decay = 0.9});
  for (int i = 0; i < 4; ++i) {
    const Tensor v = raw::randn({513}, gen);
    raw::copy_(cpu, v);
    raw::copy_(gpu, v);
    ema_cpu.update();
    ema_gpu.update();
  }
  EXPECT_EQ(ema_gpu.shadow()[0].device(), kCuda);
  EXPECT_ALL_CLOSE(ema_gpu.shadow()[0], ema_cpu.shadow()[0], 1e-6, 1e-7);
  // A cpu state (as read from a checkpoint) loads onto the device and continues there.
  ema_gpu.load_state_dict(ema_cpu.state_dict());
  EXPECT_EQ(ema_gpu.shadow()[0].device(), kCuda);
  ema_cpu.update();
  ema_gpu.update();
  EXPECT_ALL_CLOSE(ema_gpu.shadow()[0], ema_cpu.shadow()[0], 1e-6, 1e-7);
}

TEST(CudaTraining, StateDictSavedFromCudaLoadsBitwiseOnTheCpu) {
  CXR_SKIP_WITHOUT_CUDA();
  auto cpu_net = make_net();
  auto gpu_net = make_net();
  gpu_net->to(kCuda);
  test::TempDir dir;
  const std::string path = (dir.dir / "net.safetensors").string();
  save_safetensors(path, gpu_net->state_dict());
  const auto loaded = load_safetensors(path).tensors;
  const StateDict expected = cpu_net->state_dict();
  ASSERT_EQ(loaded.size(), expected.size());
  for (const auto& [name, t] : expected) {
    ASSERT_TRUE(loaded.count(name)) << name;
    EXPECT_TRUE(test::bitwise_equal(loaded.at(name), t)) << name;
  }
  // And back: the cpu file loads into a fresh cuda module.
  auto other = make_net();
  for (const auto& [name, p] : other->named_parameters()) raw::fill_(p, 0.0);
  other->to(kCuda);
  other->load_state_dict(loaded);
  for (const auto& [name, t] : other->state_dict()) {
    EXPECT_EQ(t.device(), kCuda) << name;
    EXPECT_TRUE(test::bitwise_equal(t, expected.at(name))) << name;
  }
}

TEST(CudaTraining, ModuleRoundTripsToCudaAndBackBitwise) {
  CXR_SKIP_WITHOUT_CUDA();
  auto net = make_net();
  const StateDict before = net->state_dict();
  StateDict copies;
  for (const auto& [name, t] : before) copies[name] = raw::clone(t);
  net->to(kCuda);
  for (const auto& [name, t] : net->state_dict()) EXPECT_EQ(t.device(), kCuda) << name;
  net->to(Device::cpu());
  for (const auto& [name, t] : net->state_dict()) {
    EXPECT_EQ(t.device(), Device::cpu()) << name;
    EXPECT_TRUE(test::bitwise_equal(t, copies.at(name))) << name;
  }
}
