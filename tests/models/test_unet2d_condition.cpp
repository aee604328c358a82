// UNet2DConditionModel (models/unet2d_condition.h, models/unet_blocks.h) against diffusers 0.42 on
// tests/fixtures/unet2d_condition.safetensors (tests/golden/gen_unet2d_condition.py): tiny models
// with random weights built from diffusers' own config.json (output and gradients w.r.t. sample
// and encoder_hidden_states, timestep as float [B] and as an int scalar, with ControlNet
// residuals and their gradients; a second model with linear projections, per-block head counts,
// two transformer layers, odd latent sizes and the non-default embedding options), gradient
// checkpointing giving the same gradients, config parsing and rejection, and input errors. The
// real SD v1 size is in test_unet2d_condition_real.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "autograd/loss.h"
#include "models/unet2d_condition.h"
#include "nn/optim.h"
#include "support/compare.h"
#include "support/errors.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

using namespace cxr;
using namespace cxr::models;

namespace {

const char* const kFixture = "unet2d_condition.safetensors";

Tensor fx(const std::string& key) {
  return test::fixture_tensor(kFixture, key);
}

nn::StateDict entries(const std::string& prefix) {
  return test::fixture_entries(kFixture, prefix);
}

// The config.json diffusers wrote for case `c` (stored as bytes).
nlohmann::json fixture_json(const std::string& c) {
  return test::fixture_json(kFixture, c + ".config");
}

UNet2DConditionConfig config_of(const nlohmann::json& j) {
  JsonConfig json(j, "test config");
  return UNet2DConditionConfig::from_json(json);
}

// The case's model from diffusers' config.json with its weights loaded strictly.
std::shared_ptr<UNet2DConditionModel> load_case(const std::string& c) {
  auto m = std::make_shared<UNet2DConditionModel>(config_of(fixture_json(c)));
  nn::LoadReport report = m->load_state_dict(entries(c + ".param."));
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

// Runs case `c` with the timestep of `run` (ControlNet residuals for "ctrl") and compares the
// output and the gradients of loss = sum(out * gy) with diffusers'.
void expect_run_matches(UNet2DConditionModel& m, const std::string& c, const std::string& run) {
  SCOPED_TRACE(c + "." + run);
  const std::string p = c + "." + run + ".";
  Tensor sample = leaf(fx(c + ".sample"));
  Tensor ehs = leaf(fx(c + ".ehs"));
  const Tensor t = fx(c + (run == "int" ? ".t_int" : ".t_float"));
  std::vector<Tensor> down;
  Tensor mid;
  if (run == "ctrl") {
    for (size_t i = 0; i < m.num_down_residuals(); ++i)
      down.push_back(leaf(fx(c + ".ctrl.down." + std::to_string(i))));
    mid = leaf(fx(c + ".ctrl.mid"));
  }
  Tensor out = m.forward(sample, t, ehs, down, mid);
  EXPECT_TRUE(close(out, fx(p + "out")));
  backward(out, fx(c + ".gy"));
  ASSERT_TRUE(sample.grad().defined() && ehs.grad().defined());
  EXPECT_TRUE(close(sample.grad(), fx(p + "grad_sample")));
  EXPECT_TRUE(close(ehs.grad(), fx(p + "grad_ehs")));
  for (size_t i = 0; i < down.size(); ++i) {
    ASSERT_TRUE(down[i].grad().defined()) << i;
    EXPECT_TRUE(close(down[i].grad(), fx(p + "grad_down." + std::to_string(i)))) << i;
  }
  if (mid.defined()) {
    ASSERT_TRUE(mid.grad().defined());
    EXPECT_TRUE(close(mid.grad(), fx(p + "grad_mid")));
  }
}

}  // namespace

TEST(UNet2DConditionModel, TinyMatchesDiffusers) {
  auto m = load_case("tiny");
  EXPECT_EQ(m->num_down_residuals(), 4u);  // conv_in, block 0 layer + downsampler, block 1 layer
  for (const std::string run : {"float", "int", "ctrl"}) expect_run_matches(*m, "tiny", run);
}

TEST(UNet2DConditionModel, LinearProjectionOddSizeAndOptionsMatchDiffusers) {
  auto m = load_case("linear");
  const UNet2DConditionConfig& c = m->config();
  EXPECT_TRUE(c.use_linear_projection);
  EXPECT_TRUE(c.center_input_sample);
  EXPECT_EQ(c.attention_head_dim, (std::vector<int64_t>{2, 4, 4}));
  EXPECT_EQ(c.layers_per_block, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(c.time_embed_dim(), 40);
  // attention_head_dim is the head count: block 1 (16 channels) has 4 heads of 4 dims.
  auto attn = m->down_blocks->at<UNetDownBlock>(1)->attentions->at<Transformer2DModel>(0);
  auto block = attn->transformer_blocks->at<BasicTransformerBlock>(1);
  EXPECT_EQ(block->attn1->heads, 4);
  EXPECT_EQ(block->attn1->dim_head, 4);
  EXPECT_TRUE(std::dynamic_pointer_cast<nn::Linear>(attn->proj_in));
  EXPECT_EQ(m->num_down_residuals(), 9u);
  // 7 x 9 is not a multiple of 4: the upsamplers target the skip sizes (4 x 5, then 7 x 9).
  for (const std::string run : {"float", "int", "ctrl"}) expect_run_matches(*m, "linear", run);
}

TEST(UNet2DConditionModel, GradientCheckpointingGivesTheSameGradients) {
  auto m = load_case("tiny");
  auto grads = [&](bool checkpointing) {
    m->gradient_checkpointing = checkpointing;
    m->zero_grad();
    Tensor sample = leaf(fx("tiny.sample"));
    Tensor ehs = leaf(fx("tiny.ehs"));
    std::vector<Tensor> down;
    for (size_t i = 0; i < m->num_down_residuals(); ++i)
      down.push_back(leaf(fx("tiny.ctrl.down." + std::to_string(i))));
    Tensor out = m->forward(sample, fx("tiny.t_float"), ehs, down, leaf(fx("tiny.ctrl.mid")));
    backward(out, fx("tiny.gy"));
    std::vector<std::pair<std::string, Tensor>> g = {
        {"out", out}, {"sample", sample.grad()}, {"ehs", ehs.grad()}, {"down.1", down[1].grad()}};
    for (const auto& [name, p] : m->named_parameters()) g.emplace_back(name, p.grad());
    return g;
  };
  const auto plain = grads(false);
  const auto checkpointed = grads(true);
  ASSERT_EQ(plain.size(), checkpointed.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    ASSERT_TRUE(checkpointed[i].second.defined()) << plain[i].first;
    EXPECT_TRUE(test::all_close(checkpointed[i].second, plain[i].second, 1e-5, 1e-6))
        << plain[i].first;
  }
}

TEST(UNet2DConditionModel, ConfigReadsStableDiffusionV1) {
  const UNet2DConditionConfig c = config_of(fixture_json("sd"));
  const UNet2DConditionConfig sd = UNet2DConditionConfig::stable_diffusion_v1();
  EXPECT_EQ(c.block_out_channels, sd.block_out_channels);
  EXPECT_EQ(c.down_block_types, sd.down_block_types);
  EXPECT_EQ(c.up_block_types, sd.up_block_types);
  EXPECT_EQ(c.layers_per_block, sd.layers_per_block);
  EXPECT_EQ(c.attention_head_dim, (std::vector<int64_t>{8, 8, 8, 8}));
  EXPECT_EQ(c.transformer_layers_per_block, sd.transformer_layers_per_block);
  EXPECT_EQ(c.cross_attention_dim, 768);
  EXPECT_EQ(sd.cross_attention_dim, 768);
  EXPECT_EQ(c.norm_num_groups, 32);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
  EXPECT_TRUE(c.flip_sin_to_cos);
  EXPECT_EQ(c.time_embed_dim(), 1280);
  EXPECT_FALSE(c.use_linear_projection);
  // sample_size is recorded (pipelines' default image size) and written back.
  EXPECT_EQ(c.sample_size, sd.sample_size);
  EXPECT_EQ(c.to_json().at("sample_size"), fixture_json("sd").at("sample_size"));
  nlohmann::json pair = fixture_json("sd");
  pair["sample_size"] = {32, 48};
  EXPECT_EQ(config_of(pair).sample_size, (std::vector<int64_t>{32, 48}));
  pair["sample_size"] = -1;
  EXPECT_ERROR_CONTAINS(config_of(pair), "key 'sample_size' must be a positive int");
}

TEST(UNet2DConditionModel, RejectsUnsupportedConfigs) {
  const nlohmann::json j = fixture_json("tiny");
  auto expect_rejected = [&](const std::string& key, const nlohmann::json& value,
                             const std::string& text) {
    nlohmann::json bad = j;
    bad[key] = value;
    EXPECT_ERROR_CONTAINS(config_of(bad), text);
  };
  expect_rejected("class_embed_type", "timestep",
                  "'class_embed_type' = \"timestep\" is not supported (only null)");
  expect_rejected("addition_embed_type", "text_time", "'addition_embed_type' = \"text_time\"");
  expect_rejected("dual_cross_attention", true,
                  "'dual_cross_attention' = true is not supported (only false)");
  expect_rejected(
      "resnet_time_scale_shift", "scale_shift",
      "'resnet_time_scale_shift' = \"scale_shift\" is not supported (only \"default\")");
  expect_rejected("num_attention_heads", 8, "'num_attention_heads' = 8");
  expect_rejected("upcast_attention", true, "'upcast_attention' = true");
  expect_rejected("time_embedding_type", "fourier", "'time_embedding_type' = \"fourier\"");
  expect_rejected("mid_block_type", "UNetMidBlock2D", "'mid_block_type' = \"UNetMidBlock2D\"");
  expect_rejected("mid_block_type", nullptr, "'mid_block_type' = null");
  expect_rejected("norm_num_groups", nullptr, "'norm_num_groups' = null is not supported");
  expect_rejected("act_fn", "gelu", "'act_fn' = \"gelu\"");
  expect_rejected("down_block_types", {"CrossAttnDownBlock2D", "AttnDownBlock2D"},
                  "down block type \"AttnDownBlock2D\" is not supported");
  expect_rejected("up_block_types", {"UpBlock2D"},
                  "up_block_types (1) must list one block per block_out_channels entry (2)");
  expect_rejected("attention_head_dim", 3,
                  "not divisible by its attention_head_dim (head count) 3");
  expect_rejected("attention_head_dim", {2, 2, 2}, "attention_head_dim (2, 2, 2) must have 2");
  expect_rejected("norm_num_groups", 3, "must be positive multiples of norm_num_groups (3)");
  expect_rejected("conv_in_kernel", 4, "must be odd and positive");
  expect_rejected("layers_per_block", "two", "layers_per_block");
  expect_rejected("layers_per_block", {1, 2, 2}, "layers_per_block (1, 2, 2) must have 2");
  expect_rejected("cross_attention_dimension", 8, "cross_attention_dimension");
  // Keys that do not change the architecture, and defaults spelt out, are accepted.
  nlohmann::json ok = j;
  ok["_name_or_path"] = "some/unet";
  ok["sample_size"] = {32, 32};
  ok["mid_block_only_cross_attention"] = false;
  ok["resnet_out_scale_factor"] = 1;
  ok["attention_head_dim"] = {2, 4};
  ok["transformer_layers_per_block"] = {1, 3};
  const UNet2DConditionConfig c = config_of(ok);
  EXPECT_EQ(c.attention_head_dim, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(c.transformer_layers_per_block, (std::vector<int64_t>{1, 3}));
  UNet2DConditionModel m(c);
  // Up block 1 mirrors down block 0: 2 heads, 1 transformer layer.
  auto up = m.up_blocks->at<UNetUpBlock>(1)->attentions->at<Transformer2DModel>(0);
  EXPECT_EQ(up->transformer_blocks->size(), 1u);
  EXPECT_EQ(up->transformer_blocks->at<BasicTransformerBlock>(0)->attn2->heads, 2);
  EXPECT_EQ(m.mid_block->attentions->at<Transformer2DModel>(0)->transformer_blocks->size(), 3u);
}

TEST(UNet2DConditionModel, RejectsBadInputs) {
  UNet2DConditionModel m(config_of(fixture_json("tiny")));
  const Tensor sample = raw::zeros({2, 4, 8, 8});
  const Tensor ehs = raw::zeros({2, 5, 8});
  const Tensor t = raw::full({}, 10.0);
  EXPECT_ERROR_CONTAINS(m.forward(raw::zeros({2, 3, 8, 8}), t, ehs),
                        "UNet2DConditionModel: expected sample [B, 4, H, W]");
  EXPECT_ERROR_CONTAINS(m.forward(sample, t, raw::zeros({2, 5, 7})),
                        "expected encoder_hidden_states [2, S, 8]");
  EXPECT_ERROR_CONTAINS(m.forward(sample, raw::zeros({3}), ehs),
                        "expected timestep as a scalar tensor, [1] or [2]");
  std::vector<Tensor> down;
  for (const Tensor& s : {raw::zeros({2, 16, 8, 8}), raw::zeros({2, 16, 8, 8}),
                          raw::zeros({2, 16, 4, 4}), raw::zeros({2, 32, 4, 4})})
    down.push_back(s);
  const Tensor mid = raw::zeros({2, 32, 4, 4});
  EXPECT_ERROR_CONTAINS(m.forward(sample, t, ehs, down), "go together (ControlNet)");
  EXPECT_ERROR_CONTAINS(m.forward(sample, t, ehs, {}, mid), "go together (ControlNet)");
  EXPECT_ERROR_CONTAINS(
      m.forward(sample, t, ehs, std::vector<Tensor>(down.begin(), down.end() - 1), mid),
      "expected 4 down_block_additional_residuals, got 3");
  std::vector<Tensor> wrong = down;
  wrong[2] = raw::zeros({2, 16, 8, 8});
  EXPECT_ERROR_CONTAINS(m.forward(sample, t, ehs, wrong, mid),
                        "down_block_additional_residuals[2] is");
  EXPECT_ERROR_CONTAINS(m.forward(sample, t, ehs, down, raw::zeros({2, 32, 2, 2})),
                        "mid_block_additional_residual is");
  // The residuals of the right shapes are accepted, and a [1] timestep is broadcast.
  EXPECT_EQ(m.forward(sample, raw::full({1}, 3.0), ehs, down, mid).sizes(), sample.sizes());
}

TEST(UNet2DConditionModel, ResetParametersDrawsFromTheGenerator) {
  const UNet2DConditionConfig c = config_of(fixture_json("tiny"));
  UNet2DConditionModel a(c), b(c);
  Generator ga(5), gb(5), gc(6);
  a.reset_parameters(ga);
  b.reset_parameters(gb);
  const nn::StateDict sa = a.state_dict(), sb = b.state_dict();
  for (const auto& [name, t] : sa) EXPECT_TRUE(test::bitwise_equal(t, sb.at(name))) << name;
  b.reset_parameters(gc);
  EXPECT_FALSE(test::bitwise_equal(sa.at("conv_in.weight"), b.tensor("conv_in.weight")));
  EXPECT_FALSE(
      test::bitwise_equal(sa.at("up_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.bias"),
                          b.tensor("up_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.bias")));
  // Norms keep weight 1 (PyTorch's init).
  EXPECT_TRUE(test::bitwise_equal(b.conv_norm_out->weight, raw::ones({16})));
}

TEST(UNet2DConditionModel, StateDictRoundTripAndShortTrainingRun) {
  auto m = load_case("tiny");
  UNet2DConditionModel copy(m->config());
  ASSERT_TRUE(copy.load_state_dict(m->state_dict()).ok());
  const Tensor sample = fx("tiny.sample"), t = fx("tiny.t_float"), ehs = fx("tiny.ehs");
  EXPECT_TRUE(test::bitwise_equal(copy.forward(sample, t, ehs), m->forward(sample, t, ehs)));

  // A few Adam steps (with checkpointing) fit the noise target better: the epsilon-prediction
  // objective mse(unet(x_t, t, ctx), noise) on one fixed batch.
  copy.gradient_checkpointing = true;
  copy.train();
  nn::Adam opt(copy.parameters(), {.lr = 1e-3});
  const Tensor noise = fx("tiny.gy");
  std::vector<double> losses;
  for (int step = 0; step < 6; ++step) {
    opt.zero_grad();
    Tensor loss = mse_loss(copy.forward(sample, t, ehs), noise);
    losses.push_back(loss.item());
    backward(loss);
    opt.step();
  }
  EXPECT_LT(losses.back(), 0.9 * losses.front());
}
