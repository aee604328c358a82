// ControlNetModel (models/controlnet.h) against diffusers 0.42 on
// tests/fixtures/controlnet.safetensors (tests/golden/gen_controlnet.py): a tiny model with random
// weights, the zero convs included, built from diffusers' own config.json (every down residual and
// the mid residual at conditioning_scale 0.5, gradients w.r.t. sample and controlnet_cond);
// gradient checkpointing; from_unet on the tiny UNet of tests/fixtures/unet2d_condition.safetensors
// (exact copies, zero convs, UNet output bitwise unchanged by the residuals, the first training
// step's gradients reaching only the zero 1x1 convs); seeded re-initialisation; config round trip
// and rejections; input errors. The real SD v1 size is in test_controlnet_real.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "models/controlnet.h"
#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;
using namespace cxr::models;

namespace {

const char* const kFixture = "controlnet.safetensors";

Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

nlohmann::json tiny_json() {
  return test::fixture_json(kFixture, "tiny.config");
}

ControlNetConfig config_of(const nlohmann::json& j) {
  JsonConfig json(j, "test config");
  return ControlNetConfig::from_json(json);
}

std::shared_ptr<ControlNetModel> load_tiny() {
  auto m = std::make_shared<ControlNetModel>(config_of(tiny_json()));
  nn::LoadReport report = m->load_state_dict(test::fixture_entries(kFixture, "tiny.param."));
  EXPECT_TRUE(report.ok()) << report.str();
  m->eval();
  return m;
}

// actual ~ expected within rel * (|expected| + max |expected|): the reference is float64.
::testing::AssertionResult close(const Tensor& actual, const Tensor& expected, double rel = 2e-4) {
  return test::close_to_reference(actual, expected, rel);
}

Tensor leaf(const Tensor& t) {
  Tensor x = raw::clone(t);
  x.set_requires_grad(true);
  return x;
}

// The names of the zero-initialised convs' tensors.
bool is_zero_conv(const std::string& key) {
  for (const char* prefix :
       {"controlnet_down_blocks.", "controlnet_mid_block.", "controlnet_cond_embedding.conv_out."})
    if (key.rfind(prefix, 0) == 0) return true;
  return false;
}

const char* const kUNetFixture = "unet2d_condition.safetensors";

// The tiny UNet of tests/fixtures/unet2d_condition.safetensors (its encoder is the tiny
// ControlNet's: blocks (16, 32), one layer, cross-attention 8).
std::unique_ptr<UNet2DConditionModel> load_tiny_unet() {
  JsonConfig json(test::fixture_json(kUNetFixture, "tiny.config"), "unet");
  auto unet = std::make_unique<UNet2DConditionModel>(UNet2DConditionConfig::from_json(json));
  nn::LoadReport report = unet->load_state_dict(test::fixture_entries(kUNetFixture, "tiny.param."));
  EXPECT_TRUE(report.ok()) << report.str();
  unet->eval();
  return unet;
}

Tensor unet_fx(const std::string& key) {
  return test::fixture_tensor(kUNetFixture, key);
}

struct TinyRun {
  ControlNetOutput out;
  Tensor grad_sample, grad_cond;
};

// The fixture's run: forward at conditioning_scale 0.5, then backward of
// loss = sum_i sum(down_i * gy.down.i) + sum(mid * gy.mid).
TinyRun run_tiny(ControlNetModel& m) {
  Tensor sample = leaf(fx("tiny.sample"));
  Tensor cond = leaf(fx("tiny.cond"));
  TinyRun r;
  r.out = m.forward(sample, fx("tiny.t"), fx("tiny.ehs"), cond, 0.5);
  std::vector<Tensor> roots = r.out.down_block_res_samples, grads;
  for (size_t i = 0; i < roots.size(); ++i)
    grads.push_back(fx("tiny.gy.down." + std::to_string(i)));
  roots.push_back(r.out.mid_block_res_sample);
  grads.push_back(fx("tiny.gy.mid"));
  autograd::backward(roots, grads);
  r.grad_sample = sample.grad();
  r.grad_cond = cond.grad();
  return r;
}

}  // namespace

TEST(ControlNetModel, TinyMatchesDiffusers) {
  auto m = load_tiny();
  EXPECT_EQ(m->config().conditioning_downscale(), 8);
  ASSERT_EQ(m->num_down_residuals(), 4u);  // conv_in, block 0 layer + downsampler, block 1 layer
  const TinyRun r = run_tiny(*m);
  ASSERT_EQ(r.out.down_block_res_samples.size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(close(r.out.down_block_res_samples[i], fx("tiny.down." + std::to_string(i)))) << i;
  EXPECT_TRUE(close(r.out.mid_block_res_sample, fx("tiny.mid")));
  ASSERT_TRUE(r.grad_sample.defined() && r.grad_cond.defined());
  EXPECT_TRUE(close(r.grad_sample, fx("tiny.grad_sample")));
  EXPECT_TRUE(close(r.grad_cond, fx("tiny.grad_cond")));
}

TEST(ControlNetModel, GradientCheckpointingGivesTheSameGradients) {
  auto m = load_tiny();
  const TinyRun plain = run_tiny(*m);
  const Tensor plain_weight_grad = raw::clone(m->down_blocks->parameters()[0].grad());
  m->zero_grad();
  m->gradient_checkpointing = true;
  const TinyRun ckpt = run_tiny(*m);
  EXPECT_TRUE(test::all_close(ckpt.grad_sample, plain.grad_sample, 1e-5, 1e-6));
  EXPECT_TRUE(test::all_close(ckpt.grad_cond, plain.grad_cond, 1e-5, 1e-6));
  // The checkpointed blocks' parameters get their gradients too.
  ASSERT_TRUE(m->down_blocks->parameters()[0].grad().defined());
  EXPECT_TRUE(
      test::all_close(m->down_blocks->parameters()[0].grad(), plain_weight_grad, 1e-5, 1e-6));
}

TEST(ControlNetModel, FromUnetCopiesTheEncoderAndLeavesTheUnetUnchanged) {
  auto unet_ptr = load_tiny_unet();
  UNet2DConditionModel& unet = *unet_ptr;

  auto net = ControlNetModel::from_unet(unet, {4, 8, 8, 16});
  net->eval();
  const nn::StateDict unet_state = unet.state_dict();
  size_t copied = 0, zero = 0;
  for (const auto& [key, t] : net->state_dict()) {
    SCOPED_TRACE(key);
    if (key.rfind("controlnet_", 0) == 0) {
      if (is_zero_conv(key)) {
        EXPECT_TRUE(test::bitwise_equal(t, raw::zeros(t.shape())));
        ++zero;
      }
      continue;
    }
    auto it = unet_state.find(key);
    ASSERT_NE(it, unet_state.end());
    EXPECT_TRUE(test::bitwise_equal(t, it->second));
    EXPECT_NE(t.data_ptr(), it->second.data_ptr());  // a copy, not shared storage
    ++copied;
  }
  size_t encoder_keys = 0;
  for (const auto& [key, t] : unet_state)
    if (key.rfind("up_blocks.", 0) != 0 && key.rfind("conv_norm_out.", 0) != 0 &&
        key.rfind("conv_out.", 0) != 0)
      ++encoder_keys;
  EXPECT_EQ(copied, encoder_keys);
  EXPECT_EQ(zero, 2 * (4 + 1 + 1));  // weight and bias of 4 down convs, the mid conv, conv_out

  // Zero residuals: the UNet's output is bitwise what it is without a ControlNet.
  const Tensor sample = unet_fx("tiny.sample");
  const Tensor t = unet_fx("tiny.t_float");
  const Tensor ehs = unet_fx("tiny.ehs");
  const Tensor cond = fx("tiny.cond");
  const ControlNetOutput res = net->forward(sample, t, ehs, cond);
  const Tensor with =
      unet.forward(sample, t, ehs, res.down_block_res_samples, res.mid_block_res_sample);
  EXPECT_TRUE(test::bitwise_equal(with, unet.forward(sample, t, ehs)));
}

TEST(ControlNetModel, ConfigRoundTripAndFromUnet) {
  const ControlNetConfig c = config_of(tiny_json());
  EXPECT_EQ(c.unet.block_out_channels, (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(c.unet.up_block_types, (std::vector<std::string>{"UpBlock2D", "CrossAttnUpBlock2D"}));
  EXPECT_EQ(c.conditioning_embedding_out_channels, (std::vector<int64_t>{4, 8, 8, 16}));
  const nlohmann::json j = c.to_json();
  EXPECT_EQ(j["_class_name"], "ControlNetModel");
  EXPECT_EQ(j["layers_per_block"], 1);
  EXPECT_FALSE(j.contains("up_block_types"));
  // Every key diffusers wrote is written back with the same value (numbers compared as numbers).
  const nlohmann::json written = tiny_json();
  for (const auto& [key, value] : written.items()) {
    if (key == "_diffusers_version") continue;
    ASSERT_TRUE(j.contains(key)) << key;
    if (value.is_number())
      EXPECT_DOUBLE_EQ(j[key].get<double>(), value.get<double>()) << key;
    else
      EXPECT_EQ(j[key], value) << key;
  }
  EXPECT_EQ(config_of(j).to_json(), j);

  ControlNetConfig sd = ControlNetConfig::stable_diffusion_v1();
  EXPECT_EQ(sd.unet.cross_attention_dim, 768);
  EXPECT_EQ(sd.conditioning_embedding_out_channels, (std::vector<int64_t>{16, 32, 96, 256}));
  UNet2DConditionConfig odd = UNet2DConditionConfig::stable_diffusion_v1();
  odd.conv_in_kernel = 5;
  EXPECT_ERROR_CONTAINS(ControlNetConfig::from_unet(odd), "conv_in_kernel");
  odd = UNet2DConditionConfig::stable_diffusion_v1();
  odd.layers_per_block = {2, 1, 2, 2};
  EXPECT_ERROR_CONTAINS(ControlNetConfig::from_unet(odd), "layers_per_block");
}

TEST(ControlNetModel, ConfigRejectsUnimplementedAndUnknownKeys) {
  auto with = [](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = tiny_json();
    j[key] = value;
    return j;
  };
  EXPECT_ERROR_CONTAINS(config_of(with("controlnet_conditioning_channel_order", "bgr")),
                        "controlnet_conditioning_channel_order");
  EXPECT_ERROR_CONTAINS(config_of(with("global_pool_conditions", true)), "global_pool_conditions");
  EXPECT_ERROR_CONTAINS(config_of(with("class_embed_type", "timestep")), "class_embed_type");
  EXPECT_ERROR_CONTAINS(config_of(with("mid_block_type", "UNetMidBlock2D")), "mid_block_type");
  EXPECT_ERROR_CONTAINS(config_of(with("layers_per_block", {1, 1})), "layers_per_block");
  // UNet-only keys are not ControlNet keys.
  EXPECT_ERROR_CONTAINS(config_of(with("up_block_types", {"UpBlock2D", "UpBlock2D"})),
                        "up_block_types");
  EXPECT_ERROR_CONTAINS(config_of(with("conv_in_kernel", 3)), "conv_in_kernel");
  EXPECT_ERROR_CONTAINS(config_of(with("conditioning_embedding_out_channels", {4, 0})),
                        "conditioning_embedding_out_channels");
  EXPECT_ERROR_CONTAINS(config_of(with("down_block_types", {"CrossAttnDownBlock2D", "Foo"})),
                        "Foo");
}

TEST(ControlNetModel, InputErrorsNameTheExpectedShape) {
  auto m = load_tiny();
  const Tensor sample = fx("tiny.sample"), t = fx("tiny.t"), ehs = fx("tiny.ehs");
  // A cond image at the latent size instead of 8x.
  EXPECT_ERROR_CONTAINS(m->forward(sample, t, ehs, raw::zeros({2, 3, 8, 8})), "8x the latent size");
  EXPECT_ERROR_CONTAINS(m->forward(sample, t, ehs, raw::zeros({2, 1, 64, 64})),
                        "controlnet_cond [2, 3");
  EXPECT_ERROR_CONTAINS(m->forward(sample, t, ehs, Tensor()), "undefined");
  EXPECT_ERROR_CONTAINS(m->forward(raw::zeros({2, 3, 8, 8}), t, ehs, fx("tiny.cond")),
                        "sample [B, 4");
  EXPECT_ERROR_CONTAINS(m->forward(sample, t, raw::zeros({2, 5, 7}), fx("tiny.cond")),
                        "encoder_hidden_states [2, S, 8]");
}

TEST(ControlNetModel, ResetParametersIsSeededAndKeepsTheZeroConvsZero) {
  auto a = load_tiny(), b = load_tiny();
  Generator ga(7), gb(7);
  a->reset_parameters(ga);
  b->reset_parameters(gb);
  const nn::StateDict sa = a->state_dict(), sb = b->state_dict();
  for (const auto& [key, t] : sa) {
    SCOPED_TRACE(key);
    EXPECT_TRUE(test::bitwise_equal(t, sb.at(key)));
    // The fixture's (randomized) zero convs are zero again; the other convs are not.
    if (is_zero_conv(key)) {
      EXPECT_TRUE(test::bitwise_equal(t, raw::zeros(t.shape())));
    } else if (key == "controlnet_cond_embedding.conv_in.weight") {
      EXPECT_FALSE(test::bitwise_equal(t, raw::zeros(t.shape())));
    }
  }
}

// A fresh ControlNet behind a frozen UNet (train_controlnet.py's step): at the zero init only the
// 1x1 zero convs get gradient; their weights are 0, so nothing flows back through them into the
// encoder or the conditioning embedding (conv_out included) in this first step.
TEST(ControlNetModel, FreshControlNetTrainsThroughTheZeroConvsFirst) {
  auto unet_ptr = load_tiny_unet();
  UNet2DConditionModel& unet = *unet_ptr;
  unet.requires_grad(false);
  auto net = ControlNetModel::from_unet(unet, {4, 8, 8, 16});
  net->gradient_checkpointing = true;

  const Tensor sample = unet_fx("tiny.sample");
  const Tensor t = unet_fx("tiny.t_float");
  const Tensor ehs = unet_fx("tiny.ehs");
  const ControlNetOutput res = net->forward(sample, t, ehs, fx("tiny.cond"));
  const Tensor eps =
      unet.forward(sample, t, ehs, res.down_block_res_samples, res.mid_block_res_sample);
  backward(eps, unet_fx("tiny.gy"));
  auto nonzero = [](const Tensor& g) {
    if (!g.defined()) return false;
    for (double v : g.to_vector<double>())
      if (v != 0) return true;
    return false;
  };
  for (const auto& [key, p] : net->named_parameters()) {
    SCOPED_TRACE(key);
    const bool residual_conv =
        key.rfind("controlnet_down_blocks.", 0) == 0 || key.rfind("controlnet_mid_block.", 0) == 0;
    EXPECT_EQ(nonzero(p.grad()), residual_conv);
  }
  for (const auto& [key, p] : unet.named_parameters()) EXPECT_FALSE(p.grad().defined()) << key;
}
